"""Real third-party data servers: where setup.sh installed them, how a user starts them,
and the data files (DuckDB, Parquet, CSV, Excel) they are tested on."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ENVS = HERE / "envs"
NODE_BIN = HERE.parent / "node" / "node_modules" / ".bin"

# The DuckDB twin of tests/postgres.py's `measurements`, plus a nested table.
DUCKDB_SQL = """
create table measurements as
select
    g::integer as id,
    g::bigint * 1000000007 as big,
    case when g % 17 = 0 then null else round(g * 1.37, 2)::decimal(12, 2) end as price,
    case when g % 13 = 0 then null else g / 7.0 end::double as ratio,
    ((g % 100) / 4.0)::real as score,
    case when g % 11 = 0 then null else date '2024-01-01' + (g % 400)::integer end as day,
    timestamp '2024-01-01 00:00:00' + g * interval 2233 second as seen_at,
    case when g % 19 = 0 then null
         else timestamptz '2024-01-01 00:00:00+00' + g * interval 3601 second end as seen_tz,
    case when g % 23 = 0 then null else g % 2 = 0 end as active,
    'item ' || g as label,
    case when g % 5 = 0 then null when g % 7 = 0 then 'café ☕ ' || g else 'n' || g end as note,
    ('00000000-0000-4000-8000-' || lpad(printf('%x', g), 12, '0'))::uuid as uid
from range(1, {rows} + 1) as t(g);
create table nested as
select
    g::integer as id,
    [g, g + 1] as pair,
    {{'k': 'v' || g, 'n': g}} as obj,
    interval (g) hour as span
from range(1, 6) as t(g);
create table empty_table (id integer, label varchar);
"""


def make_duckdb(directory: Path, rows: int = 3000) -> dict[str, Path]:
    """Write lab.duckdb, measurements.parquet and measurements.csv; return their paths."""
    import duckdb

    paths = {
        "db": directory / "lab.duckdb",
        "parquet": directory / "measurements.parquet",
        "csv": directory / "measurements.csv",
    }
    # Servers pin their own duckdb, older or newer than ours: write the oldest format.
    old_format = {"storage_compatibility_version": "v1.0.0"}
    with duckdb.connect(str(paths["db"]), config=old_format) as conn:
        conn.execute("set timezone = 'UTC'")
        conn.execute(DUCKDB_SQL.format(rows=rows))
        conn.execute(f"copy measurements to '{paths['parquet']}' (format parquet)")
        conn.execute(f"copy measurements to '{paths['csv']}' (header, delimiter ',')")
    return paths


def make_workbook(path: Path, rows: int = 50) -> Path:
    """An Excel workbook with a typed `Sales` sheet (header row, then data)."""
    import datetime as dt

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Sales"
    sheet.append(["id", "region", "units", "price", "day", "paid"])
    for i in range(1, rows + 1):
        sheet.append([
            i,
            ["north", "south", "east", "west"][i % 4],
            i * 3,
            round(i * 1.25, 2),
            dt.date(2024, 1, 1) + dt.timedelta(days=i),
            i % 2 == 0,
        ])
    book.save(path)
    return path


def commands(postgres_url: str, duck: dict[str, Path]) -> dict[str, list[str]]:
    """The command line a user would type for each server, by session name."""
    dsn = postgres_url.replace("postgresql://", "postgres://") + "?sslmode=disable"
    return {
        "pgnode": [str(NODE_BIN / "mcp-server-postgres"), postgres_url],
        "dbhub": [str(NODE_BIN / "dbhub"), "--transport", "stdio", "--dsn", dsn],
        "pgmcp": [
            str(ENVS / "postgres-mcp" / "bin" / "postgres-mcp"),
            "--access-mode=unrestricted",
            postgres_url,
        ],
        "duck": [
            str(ENVS / "mcp-server-duckdb" / "bin" / "mcp-server-duckdb"),
            "--db-path", str(duck["db"]),
            "--readonly",
        ],
        "mduck": [
            str(ENVS / "mcp-server-motherduck" / "bin" / "mcp-server-motherduck"),
            "--db-path", str(duck["db"]),
            "--home-dir", str(duck["db"].parent),
        ],
        "excel": [str(ENVS / "excel-mcp-server" / "bin" / "excel-mcp-server"), "stdio"],
    }


def env_for(name: str, excel_dir: Path) -> dict[str, str]:
    if name == "excel":
        return {"EXCEL_FILES_PATH": str(excel_dir)}
    return {}
