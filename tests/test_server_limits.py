"""The data server's bounds, over stdio and streamable HTTP: nothing blocks, nothing grows
without limit, and every refusal is one line that names its cause.

Each case runs against the real server process, once over each transport.
"""

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from server_utils import (
    SAMPLE_DB,
    HttpServer,
    LiveClient,
    error_text,
    no_server_left_behind,  # noqa: F401  (autouse fixture)
    stdio_params,
    table,
)

from mcp_magic.server.app import call_in_thread
from mcp_magic.server.common import Deadline, Settings

MAX_VALUE = 1_000_000
MAX_ANSWER = 200_000


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A root with a FIFO, a socket, a symlink loop, a long line and a large CSV."""
    base = tmp_path_factory.mktemp("limits")
    root = base / "root"
    root.mkdir()
    (root / "small.csv").write_text("id,name\n1,a\n2,b\n")
    os.mkfifo(root / "pipe.csv")
    (root / "to_pipe.csv").symlink_to(root / "pipe.csv")
    (root / "loop").symlink_to(root / "loop")
    (root / "ping").symlink_to(root / "pong")
    (root / "pong").symlink_to(root / "ping")
    (root / "long_line.csv").write_text("id,text\n1," + "x" * (MAX_VALUE + 10) + "\n")
    (root / "many.csv").write_text(
        "id,text\n" + "".join(f"{i},{'y' * 50}\n" for i in range(20_000)))
    os.close(os.open(os.fsencode(root) + b"/caf\xe9.csv", os.O_CREAT | os.O_WRONLY))
    (root / "crowd").mkdir()
    for i in range(3000):
        (root / "crowd" / f"file_number_{i:05d}.txt").touch()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "server.sock"))
    yield root
    sock.close()


def limited_args(root: Path) -> list[str]:
    return ["--root", str(root), "--max-value-bytes", str(MAX_VALUE),
            "--max-answer-bytes", str(MAX_ANSWER)]


@pytest.fixture(scope="module", params=["stdio", "http"])
def live(request: pytest.FixtureRequest, root: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveClient]:
    """The server with small value and answer limits, over each transport."""
    if request.param == "stdio":
        client = LiveClient(stdio_params(*limited_args(root)))
        try:
            yield client
        finally:
            client.close()
        return
    server = HttpServer(tmp_path_factory.mktemp("http") / "server.log", *limited_args(root))
    try:
        client = LiveClient(server.url)
        try:
            yield client
        finally:
            client.close()
    finally:
        server.stop()


# --------------------------------------------------------------------------- not a regular file


@pytest.mark.parametrize(
    ("tool", "path", "expected"),
    [
        ("read_csv", "pipe.csv", "'pipe.csv' is a FIFO (named pipe): read_csv reads only "
                                 "regular files"),
        ("read_csv", "to_pipe.csv", "'to_pipe.csv' is a FIFO (named pipe)"),
        ("list_files", "pipe.csv", "'pipe.csv' is a FIFO (named pipe): list_files lists only"),
        ("read_csv", "server.sock", "'server.sock' is a socket: read_csv reads only regular"),
    ],
)
def test_fifos_and_sockets_are_refused_without_blocking(live: LiveClient, tool: str,
                                                         path: str, expected: str) -> None:
    assert expected in error_text(live.call(tool, path=path))
    # The server is not stuck: the next call answers.
    assert table(live.call("read_csv", path="small.csv"))["rows"] == [[1, "a"], [2, "b"]]


def test_a_listing_shows_special_files_without_opening_them(live: LiveClient) -> None:
    rows = {row[0]: row[1] for row in table(live.call("list_files"))["rows"]}
    assert rows["pipe.csv"] == "other" and rows["server.sock"] == "other"
    assert rows["loop"] == "symlink"
    assert rows["caf\ufffd.csv"] == "file"  # a name that is not UTF-8 still lists
    recursive = table(live.call("list_files", recursive=True))
    assert {"loop", "ping", "pipe.csv", "server.sock"} <= {row[0] for row in recursive["rows"]}


# --------------------------------------------------------------------------- names and links


@pytest.mark.parametrize(
    ("tool", "path", "expected"),
    [
        ("list_files", "loop", "goes through the symlink 'loop', which loops"),
        ("read_csv", "loop/x.csv", "goes through the symlink 'loop', which loops"),
        ("list_files", "ping", "goes through the symlink 'ping', which loops"),
        ("list_files", "a" * 5000, "(5,000 characters) is too long: paths may have at most"),
        ("read_csv", "a" * 5000, "is too long: paths may have at most"),
        ("list_files", "b" * 300, "is 300 bytes long: names may have at most 255 bytes"),
        ("read_csv", "sub/" + "c" * 296 + ".csv", "is 300 bytes long: names may have at most"),
        ("list_files", "/", "is outside the root directory"),
    ],
)
def test_bad_names_get_one_line_naming_the_cause(live: LiveClient, tool: str, path: str,
                                                 expected: str) -> None:
    message = error_text(live.call(tool, path=path))
    assert expected in message
    assert "Error executing tool" not in message
    assert len(message) < 400  # a 5,000-character name is not repeated in full


def test_a_pattern_that_can_match_nothing_is_one_line(live: LiveClient) -> None:
    assert "matches nothing" in error_text(live.call("list_files", pattern="/"))


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("sql", ["select printf('%500000000d', 1)", "select randomblob(2e8)",
                                 "select zeroblob(2000000000)"])
def test_huge_sql_values_stop_at_the_value_limit(live: LiveClient, sql: str) -> None:
    message = error_text(live.call("query_db", sql=sql))
    assert message == ("query_db stopped: a value would be larger than 1,000,000 bytes, the "
                       "server's limit per value (--max-value-bytes)")


def test_values_under_the_limit_still_come_back(live: LiveClient) -> None:
    data = table(live.call("query_db", sql="select length(printf('%500000d', 1)) as n, "
                                           "length(randomblob(1000)) as b"))
    assert data["rows"] == [[500_000, 1000]]


def test_a_large_answer_is_cut_at_the_byte_limit_with_a_note(live: LiveClient) -> None:
    data = table(live.call("query_db", sql="select *, printf('%100d', 1) as pad "
                                           "from order_items"))
    assert data["truncated"] is True
    assert 0 < data["row_count"] < 2000
    assert "more would exceed 200,000 bytes, the server's answer size limit " \
           "(--max-answer-bytes)" in data["note"]
    assert data["note"].startswith(f"answer cut after {data['row_count']:,} rows")
    # A small answer carries no note.
    assert "note" not in table(live.call("query_db", sql="select 1"))


def test_read_csv_bounds_lines_and_answers(live: LiveClient) -> None:
    message = error_text(live.call("read_csv", path="long_line.csv"))
    assert message == ("line 2 of 'long_line.csv' is longer than 1,000,000 characters, the "
                       "server's limit per value (--max-value-bytes)")
    data = table(live.call("read_csv", path="many.csv"))
    assert data["truncated"] is True and 0 < data["row_count"] < 20_000
    assert "(--max-answer-bytes)" in data["note"]
    assert table(live.call("read_csv", path="many.csv", limit=10))["row_count"] == 10


def test_a_long_listing_is_cut_at_the_byte_limit_with_a_note(live: LiveClient) -> None:
    data = table(live.call("list_files", path="crowd", limit=100_000))
    assert data["truncated"] is True and 0 < data["row_count"] < 3000
    assert "(--max-answer-bytes)" in data["note"]
    assert table(live.call("list_files", path="crowd", limit=5))["row_count"] == 5


# --------------------------------------------------------------------------- time


@pytest.fixture(scope="module", params=["stdio", "http"])
def hasty(request: pytest.FixtureRequest, root: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveClient]:
    """A server whose time limit per call has passed before any work starts."""
    args = ["--root", str(root), "--timeout", "1e-9"]
    server = None
    if request.param == "http":
        server = HttpServer(tmp_path_factory.mktemp("hasty") / "server.log", *args)
    try:
        client = LiveClient(server.url if server else stdio_params(*args))
        try:
            yield client
        finally:
            client.close()
    finally:
        if server:
            server.stop()


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("list_files", {"recursive": True},
         "list_files stopped after 1e-09 s, the server's time limit per call (--timeout)"),
        ("read_csv", {"path": "many.csv"},
         "read_csv stopped after 1e-09 s, the server's time limit per call (--timeout)"),
        ("query_db", {"sql": "with recursive c(x) as (select 1 union all select x + 1 from c) "
                             "select count(*) from c"},
         "query_db stopped the query after 1e-09 s, the server's time limit per call "
         "(--timeout)"),
    ],
)
def test_every_tool_stops_at_the_time_limit(hasty: LiveClient, tool: str,
                                            arguments: dict[str, object],
                                            expected: str) -> None:
    assert error_text(hasty.call(tool, **arguments)) == expected


# --------------------------------------------------------------------------- in-process


def run_call(work: Any, timeout: float = 60, grace: float = 5) -> Any:
    settings = Settings(db=SAMPLE_DB, root=Path("."), timeout=timeout)
    return anyio.run(lambda: call_in_thread("some_tool", settings, work, grace))


def test_work_that_ignores_its_deadline_is_abandoned_with_one_line() -> None:
    release = threading.Event()
    try:
        result = run_call(lambda deadline: release.wait(60), timeout=0.05, grace=0)
    finally:
        release.set()
    assert result.is_error
    assert result.content[0].text == ("some_tool stopped after 0.05 s, the server's time limit "
                                      "per call (--timeout)")


def test_an_unexpected_error_is_one_line_naming_it() -> None:
    def work(deadline: Deadline) -> Any:
        raise RuntimeError("the disk caught fire\nTraceback (most recent call last): ...")

    result = run_call(work)
    assert result.is_error
    assert result.content[0].text == "some_tool failed: RuntimeError: the disk caught fire"
