"""Tables as Arrow: the built-in server's fast path, the JSON path, and other servers' Arrow.

Every frame is compared, values and dtypes, with `pd.read_sql_query` on the same SQLite
file (ints with NULLs as Int64 and ISO dates parsed, as the host's JSON path gives them).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from server_utils import (
    REPO,
    HttpServer,
    LiveClient,
    no_server_left_behind,
    server_env,
    stdio_params,
)

from mcp_magic.api import Host
from mcp_magic.tables.columnar import ARROW_STREAM, EXTENSION_ID, frame_from_bytes
from mcp_magic.tables.results import interpret

__all__ = ["no_server_left_behind"]

ROWS = 50_000
SQL = "select * from facts order by id"
FOREIGN = REPO / "tests" / "servers" / "arrow_server.py"


def make_db(path: Path, rows: int) -> Path:
    """8 columns of every kind, NULLs in most, deterministic."""
    rng = random.Random(7)
    start = dt.datetime(2020, 1, 1)
    con = sqlite3.connect(path)
    con.execute(
        "create table facts (id integer primary key, qty integer, price real, name text,"
        " day date, at timestamp, big integer, ratio double)"
    )

    def row(i: int) -> tuple[Any, ...]:
        moment = start + dt.timedelta(seconds=rng.randrange(200_000_000),
                                      microseconds=rng.choice([0, rng.randrange(10**6)]))
        at = moment.isoformat(sep=" ") if i % 11 else None
        return (
            i,
            rng.randrange(-1000, 1000) if i % 7 else None,
            rng.uniform(-1e6, 1e6) if i % 5 else None,
            rng.choice(["north", "süd", "östra", "", "x" * 40]) if i % 13 else None,
            moment.date().isoformat() if i % 3 else None,
            at,
            2**62 - i,
            i / 3,
        )

    con.executemany("insert into facts values (?,?,?,?,?,?,?,?)", (row(i) for i in range(rows)))
    con.commit()
    con.close()
    return path


def expected(db: Path, sql: str = SQL) -> pd.DataFrame:
    with sqlite3.connect(db) as con:
        frame = pd.read_sql_query(sql, con)
    for name in ("qty",):
        frame[name] = frame[name].astype("Int64")
    for name in ("day", "at"):
        frame[name] = pd.to_datetime(frame[name], format="ISO8601")
    return frame


def same(frame: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(frame.dtypes.astype(str)) == list(want.dtypes.astype(str))
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), want, check_exact=True)


def is_arrow(result: Any) -> bool:
    kinds = [getattr(getattr(b, "resource", None), "mime_type", None) for b in result.content]
    return ARROW_STREAM in kinds


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_db(tmp_path_factory.mktemp("columnar") / "facts.db", ROWS)


@pytest.fixture(scope="module")
def want(db: Path) -> pd.DataFrame:
    return expected(db)


@pytest.fixture(scope="module")
def http_server(db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    server = HttpServer(tmp_path_factory.mktemp("http") / "server.log", "--db", str(db))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stdio_host(db: Path) -> Iterator[Host]:
    with Host() as host:
        host.connect("data", [sys.executable, "-m", "mcp_magic.server", "--db", str(db)],
                     env=server_env())
        yield host


@pytest.fixture(scope="module")
def http_host(http_server: HttpServer) -> Iterator[Host]:
    with Host() as host:
        host.connect("data", url=http_server.url)
        yield host


# --------------------------------------------------------------------------- the fast path


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_fast_path_equals_read_sql_query(transport, stdio_host, http_host, want):
    host = stdio_host if transport == "stdio" else http_host
    result = host.manager.call_tool("data", "query_db", {"sql": SQL})
    assert is_arrow(result)
    assert "rows" not in result.structured_content  # the rows are only in the Arrow blob
    assert result.structured_content["row_count"] == ROWS
    assert result.structured_content["types"] == [
        "INTEGER", "INTEGER", "REAL", "TEXT", "DATE", "TIMESTAMP", "INTEGER", "REAL"]
    assert "First 20 rows" in result.content[0].text  # what a model reads: a preview
    same(host.call("data.query_db", sql=SQL), want)


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_json_path_for_a_client_that_did_not_ask(transport, db, http_server, http_host, want):
    # `http_host` first: the host's one-pass parse of big HTTP answers is in place, and
    # another client in the same process still gets plain rows.
    client = LiveClient(stdio_params("--db", str(db)) if transport == "stdio"
                        else http_server.url)
    try:
        result = client.call("query_db", sql=SQL)
    finally:
        client.close()
    assert not is_arrow(result)
    assert type(result.structured_content["rows"]) is list
    assert len(json.loads(json.dumps(result.structured_content["rows"]))) == ROWS
    same(interpret(result, "query_db").value, want)


def test_the_hosts_json_path_over_http_reads_compact_columns(http_server, monkeypatch, want):
    from mcp_magic.tables.big_json import CompactRows, plain_rows

    monkeypatch.setattr("mcp_magic.host.sessions.client_extensions", list)  # no Arrow asked
    with Host() as host:
        host.connect("data", url=http_server.url)
        result = host.manager.call_tool("data", "query_db", {"sql": SQL})
        assert not is_arrow(result)
        assert isinstance(result.structured_content["rows"], CompactRows)
        # Handed on as it is (--raw, a tool's view), the rows are a plain list again,
        # which json.dumps reads whole.
        rows = plain_rows(result).structured_content["rows"]
        assert type(rows) is list and len(json.loads(json.dumps(rows))) == ROWS
        same(host.call("data.query_db", sql=SQL), want)


def test_meta_preference_turns_the_fast_path_on_and_off(db, stdio_host):
    client = LiveClient(stdio_params("--db", str(db)))
    try:
        asked = client.run(client.client.call_tool(
            "query_db", {"sql": SQL, "limit": 5}, meta={EXTENSION_ID: {}}))
    finally:
        client.close()
    assert is_arrow(asked)
    same(interpret(asked, "query_db").value, expected(db, SQL + " limit 5"))

    session = stdio_host.manager.connected("data")
    declined = stdio_host.manager.run(session.client.call_tool(
        "query_db", {"sql": SQL, "limit": 5}, meta={EXTENSION_ID: {"mimeTypes": []}}))
    assert not is_arrow(declined) and len(declined.structured_content["rows"]) == 5


def test_limit_and_byte_cap_say_so(db, stdio_host, tmp_path):
    frame = stdio_host.call("data.query_db", sql=SQL, limit=10)
    assert len(frame) == 10 and frame.attrs["truncated"] is True
    same(frame, expected(db, SQL + " limit 10"))

    with Host() as host:
        host.connect("small", [sys.executable, "-m", "mcp_magic.server", "--db", str(db),
                               "--max-answer-bytes", "200000"], env=server_env())
        result = host.manager.call_tool("small", "query_db", {"sql": SQL})
        frame = interpret(result, "query_db").value
    assert is_arrow(result)
    assert 0 < len(frame) < ROWS and frame.attrs["truncated"] is True
    assert "--max-answer-bytes" in frame.attrs["note"]
    assert "--max-answer-bytes" in result.content[0].text
    same(frame, expected(db, f"{SQL} limit {len(frame)}"))


def test_empty_result_keeps_columns_and_types(db, stdio_host):
    frame = stdio_host.call("data.query_db", sql="select * from facts where id < 0")
    want = expected(db, "select * from facts where id < 0")
    assert list(frame.columns) == list(want.columns) and len(frame) == 0
    assert str(frame["day"].dtype).startswith("datetime64")
    assert str(frame["id"].dtype) == "int64"


def test_read_csv_fast_path_equals_json(stdio_host, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,c\n1,2.5,x\n2,,y\n,3.5,\n")
    with Host() as host:
        host.connect("files", [sys.executable, "-m", "mcp_magic.server", "--root", str(tmp_path)],
                     env=server_env())
        result = host.manager.call_tool("files", "read_csv", {"path": "t.csv"})
        fast = interpret(result, "read_csv").value
    client = LiveClient(stdio_params("--root", str(tmp_path)))
    try:
        slow = interpret(client.call("read_csv", path="t.csv"), "read_csv").value
    finally:
        client.close()
    assert is_arrow(result)
    pd.testing.assert_frame_equal(fast, slow)
    assert list(fast.dtypes.astype(str)) == ["Int64", "float64", "str"]


# --------------------------------------------------------------------------- the builder


def test_sqlite_mixed_types_across_chunks_unify():
    from mcp_magic.server.arrow import FIRST_CHUNK, ColumnBuilder

    builder = ColumnBuilder(["v", "n", "b"], {"n": "DATE"})
    builder.add([(i, None, b"\x00\xff") for i in range(FIRST_CHUNK)])
    builder.add([(1.5, "2024-01-02", None), ("text", None, b"\x01")])
    table, types = builder.finish()
    assert types == ["TEXT", "DATE", "BLOB"]
    assert table.column("v").to_pylist()[-3:] == ["1023", "1.5", "text"]
    frame = frame_from_bytes(_stream(table), "stream")
    assert frame["n"].iloc[-2] == pd.Timestamp("2024-01-02")
    assert frame["b"].iloc[0] == b"\x00\xff"  # blobs stay bytes in Arrow


@pytest.mark.parametrize("second", [
    [(7, "2024-01-03", None), (None, None, b"\x02")],  # fits the first chunk's types
    [(1.5, "2024-01-02", None), ("text", None, b"\x01")],  # does not: streaming stops
])
def test_streamed_chunks_read_back_as_the_rows(second):
    from mcp_magic.server.arrow import FIRST_CHUNK, ColumnBuilder, encode_ipc

    first = [(i, None, b"\x00\xff") for i in range(FIRST_CHUNK)]
    builder = ColumnBuilder(["v", "n", "b"], {"n": "DATE"}, stream=True)
    builder.add(first)
    builder.add(second)
    assert builder.streaming == (second[0][0] == 7)
    pieces, types = builder.finish_ipc()
    encoded = encode_ipc(pieces, ["v", "n", "b"], builder.rows)
    frame = frame_from_bytes(base64.b64decode(encoded.blob), "stream")
    assert len(frame) == FIRST_CHUNK + 2
    assert types[1:] == ["DATE", "BLOB"]
    assert frame["n"].iloc[-2] == pd.Timestamp(second[0][1])
    assert frame["b"].iloc[0] == b"\x00\xff" and frame["b"].iloc[-1] == second[1][2]
    assert frame["v"].iloc[5] == (5 if types[0] == "INTEGER" else "5")


@pytest.mark.parametrize("sizes", [[0], [1], [2], [1, 1, 1, 1], [2, 2, 2], [5, 1], [1, 5],
                                   [(3 << 20) + 1, 1, 2, 7]])
def test_base64_in_pieces_is_base64_of_the_whole(sizes):
    from mcp_magic.server.arrow import base64_text

    pieces = [bytearray(random.randbytes(n)) for n in sizes]
    whole = b"".join(pieces)
    assert base64_text(pieces) == base64.b64encode(whole).decode()
    assert pieces == []  # each piece is let go once encoded


def _stream(table: Any) -> bytes:
    from mcp_magic.server.arrow import ipc_bytes

    return ipc_bytes(table)


# --------------------------------------------------------------------------- other servers


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    where = tmp_path_factory.mktemp("foreign")
    with Host() as host:
        host.connect("other", [sys.executable, str(FOREIGN)],
                     env={"ARROW_SERVER_DIR": str(where), **server_env()})
        yield host


@pytest.mark.parametrize("tool", ["arrow_table", "parquet_table", "linked_table", "file_table"])
def test_another_servers_binary_table_becomes_a_frame(foreign, tool):
    frame = foreign.call(f"other.{tool}")
    assert isinstance(frame, pd.DataFrame)
    unit = str(pd.to_datetime(pd.Series(["2024-01-02"]), format="ISO8601").dtype)
    assert dict(frame.dtypes.astype(str)) == {
        "id": "int64", "score": "float64", "count": "Int64", "name": "str",
        "day": unit, "at": unit}
    assert frame["count"].isna().tolist() == [False, True, False]
    assert frame["day"].iloc[0] == pd.Timestamp("2024-01-02")
    assert frame["at"].iloc[2] == pd.Timestamp("2025-06-07 08:09:10.123456")


def test_another_servers_json_still_works(foreign):
    assert foreign.call("other.plain") == {"answer": 42}


def test_loading_does_not_import_pyarrow():
    code = ("import sys, mcp_magic, mcp_magic.host.sessions, mcp_magic.tables.results, "
            "mcp_magic.tables.columnar;"
            "assert 'pyarrow' not in sys.modules and 'pandas' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_blob_cells_in_the_preview_are_base64(tmp_path):
    from mcp_magic.server.arrow import ColumnBuilder, arrow_answer

    builder = ColumnBuilder(["b"])
    builder.add([(b"\x00\x01",)])
    table, types = builder.finish()
    result = arrow_answer("query_db", table, types, builder.preview, False, None)
    assert base64.b64encode(b"\x00\x01").decode() in result.content[0].text


# --------------------------------------------------------------------------- caps and paging


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_pages_with_offset_add_up_to_the_table(transport, stdio_host, http_host, want):
    host = stdio_host if transport == "stdio" else http_host
    pages, offset = [], 0
    while True:
        page = host.call("data.query_db", sql=SQL, limit=20_000, offset=offset)
        pages.append(page)
        offset += len(page)
        if not page.attrs["truncated"]:
            break
        # the one line a cell can show says how to get the rest
        assert page.attrs["note"] == (f"20,000 rows of more (limit=20,000); offset={offset} "
                                      "fetches the next page, a larger limit= more at once")
    assert [len(p) for p in pages] == [20_000, 20_000, 10_000]
    same(pd.concat(pages, ignore_index=True), want)


def test_json_answer_pages_and_notes_too(db):
    client = LiveClient(stdio_params("--db", str(db)))
    try:
        data = client.call("query_db", sql=SQL, limit=3, offset=49_998).structured_content
        last = client.call("query_db", sql=SQL, limit=3, offset=49_997).structured_content
    finally:
        client.close()
    assert [row[0] for row in data["rows"]] == [49_998, 49_999] and not data["truncated"]
    assert "note" not in data
    assert [row[0] for row in last["rows"]] == [49_997, 49_998, 49_999]
    assert last["truncated"] is False  # exactly the rest: nothing more


def test_a_big_answer_over_http_with_progress_is_one_event_in_pieces(http_host, want):
    """Progress turns an HTTP answer into an event stream: the big answer then goes out as
    one event, written in pieces from its bytes."""
    seen: list[tuple[float, float | None, str | None]] = []
    result = http_host.manager.call_tool("data", "query_db", {"sql": SQL},
                                         on_progress=lambda *item: seen.append(item))
    assert is_arrow(result) and seen and seen[-1][0] == ROWS
    same(interpret(result, "query_db").value, want)


def test_a_big_answer_reports_progress(db, want):
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    client = LiveClient(stdio_params("--db", str(db)))
    try:
        result = client.run(client.client.call_tool(
            "query_db", {"sql": SQL}, progress_callback=progress, meta={EXTENSION_ID: {}}))
    finally:
        client.close()
    assert is_arrow(result)
    same(interpret(result, "query_db").value, want)
    assert len(seen) > 3 and seen[-1] == (ROWS, ROWS, f"{ROWS:,} rows")  # the bar fills
    assert seen[0][1] == 100_000  # out of the limit until the end is known
    assert [value for value, _, _ in seen] == sorted(value for value, _, _ in seen)


# --------------------------------------------------------------------------- the agent


def test_agent_binds_the_whole_table_and_tells_the_model_a_preview(
    stdio_host, want, monkeypatch, tmp_path
):
    from fakes import openai_wire as ow
    from fakes.scripted_http import ScriptedServer

    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("OPENROUTER_API_KEY", "fake-or-columnar-key")
    with ScriptedServer() as model:
        model.push(
            ow.completion_reply(calls=[ow.Call("q1", "data__query_db", {"sql": SQL})]),
            ow.completion_reply("Fifty thousand facts."),
        )
        result = stdio_host.agent("Fetch the facts", "openrouter:openai/gpt-4o-mini",
                                  base_url=model.url, show=lambda e: None, new=True)
        tool_message = model.requests[1].body["messages"][-1]
    assert result.text == "Fifty thousand facts."
    (name,) = result.variables
    same(stdio_host.namespace[name], want)
    assert tool_message["role"] == "tool" and f"`{name}`" in tool_message["content"]
    assert len(tool_message["content"]) < 5_000  # the model gets a summary, not 50,000 rows


def test_call_pages_fetches_every_page_with_progress(stdio_host, want):
    seen: list[tuple[Any, ...]] = []
    frame = stdio_host.call_pages("data.query_db", sql=SQL, page_rows=20_000,
                                  progress=lambda *event: seen.append(event))
    same(frame, want)
    assert frame.attrs["truncated"] is False and frame.attrs["row_count"] == ROWS
    assert seen == [(20_000, None, "20,000 rows in 1 page"),
                    (40_000, None, "40,000 rows in 2 pages"),
                    (50_000, None, "50,000 rows in 3 pages")]


def test_parquet_written_by_pandas_keeps_its_index_and_dtypes():
    import io

    unit = str(pd.to_datetime(pd.Series(["2024-01-02"]), format="ISO8601").dtype)
    original = pd.DataFrame(
        {"n": pd.array([1, None, 3], dtype="Int64"), "x": [0.5, 1.5, None],
         "day": pd.to_datetime(["2024-01-02", None, "2025-12-31"]).astype(unit)},
        index=pd.Index(["a", "b", "c"], name="key"))
    buffer = io.BytesIO()
    original.to_parquet(buffer)
    frame = frame_from_bytes(buffer.getvalue(), "parquet")
    pd.testing.assert_frame_equal(frame, original)


def test_only_http_needs_a_round_trip_to_let_go_of_a_big_answer(stdio_host, http_host):
    """mcp_magic's stdio reader sends its own release message after a big line; over HTTP
    the host still makes one small request for it."""
    from mcp_magic.tables.columnar import _reader_lets_go

    assert _reader_lets_go(stdio_host.manager.get("data").client)
    assert not _reader_lets_go(http_host.manager.get("data").client)
