"""The built-in data server, started for real over stdio and streamable HTTP.

One read-only stdio server is shared by most tests (module-scoped fixture, owned by a
background event loop, because an MCP client must be entered and exited in one task).
Tests that need other flags start their own. No test leaves a server process behind.
"""

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import mcp
import pytest
from server_utils import (
    SAMPLE_DB,
    SAMPLE_FILES,
    TABLE_KEYS,
    LiveClient,
    error_text,
    free_port,
    no_server_left_behind,  # noqa: F401  (autouse fixture)
    server_env,
    stdio_params,
    table,
    wait_for_port,
)

TOOLS = {"query_db", "list_tables", "describe_table", "list_files", "read_csv"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root directory with the shipped demo files, a subfolder and an escaping symlink."""
    base = tmp_path_factory.mktemp("server")
    root = base / "root"
    shutil.copytree(SAMPLE_FILES, root)
    (root / "sub").mkdir()
    (root / "sub" / "notes.txt").write_text("hello\n")
    (root / "sub" / "mixed.csv").write_text("id,score,label,empty\n1,2.5,a,\n2,,b,\n3,4,,\n")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("password\nhunter2\n")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "inside_link").symlink_to(root / "sub", target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def live(root: Path) -> Iterator[LiveClient]:
    """The shared read-only stdio server on the shipped sample database."""
    client = LiveClient(stdio_params("--root", str(root)))
    try:
        yield client
    finally:
        client.close()


# --------------------------------------------------------------------------- the sample data


def test_sample_db_has_related_tables_with_thousands_of_rows() -> None:
    assert SAMPLE_DB.stat().st_size < 1024 * 1024
    con = sqlite3.connect(f"{SAMPLE_DB.as_uri()}?mode=ro", uri=True)
    try:
        counts = {name: con.execute(f"select count(*) from {name}").fetchone()[0]
                  for name in ("regions", "customers", "products", "orders", "order_items",
                               "sales")}
        assert con.execute("pragma foreign_key_check").fetchall() == []
        years = [y for (y,) in con.execute(
            "select distinct substr(order_date, 1, 4) from orders order by 1")]
    finally:
        con.close()
    assert counts["regions"] == 5
    assert counts["customers"] >= 400 and counts["products"] >= 50
    assert counts["orders"] >= 2500 and counts["order_items"] >= 7000
    assert counts["sales"] == counts["order_items"]
    assert years == ["2024", "2025"]


def test_instructions_and_tools_with_annotations_and_output_schemas(live: LiveClient) -> None:
    instructions = live.client.instructions or ""
    assert "SQL" in instructions and "list_files" in instructions
    tools = {tool.name: tool for tool in live.run(live.client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.annotations and tool.annotations.title
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.open_world_hint is False
        assert tool.output_schema is not None
        assert set(tool.output_schema["properties"]) >= TABLE_KEYS
        assert set(tool.output_schema["required"]) >= TABLE_KEYS
    schema = tools["query_db"].input_schema
    assert schema["required"] == ["sql"]
    assert schema["properties"]["limit"]["default"] == 100_000


def test_group_by_query_returns_the_table_shape(live: LiveClient) -> None:
    result = live.call("query_db", sql="select region, sum(amount) as total from sales "
                                       "group by region order by region")
    data = table(result)
    assert set(data) == TABLE_KEYS
    assert data["columns"] == ["region", "total"]
    assert data["types"] == ["TEXT", "REAL"]
    assert [row[0] for row in data["rows"]] == ["Central", "East", "North", "South", "West"]
    assert all(isinstance(row[1], float) and row[1] > 0 for row in data["rows"])
    assert data["row_count"] == 5 and data["truncated"] is False
    assert json.loads(result.content[0].text) == data  # type: ignore[union-attr]


def test_types_use_declared_dates_and_survive_empty_results(live: LiveClient) -> None:
    data = table(live.call("query_db", sql="select order_id, order_date, shipped_date, status "
                                           "from orders order by order_id limit 3"))
    assert data["types"] == ["INTEGER", "DATE", "DATE", "TEXT"]
    empty = table(live.call("query_db", sql="select * from orders where 0"))
    assert empty["rows"] == [] and empty["row_count"] == 0
    assert empty["types"] == ["INTEGER", "INTEGER", "DATE", "DATE", "TEXT", "TEXT"]
    odd = table(live.call("query_db", sql="select null as nada, x'00ff' as raw, 1.5 as r"))
    assert odd["types"] == ["NULL", "BLOB", "REAL"]
    assert odd["rows"] == [[None, "AP8=", 1.5]]


def test_truncation_with_a_small_limit(live: LiveClient) -> None:
    data = table(live.call("query_db", sql="select * from orders", limit=10))
    assert data["row_count"] == 10 and data["truncated"] is True
    data = table(live.call("query_db", sql="select * from regions", limit=5))
    assert data["row_count"] == 5 and data["truncated"] is False


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("insert into regions values (9, 'Mars', 'Nobody', 'Olympus')",
         "query_db is read-only: INSERT is not allowed (start the server with --allow-writes"),
        ("update orders set status = 'cancelled'", "read-only: UPDATE is not allowed"),
        ("delete from order_items", "read-only: DELETE is not allowed"),
        ("drop table customers", "read-only: DROP TABLE is not allowed"),
        ("create table t (x integer)", "read-only: CREATE TABLE is not allowed"),
        ("create temp view v as select 1", "read-only: CREATE TEMP VIEW is not allowed"),
        ("attach database '{tmp}/attached.db' as other", "query_db refuses ATTACH"),
        ("vacuum into '{tmp}/copy.db'", "query_db refuses ATTACH"),
        ("pragma journal_mode = delete", "read-only: PRAGMA journal_mode=delete is not allowed"),
        ("pragma query_only = 0", "read-only: PRAGMA query_only=0 is not allowed"),
        ("select 1; drop table orders", "exactly one SQL statement per call"),
        ("select count(*) from orders; delete from orders", "exactly one SQL statement"),
    ],
)
def test_writes_and_tricks_are_refused(live: LiveClient, tmp_path: Path, sql: str,
                                       expected: str) -> None:
    message = error_text(live.call("query_db", sql=sql.format(tmp=tmp_path)))
    assert expected in message
    assert list(tmp_path.iterdir()) == []  # ATTACH / VACUUM INTO created no file
    counts = table(live.call("query_db", sql="select (select count(*) from regions), "
                                             "(select count(*) from order_items)"))
    assert counts["rows"][0][0] == 5 and counts["rows"][0][1] > 7000


def test_read_only_pragmas_and_sql_errors(live: LiveClient) -> None:
    info = table(live.call("query_db", sql="pragma table_info(orders)"))
    assert "order_date" in [row[1] for row in info["rows"]]
    info = table(live.call("query_db", sql="select name, type from pragma_table_info('orders')"))
    assert ["order_date", "DATE"] in info["rows"]
    assert "no such table: nope" in error_text(live.call("query_db", sql="select * from nope"))
    assert "SQL error" in error_text(live.call("query_db", sql="selec 1"))


def test_list_tables_and_describe_table(live: LiveClient) -> None:
    tables = table(live.call("list_tables"))
    assert tables["columns"] == ["name", "type", "columns", "rows"]
    by_name = {row[0]: row for row in tables["rows"]}
    assert by_name["orders"][1:] == ["table", 6, 3000]
    assert by_name["sales"][1] == "view"
    described = table(live.call("describe_table", table="order_items"))
    assert described["columns"][:5] == ["name", "type", "notnull", "default", "pk"]
    assert described["table_rows"] > 7000
    rows = {row[0]: row for row in described["rows"]}
    assert rows["order_item_id"][4] == 1
    assert rows["order_id"][5] == "orders.order_id"
    assert "no table or view named 'nope'" in error_text(live.call("describe_table", table="nope"))


def test_resource_and_prompt(live: LiveClient) -> None:
    resources = live.run(live.client.list_resources()).resources
    assert [str(r.uri) for r in resources] == ["schema://database"]
    schema = live.run(live.client.read_resource("schema://database")).contents[0].text
    assert "CREATE TABLE orders" in schema and "CREATE VIEW sales" in schema
    prompts = live.run(live.client.list_prompts()).prompts
    assert [p.name for p in prompts] == ["explore_table"]
    prompt = live.run(live.client.get_prompt("explore_table", {"table": "orders"}))
    assert "orders" in prompt.messages[0].content.text  # type: ignore[union-attr]


def test_a_large_result_comes_back_quickly(live: LiveClient) -> None:
    sql = ("select o.order_id, o.order_date, o.status, i.unit_price "
           "from orders o, order_items i limit 100000")
    start = time.perf_counter()
    result = live.call("query_db", sql=sql)
    elapsed = time.perf_counter() - start
    data = table(result)
    assert data["row_count"] == 100_000 and data["truncated"] is False
    assert data["types"] == ["INTEGER", "DATE", "TEXT", "REAL"]
    assert len(result.content[0].text) < 10_000  # type: ignore[union-attr]  # a summary
    assert elapsed < 10, f"100,000 rows took {elapsed:.1f} s"


# --------------------------------------------------------------------------- files


def test_list_files_columns_and_names(live: LiveClient) -> None:
    data = table(live.call("list_files"))
    assert data["columns"] == ["name", "type", "size", "modified"]
    assert data["types"] == ["TEXT", "TEXT", "INTEGER", "TIMESTAMP"]
    rows = {row[0]: row for row in data["rows"]}
    assert rows["targets_2025.csv"][1] == "file" and rows["targets_2025.csv"][2] > 0
    assert rows["reports"][1] == "dir"
    assert rows["escape"][1] == "symlink"
    assert rows["targets_2025.csv"][3].startswith("20")
    deep = table(live.call("list_files", path="sub", recursive=True))
    assert {row[0] for row in deep["rows"]} == {"sub/notes.txt", "sub/mixed.csv"}
    everything = table(live.call("list_files", recursive=True, pattern="*.csv"))
    names = {row[0] for row in everything["rows"]}
    assert {"regions.csv", "targets_2025.csv", "sub/mixed.csv"} <= names
    assert not any(name.startswith("escape/") for name in names)  # symlinks are not followed
    assert table(live.call("list_files", recursive=True, limit=2))["truncated"] is True


def test_list_files_accepts_absolute_paths_and_links_inside_the_root(
        live: LiveClient, root: Path) -> None:
    data = table(live.call("list_files", path=str(root / "reports")))
    assert [row[0] for row in data["rows"]] == ["reports/q3_2025_summary.md"]
    data = table(live.call("list_files", path="inside_link"))
    assert {row[0] for row in data["rows"]} == {"inside_link/notes.txt", "inside_link/mixed.csv"}


@pytest.mark.parametrize(
    ("tool", "path", "expected"),
    [
        ("list_files", "..", "escapes the root directory"),
        ("list_files", "sub/../../..", "escapes the root directory"),
        ("list_files", "/etc", "is outside the root directory"),
        ("list_files", "escape", "goes through the symlink 'escape'"),
        ("list_files", "escape/", "goes through the symlink 'escape'"),
        ("read_csv", "escape/secret.csv", "goes through the symlink 'escape'"),
        ("read_csv", "../outside/secret.csv", "escapes the root directory"),
        ("list_files", "no/such/dir", "does not exist"),
        ("read_csv", "missing.csv", "does not exist"),
        ("read_csv", "sub", "is a directory"),
    ],
)
def test_paths_leaving_the_root_are_refused(live: LiveClient, tool: str, path: str,
                                            expected: str) -> None:
    assert expected in error_text(live.call(tool, path=path))


def test_read_csv_infers_types(live: LiveClient) -> None:
    data = table(live.call("read_csv", path="targets_2025.csv"))
    assert data["columns"] == ["region", "quarter", "target_revenue", "target_orders"]
    assert data["types"] == ["TEXT", "TEXT", "INTEGER", "INTEGER"]
    assert data["row_count"] == 20 and data["truncated"] is False
    mixed = table(live.call("read_csv", path="sub/mixed.csv"))
    assert mixed["types"] == ["INTEGER", "REAL", "TEXT", "NULL"]
    assert mixed["rows"] == [[1, 2.5, "a", None], [2, None, "b", None], [3, 4.0, None, None]]
    short = table(live.call("read_csv", path="regions.csv", limit=2))
    assert short["row_count"] == 2 and short["truncated"] is True


# --------------------------------------------------------------------------- other servers


def test_allow_writes_on_a_copy(tmp_path: Path) -> None:
    db = tmp_path / "copy.db"
    shutil.copy(SAMPLE_DB, db)
    before = SAMPLE_DB.stat().st_mtime_ns
    client = LiveClient(stdio_params("--db", str(db), "--root", str(tmp_path),
                                     "--allow-writes", "--timeout", "0.5"))
    try:
        tools = {t.name: t for t in client.run(client.client.list_tools()).tools}
        annotations = tools["query_db"].annotations
        assert annotations is not None
        assert annotations.read_only_hint is False and annotations.destructive_hint is True
        inserted = table(client.call(
            "query_db", sql="insert into regions (name, manager, hq_city) "
                            "values ('Mars', 'Nobody', 'Olympus')"))
        assert inserted == {"columns": ["rows_affected"], "types": ["INTEGER"], "rows": [[1]],
                            "row_count": 1, "truncated": False}
        count = table(client.call("query_db", sql="select count(*) from regions"))
        assert count["rows"] == [[6]]
        assert "refuses ATTACH" in error_text(client.call(
            "query_db", sql=f"attach '{tmp_path}/other.db' as other"))
        assert "exactly one SQL statement" in error_text(client.call(
            "query_db", sql="delete from regions; delete from orders"))
        assert table(client.call("query_db", sql="select count(*) from regions"))["rows"] == [[6]]
        forever = "with recursive c(x) as (select 1 union all select x + 1 from c) " \
                  "select count(*) from c"
        assert "stopped the query after 0.5 s" in error_text(client.call("query_db", sql=forever))
    finally:
        client.close()
    assert not (tmp_path / "other.db").exists()
    assert SAMPLE_DB.stat().st_mtime_ns == before


@pytest.fixture(scope="module")
def http_url(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("http") / "server.log"
    with open(log, "wb") as errlog:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcp_magic.server", "--transport", "http",
             "--port", str(port), "--root", str(root)],
            env={**os.environ, **server_env()}, stdin=subprocess.DEVNULL,
            stdout=errlog, stderr=subprocess.STDOUT)
    try:
        wait_for_port(proc, port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def over_http(url: str, work: Callable[[mcp.Client], Coroutine[Any, Any, Any]],
              mode: str = "auto") -> Any:
    async def main() -> Any:
        async with mcp.Client(url, mode=mode) as client:  # type: ignore[arg-type]
            return await work(client)

    return asyncio.run(main())


def test_streamable_http_tools_and_query(http_url: str) -> None:
    async def work(client: mcp.Client) -> tuple[Any, ...]:
        tools = await client.list_tools()
        good = await client.call_tool("query_db", {"sql": "select region, sum(amount) as total "
                                                          "from sales group by region"})
        bad = await client.call_tool("query_db", {"sql": "drop table orders"})
        files = await client.call_tool("list_files", {"path": ".."})
        return tools, good, bad, files, client.instructions

    tools, good, bad, files, instructions = over_http(http_url, work)
    assert {tool.name for tool in tools.tools} == TOOLS
    data = table(good)
    assert data["columns"] == ["region", "total"] and data["types"] == ["TEXT", "REAL"]
    assert data["row_count"] == 5
    assert "DROP TABLE is not allowed" in error_text(bad)
    assert "escapes the root directory" in error_text(files)
    assert instructions and "SQL" in instructions


def test_streamable_http_with_the_legacy_handshake(http_url: str) -> None:
    async def work(client: mcp.Client) -> tuple[str, str | None, Any]:
        result = await client.call_tool("list_tables", {})
        return client.protocol_version, client.instructions, result

    version, instructions, result = over_http(http_url, work, mode="legacy")
    assert version.startswith("2025")
    assert instructions and "list_files" in instructions
    assert "orders" in [row[0] for row in table(result)["rows"]]


def test_cli_rejects_a_missing_database(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mcp_magic.server", "--db", str(tmp_path / "nope.db")],
        env={**os.environ, **server_env()}, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert "database not found" in proc.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--db", "{fifo}"], "database is not a regular file"),
        (["--timeout", "0"], "argument --timeout: must be a positive number, not '0'"),
        (["--max-answer-bytes", "lots"], "argument --max-answer-bytes: not a number: 'lots'"),
        (["--session-idle-timeout", "inf"], "must be a positive number, not 'inf'"),
    ],
)
def test_cli_rejects_bad_options_in_one_line(tmp_path: Path, args: list[str],
                                             expected: str) -> None:
    fifo = tmp_path / "db.fifo"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "mcp_magic.server", *(a.format(fifo=fifo) for a in args)],
        env={**os.environ, **server_env()}, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert expected in proc.stderr.strip().splitlines()[-1]
