"""The linear stdio reader: chunking, non-JSON lines, and servers that print to stdout."""

from __future__ import annotations

import gc
import json
import logging
import sys
from collections.abc import Iterable, Iterator

import anyio
import psutil
import pytest

from mcp_magic.host.stdio_transport import (
    BIG_LINE,
    MAX_LOGGED_LINES,
    RELEASE_ID,
    MessageTooLarge,
    read_messages,
)

from conftest import SERVERS, free_port, start_http_server, stop

NOISY_SERVER = SERVERS / "noisy_server.py"
LEGACY_HTTP_SERVER = SERVERS / "legacy_http_server.py"


class ChunkStream:
    """A byte stream that hands out the given chunks one per receive, then ends."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self.reads = 0

    async def receive(self, max_bytes: int = 65536) -> bytes:
        self.reads += 1
        try:
            return next(self._chunks)
        except StopIteration:
            raise anyio.EndOfStream from None


def read_all(
    chunks: Iterable[bytes], raised: list | None = None, **options
) -> tuple[list, list[str]]:
    """The messages and the log lines the reader makes of a stream cut into `chunks`.

    An exception the reader raises is put on `raised` when given, else propagates.
    """
    messages: list = []
    log: list[str] = []

    async def deliver(message) -> None:
        messages.append(message.message)

    async def main() -> None:
        try:
            await read_messages(ChunkStream(chunks), deliver, log.append, **options)
        except Exception as exc:
            if raised is None:
                raise
            raised.append(exc)

    anyio.run(main)
    return messages, log


def request(i: int, **params) -> bytes:
    body = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}
    return json.dumps(body, ensure_ascii=False).encode("utf-8") + b"\n"


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_messages_split_across_chunks():
    data = request(1, name="a" * 300) + request(2, name="b") + request(3, name="c" * 1000)
    for size in (1, 2, 7, 64, 333, len(data)):
        messages, log = read_all(cut(data, size))
        assert [m.id for m in messages] == [1, 2, 3], size
        assert messages[0].params["name"] == "a" * 300
        assert messages[2].params["name"] == "c" * 1000
        assert log == []


def test_many_messages_in_one_chunk():
    data = b"".join(request(i, name=f"n{i}") for i in range(2000))
    messages, log = read_all([data])
    assert [m.id for m in messages] == list(range(2000))
    assert messages[1999].params["name"] == "n1999"
    assert log == []


def test_line_split_inside_a_multibyte_character():
    text = "é€😀 naïve — 東京"
    data = request(7, name=text)
    encoded = text.encode("utf-8")
    start = data.index(encoded)
    # Cut inside the 2-, 3- and 4-byte characters, one cut at a time and all at once.
    inner = [start + 1, start + 3, start + 6, start + 8]
    for cuts in [[c] for c in inner] + [inner]:
        bounds = [0, *cuts, len(data)]
        chunks = [data[a:b] for a, b in zip(bounds, bounds[1:])]
        messages, log = read_all(chunks)
        assert messages[0].params["name"] == text
        assert log == []


def test_a_100_mb_line():
    cell = "x" * 999
    count = 100_000  # 100,000 strings of 1,001 bytes each: 100 MB of JSON
    body = '{"jsonrpc":"2.0","id":9,"result":{"rows":[' + ",".join([f'"{cell}"'] * count)
    data = (body + "]}}\n").encode("ascii")
    del body
    assert len(data) > 100_000_000
    chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
    messages, log = read_all(chunks)
    assert [m.id for m in messages] == [9, RELEASE_ID] and log == []
    rows = messages[0].result["rows"]
    assert len(rows) == count and rows[0] == cell and rows[-1] == cell


def test_a_big_message_is_followed_by_one_that_displaces_it():
    """The session's read loop keeps the last message until the next: after a big one
    the reader sends a response to no request, so the big one can be freed."""
    small = request(1, name="small")
    big = request(2, name="b" * BIG_LINE)
    messages, log = read_all([small, big, small])
    assert [m.id for m in messages] == [1, 2, RELEASE_ID, 1] and log == []
    assert messages[2].result == {}


def test_a_big_result_parsed_once_equals_the_sdks_reading():
    from mcp_types import JSONRPCResponse, jsonrpc_message_adapter

    from mcp_magic.host.stdio_transport import parse_line

    result = {"structuredContent": {"rows": [[i, f"é{i}", i / 3, None] for i in range(60_000)]},
              "content": [], "_meta": {"k": 1}}
    line = json.dumps({"jsonrpc": "2.0", "id": "call-7", "result": result},
                      ensure_ascii=False).encode()
    assert len(line) > BIG_LINE
    ours = parse_line(line).message
    assert isinstance(ours, JSONRPCResponse)
    assert ours == jsonrpc_message_adapter.validate_json(line, by_name=False)
    # a long line that is no valid response still goes the SDK's way: refused, logged
    wrong = line.replace(b'"jsonrpc": "2.0"', b'"jsonrpc": "1.0"', 1)
    assert parse_line(wrong).startswith("ignored line that is not a JSON-RPC message")


def test_the_sdks_http_client_gets_the_same_one_pass_parse():
    import types as pytypes

    from mcp_types import jsonrpc_message_adapter

    from mcp_magic.host.stdio_transport import parse_big_results_once

    module = pytypes.SimpleNamespace(jsonrpc_message_adapter=jsonrpc_message_adapter)
    parse_big_results_once(module)
    parse_big_results_once(module)  # once is enough: not wrapped twice
    adapter = module.jsonrpc_message_adapter
    assert adapter._adapter is jsonrpc_message_adapter
    big = json.dumps({"jsonrpc": "2.0", "id": 3, "result": {"rows": ["r" * 99] * 20_000}})
    small = request(1, name="x")
    for data in (big, big.encode(), small):
        assert adapter.validate_json(data, by_name=False) == \
            jsonrpc_message_adapter.validate_json(data, by_name=False)


def test_eof_mid_line():
    partial = request(2, name="cut off")[:-10]
    messages, log = read_all([request(1, name="whole"), partial])
    assert [m.id for m in messages] == [1]
    assert len(log) == 1 and log[0].startswith("ignored non-JSON line on stdout: ")

    # A last message without its newline is still a message.
    messages, log = read_all([request(1, name="whole"), request(2, name="last")[:-1]])
    assert [m.id for m in messages] == [1, 2] and log == []


def test_a_line_past_the_bound_ends_the_reading_with_one_log_line():
    big = request(2, name="z" * 5000)
    for chunks in ([request(1), big], cut(request(1) + big, 100)):
        raised: list = []
        messages, log = read_all(chunks, raised, max_bytes=4096)
        assert [type(e) for e in raised] == [MessageTooLarge]
        assert [m.id for m in messages] == [1]
        assert log == ["a line on stdout grew past 4,096 bytes; closing the connection"]


def test_lines_that_are_not_messages_are_logged_and_skipped():
    data = b"".join(
        [
            request(1, name="first"),
            b"Starting server... done\n",
            b"\n   \n",
            b'{"hello": "world"}\n',
            b"\xff\xfe\xc3 not utf-8\n",
            request(2, name="crlf")[:-1] + b"\r\n",
            b'{"jsonrpc": "2.0", "id": 3, "method": "m", "params": {"s": "a\xffb"}}\n',
            b"y" * 10_000 + b"\n",
        ]
    )
    messages, log = read_all(cut(data, 5))
    assert [m.id for m in messages] == [1, 2, 3]
    # A bad byte inside a JSON string is replaced; the message still arrives.
    assert messages[2].params["s"] == "a\ufffdb"
    assert log[0] == "ignored non-JSON line on stdout: 'Starting server... done'"
    assert log[1] == (
        "ignored line that is not a JSON-RPC message on stdout: '{\"hello\": \"world\"}'"
    )
    assert log[2].startswith("ignored non-JSON line on stdout: '\ufffd")
    assert log[3].endswith("... (10,000 characters)") and len(log[3]) < 300
    assert len(log) == 4


def test_a_flood_of_noise_is_logged_with_a_bound():
    data = b"noise\n" * (MAX_LOGGED_LINES * 5) + request(1, name="after")
    messages, log = read_all([data])
    assert [m.id for m in messages] == [1]
    assert len(log) == MAX_LOGGED_LINES + 1
    assert "not logged" in log[-1]


def test_nothing_is_read_ahead_while_a_delivery_waits():
    stream = ChunkStream([request(1), request(2), request(3)])
    seen: list[int] = []

    async def main() -> None:
        send, receive = anyio.create_memory_object_stream(0)

        async def deliver(message) -> None:
            await send.send(message)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_messages, stream, deliver, print)
            first = await receive.receive()
            await anyio.sleep(0.05)
            # The reader now waits to deliver message 2; message 3 must not be read yet.
            seen.append(stream.reads)
            assert first.message.id == 1
            for _ in range(2):
                await receive.receive()

    anyio.run(main)
    assert seen == [2]


# -- a real server that prints to stdout, through %mcp ------------------------------


def _no_noise(out: str, caplog) -> None:
    assert "Traceback" not in out and "Failed to parse" not in out, out
    assert "UnicodeDecodeError" not in out and "never retrieved" not in out, out
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [], [r.getMessage() for r in loud]


@pytest.mark.parametrize("bad_utf8", [False, True], ids=["text", "invalid-utf8"])
def test_server_printing_to_stdout_connects_quietly(mcp, capsys, caplog, bad_utf8):
    option = " --bad-utf8" if bad_utf8 else ""
    mcp(f"connect noisy -- {sys.executable} {NOISY_SERVER}{option}")
    out = capsys.readouterr()
    assert "Connected 'noisy'" in out.out
    _no_noise(out.out + out.err, caplog)

    assert mcp("call noisy.echo text=still-works") == "still-works"
    log = str(mcp("log noisy"))
    assert "[mcp_magic] ignored non-JSON line on stdout: 'noisy-server: loading" in log
    assert "[mcp_magic] ignored line that is not a JSON-RPC message on stdout" in log
    if bad_utf8:
        assert "'noisy-server: \ufffd" in log

    import mcp_magic

    pid = mcp_magic._magics.manager.get("noisy").pid
    mcp("disconnect noisy")
    gc.collect()  # a never-retrieved exception would be reported now
    mcp("list")
    out = capsys.readouterr()
    _no_noise(out.out + out.err, caplog)
    assert pid is not None and not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_big_answer_from_a_2025_server_over_streamable_http():
    """Such servers answer in one server-sent event; the SDK's default limit is 1 MiB."""
    from mcp_magic import Host

    port = free_port()
    process = start_http_server([sys.executable, str(LEGACY_HTTP_SERVER), str(port)], port)
    try:
        with Host() as host:
            session = host.connect("legacy", url=f"http://127.0.0.1:{port}/mcp")
            assert session.protocol_version.startswith("2025")
            assert len(host.call("legacy.blob", size=3_000_000)) == 3_000_000
    finally:
        stop(process)


def test_big_answer_over_the_old_sse_transport(fault_sse):
    """The SDK's SSE client has a 1 MiB event limit of its own; a bigger answer works."""
    from mcp_magic import Host

    with Host() as host:
        host.connect("sse", url=fault_sse)
        assert len(host.call("sse.echo", text="x" * 3_000_000)) == 3_000_000
        assert host.call("sse.echo", text="still here") == "still here"
