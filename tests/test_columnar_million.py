"""A million rows through MCP equal `pd.read_sql_query` on the same file, values and dtypes,
over stdio and streamable HTTP, through the Arrow fast path and through the JSON path.

The slowest tests of the suite on purpose (about a minute in all on two cores: the JSON
path carries ~95 MB of JSON per transport); they run in CI like every other test. The
table is bench/make_big_table.py's: ints, floats, short strings, ISO dates and timestamps.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from server_utils import REPO, HttpServer, no_server_left_behind, server_env

from mcp_magic.api import Host
from mcp_magic.tables.results import interpret

sys.path.insert(0, str(REPO / "bench"))
from make_big_table import DATE_COLUMNS, TABLE, make  # noqa: E402

__all__ = ["no_server_left_behind"]

ROWS = 1_000_000
SQL = f"SELECT * FROM {TABLE} ORDER BY id"
NO_CAP = ["--max-answer-bytes", str(1 << 30)]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make(tmp_path_factory.mktemp("million") / "big.db", ROWS)


@pytest.fixture(scope="module")
def want(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as con:
        return pd.read_sql_query(SQL, con, parse_dates=DATE_COLUMNS)


@pytest.fixture(scope="module")
def http_url(db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = HttpServer(tmp_path_factory.mktemp("http") / "server.log", "--db", str(db),
                        *NO_CAP)
    yield server.url
    server.stop()


def connect(host: Host, transport: str, db: Path, url: str) -> None:
    if transport == "stdio":
        host.connect("data", [sys.executable, "-m", "mcp_magic.server", "--db", str(db),
                              *NO_CAP], env=server_env())
    else:
        host.connect("data", url=url)


@pytest.mark.parametrize("path", ["arrow", "json"])
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_a_million_rows_equal_read_sql_query(transport, path, db, want, http_url,
                                             monkeypatch):
    import mcp_magic.host.sessions as sessions

    if path == "json":  # a host without the Arrow extension: the server answers JSON rows
        monkeypatch.setattr(sessions, "client_extensions", list)
    with Host(connect_timeout=120) as host:
        connect(host, transport, db, http_url)
        result = host.manager.call_tool("data", "query_db", {"sql": SQL, "limit": ROWS})
        structured = result.structured_content
        assert ("rows" not in structured) == (path == "arrow")  # the path we meant to test
        assert structured["row_count"] == ROWS and structured["truncated"] is False
        frame = interpret(result, "query_db").value  # what host.call gives
    assert list(frame.dtypes.astype(str)) == list(want.dtypes.astype(str))
    pd.testing.assert_frame_equal(frame, want, check_exact=True)
