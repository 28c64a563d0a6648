"""Real servers' answers through `%mcp call` and `Host.call`: one conversion, notes shown.

tests/servers/replay_server.py answers with the CallToolResults captured from real data
servers (tests/data/shapes/), over a real stdio transport.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from mcp_magic import Host
from mcp_magic.api import ToolError
from mcp_magic.magics import McpRuntimeError

REPLAY = Path(__file__).resolve().parent / "servers" / "replay_server.py"
COMMAND = f"{sys.executable} {REPLAY}"


def test_call_shows_the_truncation_warning_as_one_line(mcp, capsys):
    mcp(f"connect r -- {COMMAND}")
    capsys.readouterr()
    df = mcp("call r.mduck__execute_query__big_3000_rows")
    out = capsys.readouterr().out
    assert isinstance(df, pd.DataFrame) and len(df) == 10
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert notes == ["note: Results limited to 263 rows due to 50KB output size limit."]
    assert df.attrs["warning"].startswith("Results limited")


def test_call_of_a_literal_answer_gives_typed_columns(mcp):
    mcp(f"connect r -- {COMMAND}")
    df = mcp("call r.pgmcp__execute_sql__all_types")
    assert str(df["price"].dtype) == "float64"
    assert str(df["seen_tz"].dtype) == "datetime64[us, UTC]"


def test_error_envelope_stops_the_cell_with_one_line(mcp):
    mcp(f"connect r -- {COMMAND}")
    with pytest.raises(McpRuntimeError) as raised:
        mcp("call r.mduck__execute_query__error_no_table")
    message = str(raised.value)
    assert message.startswith("r.mduck__execute_query__error_no_table: Catalog Error:")
    assert "\n" not in message and "errorType" not in message


def test_host_call_uses_the_same_conversion():
    with Host() as host:
        host.connect("r", [sys.executable, str(REPLAY)])
        df = host.call("r.duck__query__all_types")
        assert list(df.columns)[:2] == ["col_0", "col_1"]
        assert str(df["col_7"].dtype) == "datetime64[us, UTC]"
        with pytest.raises(ToolError, match="relation \"no_such_table\" does not exist"):
            host.call("r.dbhub__execute_sql__error_no_table")
