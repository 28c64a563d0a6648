"""The built-in server's stdio writer: a message in pieces is the same JSON line."""

import asyncio
import json
import os
import subprocess
import sys

import mcp
import mcp_types as types
import pytest
from mcp.client.streamable_http import streamable_http_client
from server_utils import free_port, server_env, stdio_params, wait_for_port

from mcp_magic.server.stdio import BIG_LIST, BIG_STRING, message_chunks
from mcp_magic.stdio_transport import stdio_client


def whole_line(message: types.JSONRPCMessage) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"


@pytest.mark.parametrize("result", [
    {},
    {"content": [{"type": "text", "text": "small"}]},
    {"content": [{"type": "resource",
                  "resource": {"uri": "table://x", "blob": "QUJD" * BIG_STRING}}],
     "structuredContent": {"rows": [[i, f"é\"\n{i}", i / 3, None] for i in range(3 * BIG_LIST + 7)],
                           "note": "x" * (BIG_STRING + 1) + "\u2028\ud7ff\\"}},
    {"a": ["q" * (BIG_STRING + 5), "q" * (BIG_STRING + 5)], "b": list(range(BIG_LIST + 1))},
])
def test_pieces_make_the_same_line(result: dict) -> None:
    message = types.JSONRPCResponse(jsonrpc="2.0", id=7, result=result)
    chunks = list(message_chunks(message))
    line = b"".join(chunks)
    assert line == whole_line(message)
    assert json.loads(line)["result"] == result
    if result.get("structuredContent"):
        # the big parts came in pieces: none of them holds the whole answer
        assert max(map(len, chunks)) < len(line) / 2


def test_the_result_is_not_changed() -> None:
    rows = [[1, "a"]] * (BIG_LIST + 1)
    result = {"structuredContent": {"rows": rows}}
    message = types.JSONRPCResponse(jsonrpc="2.0", id=1, result=result)
    b"".join(message_chunks(message))
    assert message.result == {"structuredContent": {"rows": rows}}
    assert message.result["structuredContent"]["rows"] is rows


def test_requests_and_notifications_pass_whole() -> None:
    note = types.JSONRPCNotification(jsonrpc="2.0", method="notifications/progress",
                                     params={"progress": 1, "progressToken": "t"})
    assert list(message_chunks(note)) == [whole_line(note)]


# -- through a real pipe and a real socket -------------------------------------------------------

ROWS = 60_000
BIG_SQL = ("with recursive n(i) as (select 1 union all select i + 1 from n where i < 60000) "
           "select i, 'row ' || i || ' é \"q\"' as t, i / 7.0 as x from n")


async def _big_answers(transport: object) -> list:
    """Two answers of 60,000 JSON rows (about 2 MB each: written in pieces, followed by the
    reader's release message on stdio), then a small call on the same session."""
    async with mcp.Client(transport) as client:  # type: ignore[arg-type]  # no Arrow: JSON
        answers = [await client.call_tool("query_db", {"sql": BIG_SQL, "limit": ROWS})
                   for _ in range(2)]
        answers.append(await client.call_tool("list_tables", {}))
    return answers


def _check(answers: list) -> None:
    for answer in answers[:2]:
        rows = answer.structured_content["rows"]
        assert len(rows) == ROWS and not answer.is_error
        assert rows[0] == [1, 'row 1 é "q"', 1 / 7] and rows[-1][0] == ROWS
    assert not answers[2].is_error


def test_big_json_answers_over_stdio() -> None:
    _check(asyncio.run(_big_answers(stdio_client(stdio_params()))))


def test_big_json_answers_over_streamable_http() -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mcp_magic.server", "--transport", "http",
                               "--port", str(port)], env={**os.environ, **server_env()},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(server, port)
        url = f"http://127.0.0.1:{port}/mcp"
        _check(asyncio.run(_big_answers(streamable_http_client(url))))
    finally:
        server.terminate()
        server.wait(10)
