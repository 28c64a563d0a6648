"""Real third-party data servers give the DataFrame `pd.read_sql_query` gives.

PostgreSQL (a throwaway cluster, tests/postgres.py) through @modelcontextprotocol/server-postgres
(npm), @bytebase/dbhub (npm) and postgres-mcp (PyPI, 1.x SDK); DuckDB, Parquet and CSV through
mcp-server-duckdb (1.x SDK) and mcp-server-motherduck (local file); an Excel workbook through
excel-mcp-server. All installed by `scripts/setup.sh --test` (tests/data_servers/), connected
the way a user does: an `mcpServers` file, through `Host` and through `%mcp`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from data_servers import ENVS, NODE_BIN, commands, env_for, make_duckdb, make_workbook

from mcp_magic import Host
from mcp_magic.host.sessions import McpError

pytestmark = pytest.mark.timeout(240)

ROWS = "select * from measurements order by id limit 200"
AGGREGATES = (
    "select count(*) as n, sum(price) as total, avg(ratio) as mean_ratio, "
    "min(day) as first_day, max(seen_at) as last_seen, max(seen_tz) as last_tz, "
    "bool_or(active) as any_active from measurements"
)
ONE_ROW = "select * from measurements where id = 7"
EMPTY = "select * from measurements where id < 0"
BAD_TABLE = "select * from no_such_table"

# session name: (SQL tool, its SQL argument, which database)
SQL_SERVERS = {
    "pgnode": ("query", "sql", "postgres"),
    "dbhub": ("execute_sql", "sql", "postgres"),
    "pgmcp": ("execute_sql", "sql", "postgres"),
    "duck": ("query", "query", "duckdb"),
    "mduck": ("execute_query", "sql", "duckdb"),
}
# server-postgres sends every date and timestamp as a JS Date: ISO text ending in Z.
ZULU_TIMESTAMPS = {"pgnode"}
# mcp-server-duckdb answers str(list_of_tuples): no column names anywhere.
NAMELESS = {"duck"}


# -- servers and oracles ----------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("data-servers")
    make_duckdb(directory)
    make_workbook(directory / "sales.xlsx")
    return directory


@pytest.fixture(scope="module")
def config_file(postgres, data_dir) -> Path:
    """The `mcpServers` file a user would write for these servers."""
    missing = [p for p in (ENVS, NODE_BIN) if not p.exists()]
    if missing:
        pytest.fail(f"{missing[0]} is missing: run `scripts/setup.sh --test`")
    duck = {"db": data_dir / "lab.duckdb"}
    servers = {}
    for name, argv in commands(postgres.url, duck).items():
        env = {"TZ": "UTC", **env_for(name, data_dir)}
        servers[name] = {"command": argv[0], "args": argv[1:], "env": env}
    path = data_dir / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}, indent=1))
    return path


@pytest.fixture(scope="module")
def host(config_file) -> Iterator[Host]:
    """Every server started at once, in parallel, for the whole module."""
    with Host() as running:
        outcomes = running.connect_config(str(config_file))
        failed = {n: str(o) for n, o in outcomes.items() if isinstance(o, Exception)}
        assert not failed, failed
        yield running


@pytest.fixture(scope="module")
def oracles(postgres, data_dir) -> Iterator[dict[str, Callable[[str], pd.DataFrame]]]:
    """`pd.read_sql_query` on the same data, through psycopg and duckdb."""
    import duckdb
    import psycopg

    pg = psycopg.connect(postgres.url)
    duck = duckdb.connect(str(data_dir / "lab.duckdb"), read_only=True)
    duck.execute("set timezone = 'UTC'")

    def reader(conn: Any) -> Callable[[str], pd.DataFrame]:
        def read(sql: str) -> pd.DataFrame:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "only SQLAlchemy is tested"
                return pd.read_sql_query(sql, conn)

        return read

    yield {"postgres": reader(pg), "duckdb": reader(duck)}
    pg.close()
    duck.close()


def call_sql(host: Host, server: str, sql: str) -> Any:
    tool, argument, _ = SQL_SERVERS[server]
    return host.call(f"{server}.{tool}", {argument: sql})


# -- comparing with the oracle -------------------------------------------------------------


def missing(value: Any) -> bool:
    """None, NaN, NaT or NA; lists and dicts are values, never missing."""
    if isinstance(value, (list, dict, np.ndarray)):
        return False
    return value is None or bool(pd.isna(value))


def kind_of(column: pd.Series) -> str:
    """What a column of the oracle holds, in the terms a data scientist expects."""
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetimetz"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    sample = next((v for v in column if not missing(v)), None)
    if isinstance(sample, bool):
        return "bool"
    if isinstance(sample, dt.datetime):
        return "datetimetz" if sample.tzinfo else "datetime"
    if isinstance(sample, dt.date):
        return "date"
    if isinstance(sample, decimal.Decimal):
        return "float"
    if isinstance(sample, uuid.UUID):
        return "uuid"
    if isinstance(sample, dt.timedelta):
        return "timedelta"
    if isinstance(sample, (list, dict, np.ndarray)):
        return "nested"
    return "text"


def dtype_problem(kind: str, column: pd.Series, server: str) -> str | None:
    """Why `column` does not have the dtype expected for `kind`, or None."""
    dtype = column.dtype
    values = [v for v in column if not missing(v)]
    aware = isinstance(dtype, pd.DatetimeTZDtype)
    ok = {
        "int": pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype),
        # A float column may arrive as whole numbers (JSON `1`); any number dtype will do.
        "float": pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype),
        "datetimetz": aware,
        # A naive timestamp or a date stays naive, unless the server itself adds a Z.
        "datetime": pd.api.types.is_datetime64_any_dtype(dtype)
        and (not aware or server in ZULU_TIMESTAMPS),
        "date": pd.api.types.is_datetime64_any_dtype(dtype)
        and (not aware or server in ZULU_TIMESTAMPS),
        "bool": str(dtype) in ("bool", "boolean"),  # `boolean` keeps NULLs as <NA>
        "text": all(isinstance(v, str) for v in values),
        "uuid": all(isinstance(v, (str, uuid.UUID)) for v in values),
        "timedelta": pd.api.types.is_timedelta64_dtype(dtype)
        or all(isinstance(v, dt.timedelta) for v in values),
        # Lists and structs stay Python lists and dicts, not their JSON or repr text.
        "nested": all(isinstance(v, (list, dict, np.ndarray)) for v in values),
    }[kind]
    return None if ok else f"{kind} column has dtype {dtype}"


def canonical(kind: str, column: pd.Series) -> list[Any]:
    """Values to compare across the oracle and the server: numbers, UTC instants, text."""
    if kind in ("int", "float"):
        return [None if missing(v) else float(v) for v in column]
    if kind in ("datetime", "datetimetz", "date"):
        stamps = pd.to_datetime(column.astype(object), utc=True)
        return [None if missing(v) else v.isoformat() for v in stamps]
    if kind == "bool":
        return [None if missing(v) else bool(v) for v in column]
    if kind == "timedelta":
        return [None if missing(v) else pd.Timedelta(v).total_seconds() for v in column]
    if kind == "nested":
        plain = [v.tolist() if isinstance(v, np.ndarray) else v for v in column]
        return [json.dumps(v, sort_keys=True, default=str) for v in plain]
    return [None if missing(v) else str(v) for v in column]


def assert_matches_oracle(frame: Any, oracle: pd.DataFrame, server: str) -> None:
    assert isinstance(frame, pd.DataFrame), f"{server}: got {type(frame).__name__}, not a table"
    expected_columns = (
        [f"col_{i}" for i in range(oracle.shape[1])] if server in NAMELESS
        else list(oracle.columns)
    )
    assert list(frame.columns) == expected_columns
    assert len(frame) == len(oracle)
    problems = {}
    for theirs, ours in zip(oracle.columns, frame.columns):
        kind = kind_of(oracle[theirs])
        problem = dtype_problem(kind, frame[ours], server)
        if problem:
            problems[ours] = problem
            continue
        got, want = canonical(kind, frame[ours]), canonical(kind, oracle[theirs])
        if kind in ("int", "float"):
            same = len(got) == len(want) and all(
                (a is None and b is None)
                or (a is not None and b is not None and np.isclose(a, b, rtol=1e-6))
                for a, b in zip(got, want)
            )
        else:
            same = got == want
        if not same:
            bad = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
            problems[ours] = f"row {bad}: {got[bad]!r} != {want[bad]!r}"
    assert not problems, f"{server}: {problems}"


# -- the oracle tests ------------------------------------------------------------------


@pytest.mark.parametrize("server", list(SQL_SERVERS))
@pytest.mark.parametrize("sql", [ROWS, AGGREGATES, ONE_ROW], ids=["rows", "aggregates", "one"])
def test_sql_answer_matches_read_sql_query(host, oracles, server, sql):
    frame = call_sql(host, server, sql)
    assert_matches_oracle(frame, oracles[SQL_SERVERS[server][2]](sql), server)


@pytest.mark.parametrize("server", ["pgnode", "dbhub", "pgmcp", "duck"])  # mduck cuts at 50 kB
def test_all_3000_rows_arrive_and_match(host, oracles, server):
    sql = "select * from measurements order by id"
    frame = call_sql(host, server, sql)
    assert_matches_oracle(frame, oracles[SQL_SERVERS[server][2]](sql), server)


@pytest.mark.parametrize("server", ["duck", "mduck"])
def test_duckdb_lists_structs_intervals_match_read_sql_query(host, oracles, server):
    sql = "select * from nested order by id"
    assert_matches_oracle(call_sql(host, server, sql), oracles["duckdb"](sql), server)


@pytest.mark.parametrize("server", ["duck", "mduck"])
@pytest.mark.parametrize("source", ["parquet", "csv"])
def test_duckdb_over_files_matches_read_sql_query(host, oracles, data_dir, server, source):
    reader = {"parquet": "read_parquet", "csv": "read_csv_auto"}[source]
    sql = f"select * from {reader}('{data_dir / ('measurements.' + source)}') order by id"
    sql += " limit 200"
    frame = call_sql(host, server, sql)
    assert_matches_oracle(frame, oracles["duckdb"](sql), server)


@pytest.mark.parametrize("server", list(SQL_SERVERS))
def test_empty_result_is_empty(host, server):
    value = call_sql(host, server, EMPTY)
    assert len(value) == 0
    if server == "mduck":  # the only one that says the columns of an empty answer
        assert isinstance(value, pd.DataFrame) and "price" in value.columns


@pytest.mark.parametrize("server", list(SQL_SERVERS))
def test_bad_sql_is_a_one_line_error(host, server):
    with pytest.raises(McpError) as info:
        call_sql(host, server, BAD_TABLE)
    message = str(info.value)
    assert "no_such_table" in message
    assert "\n" not in message
    assert '"success"' not in message and "errorType" not in message  # just the message


# -- more shapes from the same servers ---------------------------------------------------


def test_truncation_warning_is_kept(host):
    frame = call_sql(host, "mduck", "select * from measurements order by id")
    assert isinstance(frame, pd.DataFrame) and 0 < len(frame) < 3000
    attrs = json.dumps(frame.attrs, default=str)
    assert "Results limited to" in attrs


def test_postgres_mcp_object_details_are_parsed(host):
    value = host.call(
        "pgmcp.get_object_details", schema_name="public", object_name="measurements"
    )
    assert not isinstance(value, str)
    if isinstance(value, pd.DataFrame):
        text = value.to_json(default_handler=str) + json.dumps(value.attrs, default=str)
        assert "seen_tz" in text and "measurements_pkey" in text
    else:
        columns = {c["column"]: c["data_type"] for c in value["columns"]}
        assert columns["seen_tz"] == "timestamp with time zone" and len(columns) == 12
        assert value["constraints"][0]["name"] == "measurements_pkey"


def test_postgres_mcp_lists_tables(host):
    frame = host.call("pgmcp.list_objects", schema_name="public")
    assert isinstance(frame, pd.DataFrame)
    assert sorted(frame["name"]) == ["empty_table", "measurements"]


def test_dbhub_search_results_envelope(host):
    frame = host.call("dbhub.search_objects", object_type="table")
    assert isinstance(frame, pd.DataFrame)
    assert sorted(frame["name"]) == ["empty_table", "measurements"]
    assert "table" in json.dumps(frame.attrs, default=str)  # object_type, pattern, count


def test_motherduck_lists_tables(host):
    frame = host.call("mduck.list_tables")
    assert isinstance(frame, pd.DataFrame)
    assert sorted(frame["name"]) == ["empty_table", "measurements", "nested"]


def test_excel_range_matches_read_excel(host, data_dir):
    frame = host.call("excel.read_range", path="sales.xlsx", sheet="Sales")
    oracle = pd.read_excel(data_dir / "sales.xlsx", sheet_name="Sales")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(oracle.columns)
    assert len(frame) == len(oracle) == 50
    assert pd.api.types.is_integer_dtype(frame["id"]) and pd.api.types.is_integer_dtype(
        frame["units"]
    )
    assert pd.api.types.is_float_dtype(frame["price"])
    assert pd.api.types.is_datetime64_any_dtype(frame["day"])
    assert str(frame["paid"].dtype) == "bool"
    assert frame["price"].tolist() == oracle["price"].tolist()
    assert (frame["day"].dt.date == oracle["day"].dt.date).all()


def test_excel_paged_range_keeps_next_range(host):
    frame = host.call("excel.read_range", path="sales.xlsx", sheet="Sales", max_cells=60)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 9
    assert "A11:F51" in json.dumps(frame.attrs, default=str)


# -- the same servers in IPython -----------------------------------------------------------


@pytest.fixture(scope="module")
def magic_servers(shell, config_file) -> Iterator[Callable[[str], Any]]:
    def run(line: str) -> Any:
        return shell.run_line_magic("mcp", line)

    names = ["pgmcp", "mduck", "duck"]
    run(f"connect --config {config_file} {' '.join(names)}")
    yield run
    for name in names:
        run(f"disconnect {name}")


def test_magic_shows_the_truncation_warning(magic_servers, shell):
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        frame = magic_servers('call mduck.execute_query sql="select * from measurements"')
    shown = captured.stdout + captured.stderr + "".join(
        str(o.data.get("text/plain", "")) + str(o.data.get("text/html", ""))
        for o in captured.outputs
    )
    assert isinstance(frame, pd.DataFrame)
    assert "Results limited to" in shown


def test_magic_postgres_mcp_numeric_dates_become_dtypes(magic_servers):
    frame = magic_servers(f'call pgmcp.execute_sql sql="{AGGREGATES}"')
    assert isinstance(frame, pd.DataFrame) and frame["n"].tolist() == [3000]
    assert pd.api.types.is_float_dtype(frame["total"])
    assert pd.api.types.is_datetime64_any_dtype(frame["first_day"])
    assert isinstance(frame["last_tz"].dtype, pd.DatetimeTZDtype)


@pytest.mark.parametrize("server", ["pgmcp", "duck"])  # both on the 1.x SDK
def test_log_of_a_1x_server_folds_the_probe_noise(magic_servers, server):
    log = str(magic_servers(f"log {server}"))
    lines = [line for line in log.splitlines() if line.strip()]
    assert sum("validation error" in line for line in lines) <= 1
    assert not any("errors.pydantic.dev" in line for line in lines)


def test_magic_bad_sql_is_one_line(magic_servers):
    with pytest.raises(Exception) as info:
        magic_servers(f'call pgmcp.execute_sql sql="{BAD_TABLE}"')
    message = str(info.value)
    assert "no_such_table" in message and "\n" not in message
