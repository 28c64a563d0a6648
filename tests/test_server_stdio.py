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

from mcp_magic.host.stdio_transport import stdio_client
from mcp_magic.server import deferred
from mcp_magic.server.stdio import BIG_LIST, BIG_STRING, message_chunks


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


@pytest.mark.parametrize("sizes", [[0], [1], [5, 1, 2], [3 << 20, 7], [1, 1, 1, 1, 4]])
def test_a_deferred_blob_is_written_as_its_base64(sizes: list[int]) -> None:
    import base64

    raw = [bytes((i * 7 + n) % 256 for i in range(size)) for n, size in enumerate(sizes)]
    placeholder = deferred.defer(deferred.Base64Blob([bytearray(p) for p in raw]))
    result = {"content": [{"type": "resource", "resource": {"uri": "table://x",
                                                            "blob": placeholder}}]}
    line = b"".join(message_chunks(types.JSONRPCResponse(jsonrpc="2.0", id=3, result=result)))
    expected = {"content": [{"type": "resource", "resource": {
        "uri": "table://x", "blob": base64.b64encode(b"".join(raw)).decode()}}]}
    assert line == whole_line(types.JSONRPCResponse(jsonrpc="2.0", id=3, result=expected))
    assert deferred.take(placeholder) is None  # written once, then gone


def test_deferred_rows_are_written_as_the_json_array() -> None:
    import pydantic_core

    rows = [[i, f"é\"{i}", i / 3, None] for i in range(10)]
    pieces = [pydantic_core.to_json(rows[a:b])[1:-1] for a, b in ((0, 3), (3, 4), (4, 10))]
    placeholder = deferred.defer(deferred.RawJson(pieces))
    message = types.JSONRPCResponse(jsonrpc="2.0", id=4, result={
        "structuredContent": {"columns": ["a"], "rows": placeholder, "row_count": 10}})
    line = b"".join(message_chunks(message))
    assert line == whole_line(types.JSONRPCResponse(jsonrpc="2.0", id=4, result={
        "structuredContent": {"columns": ["a"], "rows": rows, "row_count": 10}}))
    empty = deferred.defer(deferred.RawJson([]))
    message = types.JSONRPCResponse(jsonrpc="2.0", id=5, result={"rows": empty})
    assert json.loads(b"".join(message_chunks(message)))["result"] == {"rows": []}


def test_an_unknown_placeholder_is_left_alone() -> None:
    text = f"{deferred.PREFIX}999999"
    message = types.JSONRPCResponse(jsonrpc="2.0", id=6, result={"a": text})
    assert b"".join(message_chunks(message)) == whole_line(message)


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


def test_big_answers_over_the_sdks_own_writers_are_plain_values() -> None:
    """SSE and the handshake-era HTTP transport write with the SDK: the server must not
    defer there (a placeholder would reach the client)."""
    from mcp.client.sse import sse_client

    from mcp_magic.tables.columnar import client_extensions, result_frame

    rows = 30_000  # 90,000 cells: more than a text repeats (rows deferred where allowed),
    # less than the SDK's SSE client takes in one event (1 MiB)
    sql = BIG_SQL.replace("60000", str(rows)).replace("'row ' || i || ' é \"q\"'", "i % 7")

    async def arrow_and_json(transport: object, **options: object) -> list:
        async with mcp.Client(transport, extensions=client_extensions(),  # type: ignore[arg-type]
                              **options) as client:
            arrow = await client.call_tool("query_db", {"sql": sql, "limit": rows})
            json_rows = await client.call_tool(
                "query_db", {"sql": sql, "limit": rows},
                meta={"io.github.mcp-magic/arrow-tables": {"mimeTypes": []}})
        return [arrow, json_rows]

    for transport, path, options in (("sse", "/sse", {}), ("http", "/mcp", {"mode": "legacy"})):
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "mcp_magic.server", "--transport", transport, "--port",
             str(port)], env={**os.environ, **server_env()},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(server, port)
            url = f"http://127.0.0.1:{port}{path}"
            client = sse_client(url) if transport == "sse" else streamable_http_client(url)
            arrow, json_rows = asyncio.run(arrow_and_json(client, **options))
        finally:
            server.terminate()
            server.wait(10)
        frame = result_frame(arrow)
        assert len(frame) == rows and frame["t"].iloc[-1] == rows % 7
        assert not json_rows.is_error and len(json_rows.structured_content["rows"]) == rows
        assert json_rows.structured_content["rows"][-1] == [rows, rows % 7, rows / 7]


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


def test_rows_serialized_while_fetched_make_the_same_answer(tmp_path) -> None:
    """query_db's deferred JSON rows (what this server's writers send) give the same line
    as the rows built as Python objects: values, types, blobs, the cut and its note."""
    import sqlite3

    from mcp_magic.server.common import Settings
    from mcp_magic.server.sql import run_query
    from mcp_magic.server.tables import table_result

    path = tmp_path / "t.db"
    con = sqlite3.connect(path)
    con.execute("create table t (i integer, x real, s text, b blob, m, d date)")
    con.executemany("insert into t values (?, ?, ?, ?, ?, ?)", [
        (i, i / 7 if i % 9 else None, f"é\"{i}" * (i % 3), bytes([i % 256, 0]) if i % 4 else None,
         i if i % 2 else (str(i) if i % 3 else b"\x01"), f"2024-01-{i % 28 + 1:02d}")
        for i in range(20_000)])
    con.commit()
    con.close()
    settings = Settings(db=path, root=tmp_path)

    def line(result: types.CallToolResult) -> bytes:
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        return b"".join(message_chunks(types.JSONRPCResponse(jsonrpc="2.0", id=1,
                                                             result=dumped)))

    for limit in (15_000, 30_000):
        sql = "select * from t order by i"
        plain = line(table_result(run_query(settings, sql, limit, offset=10)))
        deferred_answer = run_query(settings, sql, limit, offset=10, deferred=True)
        rows = deferred_answer.structured_content["rows"]
        assert isinstance(rows, str) and rows.startswith(deferred.PREFIX)
        assert line(deferred_answer) == plain
    small = run_query(settings, "select * from t limit 5", 100, deferred=True)
    assert isinstance(small, dict) and len(small["rows"]) == 5  # small: built as always
    # the Arrow answer: its stream as bytes until written, the same base64 once written
    arrow = [line(run_query(settings, "select * from t", 30_000, arrow=True, deferred=d))
             for d in (False, True)]
    assert arrow[0] == arrow[1]
    assert deferred.pending() == 0
