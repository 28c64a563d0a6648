"""Record what the real data servers answer, raw, as JSON files (one per call).

    PYTHONPATH=$PWD .venv/bin/python tests/data_servers/capture_shapes.py OUTDIR

Each file holds the tool's schemas, the arguments, and the CallToolResult as the server
sent it (`isError`, every content block, `structuredContent`), plus what
`pd.read_sql_query` gives for the same SQL (columns, dtypes, first rows) where there is
an oracle. The shape converters are developed and tested against these.
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from postgres import cluster  # noqa: E402

from data_servers import commands, env_for, make_duckdb, make_workbook  # noqa: E402
from mcp_magic import Host  # noqa: E402
from mcp_magic.host import config  # noqa: E402

ALL = "select * from measurements order by id limit 25"
AGG = (
    "select count(*) as n, sum(price) as total, avg(ratio) as mean_ratio, "
    "min(day) as first_day, max(seen_at) as last_seen, max(seen_tz) as last_tz, "
    "bool_or(active) as any_active from measurements"
)
ONE = "select * from measurements where id = 7"
EMPTY = "select * from measurements where id < 0"
EMPTY_TABLE = "select * from empty_table"
BIG = "select * from measurements order by id"
UNICODE = "select label as \"ünïcode näme\", id as \"with space\", 1.5 as \"Σ\" from measurements "\
    "order by id limit 3"
BAD_TABLE = "select * from no_such_table"
BAD_SYNTAX = "selec 1"

SQL_CASES = {
    "all_types": ALL,
    "aggregates": AGG,
    "one_row": ONE,
    "empty": EMPTY,
    "empty_table": EMPTY_TABLE,
    "big_3000_rows": BIG,
    "unicode_columns": UNICODE,
    "error_no_table": BAD_TABLE,
    "error_syntax": BAD_SYNTAX,
}


def dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value


def record(host: Host, out: Path, server: str, tool: str, args: dict, oracle: Any) -> None:
    args = dict(args)
    case = args.pop("_case", "call")
    schema = host.tools(server)[tool]
    try:
        raw = dump(host.manager.call_tool(server, tool, args))
    except Exception as exc:  # a protocol error, not a tool answer: keep it too
        raw = {"exception": f"{type(exc).__name__}: {exc}"}
    entry = {
        "server": server,
        "tool": tool,
        "arguments": args,
        "input_schema": schema.input_schema,
        "output_schema": schema.output_schema,
        "result": raw,
        "oracle": oracle,
    }
    text = json.dumps(entry, indent=1, ensure_ascii=False, default=str)
    (out / f"{server}__{tool}__{case}.json").write_text(text)
    print(f"{server}.{tool} {case}: {len(text)} chars")


def oracle_frame(run_sql: Any, sql: str) -> Any:
    try:
        frame = run_sql(sql)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "columns": list(frame.columns),
        "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
        "rows": len(frame),
        "head_repr": [{k: repr(v) for k, v in row.items()}
                      for row in frame.head(5).to_dict("records")],
    }


def main(out: Path) -> None:
    import duckdb
    import pandas as pd
    import psycopg

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mcp-magic-shapes-"))
    duck = make_duckdb(work)
    make_workbook(work / "sales.xlsx")
    with cluster() as pg, Host() as host:
        specs = {
            name: config.stdio_spec(
                cmd, [f"{k}={v}" for k, v in env_for(name, work).items()], None
            )
            for name, cmd in commands(pg.url, duck).items()
        }
        for name, outcome in host.manager.connect_many(specs).items():
            print(name, "connected" if not isinstance(outcome, Exception) else outcome)
        pg_conn = psycopg.connect(pg.url)
        duck_conn = duckdb.connect(str(duck["db"]), read_only=True)
        duck_conn.execute("set timezone = 'UTC'")

        def pg_sql(sql: str) -> Any:
            pg_conn.rollback()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # psycopg is not SQLAlchemy
                return pd.read_sql_query(sql, pg_conn)

        def duck_sql(sql: str) -> Any:
            return duck_conn.execute(sql).df()

        pg_tools = {"pgnode": ("query", "sql"), "dbhub": ("execute_sql", "sql"),
                    "pgmcp": ("execute_sql", "sql")}
        duck_tools = {"duck": ("query", "query"), "mduck": ("execute_query", "sql")}
        duck_cases = dict(SQL_CASES)
        duck_cases["nested"] = "select * from nested order by id"
        duck_cases["parquet"] = f"select * from '{duck['parquet']}' order by id limit 10"
        duck_cases["csv"] = f"select * from read_csv_auto('{duck['csv']}') order by id limit 10"
        for server, (tool, arg) in pg_tools.items():
            for case, sql in SQL_CASES.items():
                record(host, out, server, tool, {arg: sql, "_case": case},
                       oracle_frame(pg_sql, sql))
        for server, (tool, arg) in duck_tools.items():
            for case, sql in duck_cases.items():
                record(host, out, server, tool, {arg: sql, "_case": case},
                       oracle_frame(duck_sql, sql))
        meta = [
            ("pgmcp", "list_schemas", {}),
            ("pgmcp", "list_objects", {"schema_name": "public"}),
            ("pgmcp", "get_object_details", {"schema_name": "public",
                                             "object_name": "measurements"}),
            ("pgmcp", "explain_query", {"sql": ONE}),
            ("dbhub", "search_objects", {"object_type": "table"}),
            ("dbhub", "search_objects", {"object_type": "column", "table": "measurements",
                                         "detail_level": "full", "_case": "columns"}),
            ("mduck", "list_databases", {}),
            ("mduck", "list_tables", {}),
            ("mduck", "list_columns", {"table": "measurements"}),
            ("excel", "list_workbooks", {}),
            ("excel", "describe_sheet", {"path": "sales.xlsx", "sheet": "Sales"}),
            ("excel", "read_range", {"path": "sales.xlsx", "sheet": "Sales"}),
            ("excel", "read_range", {"path": "sales.xlsx", "sheet": "Sales",
                                     "range": "A1:F4", "_case": "small"}),
            ("excel", "read_range", {"path": "sales.xlsx", "sheet": "Sales",
                                     "max_cells": 60, "_case": "paged"}),
            ("excel", "read_range", {"path": "nope.xlsx", "sheet": "Sales",
                                     "_case": "error"}),
            ("excel", "find_cells", {"path": "sales.xlsx", "query": "north"}),
        ]
        for server, tool, args in meta:
            record(host, out, server, tool, args, None)
        # What each server wrote to stderr: the %mcp log text for the 1.x/2.x servers.
        for name in specs:
            session = host.manager.get(name)
            (out / f"{name}__stderr_log.txt").write_text(session.log_tail())
        pg_conn.close()
        duck_conn.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("shapes"))
