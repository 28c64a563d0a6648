"""Answers captured from real data servers convert to the DataFrames a data scientist expects.

The files in tests/data/shapes/ are raw CallToolResults (see its README) from
server-postgres, dbhub, postgres-mcp, mcp-server-duckdb, mcp-server-motherduck and
excel-mcp-server over the same `measurements` table; each is read through `interpret`,
the one conversion `%mcp call`, `Host.call` and the agent share.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mcp.types import CallToolResult

from mcp_magic.tables.results import interpret

SHAPES = Path(__file__).resolve().parent / "data" / "shapes"
TOOLS = {"pgnode": "query", "dbhub": "execute_sql", "pgmcp": "execute_sql", "duck": "query",
         "mduck": "execute_query"}
SQL_SERVERS = list(TOOLS)
COLUMNS = ["id", "big", "price", "ratio", "score", "day", "seen_at", "seen_tz", "active",
           "label", "note", "uid"]
# What pd.read_sql_query gives, with the documented choices: int/float widths as int64 and
# float64, DATE as datetime64, boolean with NULLs as "boolean", uuid as text.
MEASUREMENTS = {
    "id": "int64", "big": "int64", "price": "float64", "ratio": "float64", "score": "float64",
    "day": "datetime64[us]", "seen_at": "datetime64[us]", "seen_tz": "datetime64[us, UTC]",
    "active": "boolean", "label": "str", "note": "str", "uid": "str",
}


def load(name: str) -> dict:
    return json.loads((SHAPES / f"{name}.json").read_text(encoding="utf-8"))


def read(name: str):
    entry = load(name)
    result = CallToolResult.model_validate(entry["result"])
    return interpret(result, entry["tool"], entry.get("output_schema")), entry


def frame(server: str, case: str) -> pd.DataFrame:
    outcome, _ = read(f"{server}__{TOOLS[server]}__{case}")
    assert outcome.error is None, outcome.error
    df = outcome.value
    assert isinstance(df, pd.DataFrame), type(df)
    if server == "duck":  # str(list_of_tuples): no column names anywhere
        assert list(df.columns) == [f"col_{i}" for i in range(df.shape[1])]
        if case in ("all_types", "one_row", "parquet"):
            df.columns = COLUMNS
    return df


def dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {str(c): str(t) for c, t in df.dtypes.items()}


@pytest.mark.parametrize("server", SQL_SERVERS)
def test_all_types_have_the_expected_dtypes(server):
    df = frame(server, "all_types")
    expected = dict(MEASUREMENTS)
    if server == "pgnode":  # node-postgres sends every date and timestamp as UTC "...Z"
        expected["day"] = expected["seen_at"] = "datetime64[us, UTC]"
    assert dtypes(df) == expected
    assert len(df) == 25


@pytest.mark.parametrize("server", SQL_SERVERS)
def test_all_types_values_agree_across_servers(server):
    reference = frame("pgmcp", "all_types")
    df = frame(server, "all_types")
    if server == "pgnode":
        for column in ("day", "seen_at"):
            df[column] = df[column].dt.tz_localize(None)
    pd.testing.assert_frame_equal(df, reference, check_dtype=True)


def test_all_types_values_match_the_database():
    df = frame("pgmcp", "all_types")
    entry = load("pgmcp__execute_sql__all_types")
    assert list(df.columns) == entry["oracle"]["columns"]
    assert df["price"][0] == 1.37 and df["big"][0] == 1_000_000_007
    # NULLs stay missing, in the rows the table definition puts them
    assert df["price"].isna().tolist() == [(i + 1) % 17 == 0 for i in range(25)]
    assert df["ratio"].isna().tolist() == [(i + 1) % 13 == 0 for i in range(25)]
    assert df["day"].isna().tolist() == [(i + 1) % 11 == 0 for i in range(25)]
    assert df["seen_tz"].isna().tolist() == [(i + 1) % 19 == 0 for i in range(25)]
    assert df["active"].isna().tolist() == [(i + 1) % 23 == 0 for i in range(25)]
    assert df["note"].isna().sum() == 5
    assert df["day"][0] == pd.Timestamp("2024-01-02")
    assert df["seen_tz"][0] == pd.Timestamp("2024-01-01 01:00:01", tz="UTC")
    assert df["uid"][0] == "00000000-0000-4000-8000-000000000001"
    assert "café ☕ 7" in df["note"].tolist()


@pytest.mark.parametrize("server", SQL_SERVERS)
def test_aggregates_are_numbers_and_timestamps(server):
    df = frame(server, "aggregates")
    assert len(df) == 1
    types = dtypes(df)
    n, total, mean, first_day, last_seen, last_tz, any_active = types.values()
    assert (n, total, mean, any_active) == ("int64", "float64", "float64", "bool")
    assert first_day.startswith("datetime64") and last_seen.startswith("datetime64")
    assert last_tz == "datetime64[us, UTC]"
    assert df.iloc[0, 0] == 3000


@pytest.mark.parametrize("server", SQL_SERVERS)
def test_one_row(server):
    df = frame(server, "one_row")
    assert len(df) == 1
    assert df["id"].tolist() == [7] if server != "duck" else df.iloc[0, 0] == 7
    assert dtypes(df)["seen_tz"] == "datetime64[us, UTC]"


@pytest.mark.parametrize("server", ["pgnode", "dbhub", "pgmcp", "mduck"])
def test_unicode_column_names(server):
    df = frame(server, "unicode_columns")
    assert list(df.columns) == ["ünïcode näme", "with space", "Σ"]
    assert df["Σ"].tolist() == [1.5, 1.5, 1.5]


def test_declared_types_type_an_empty_answer():
    df = frame("mduck", "empty")
    assert len(df) == 0
    assert dtypes(df)["day"] == "datetime64[us]"
    assert dtypes(df)["seen_tz"] == "datetime64[us, UTC]"
    assert dtypes(df)["id"] == "int64"


def test_empty_rows_envelope_is_an_empty_table():
    df = frame("dbhub", "empty")
    assert df.empty
    assert df.attrs["sql"].startswith("select")


@pytest.mark.parametrize("server", ["pgnode", "pgmcp", "duck"])
def test_bare_empty_list_stays_an_empty_list(server):
    outcome, _ = read(f"{server}__{TOOLS[server]}__empty")
    assert outcome.error is None and outcome.value == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("dbhub__execute_sql__error_no_table", 'relation "no_such_table" does not exist'),
        ("pgmcp__execute_sql__error_no_table", 'Error: relation "no_such_table" does not exist'),
        ("duck__query__error_no_table", "Database error: Catalog Error: Table with name"),
        ("mduck__execute_query__error_no_table", "Catalog Error: Table with name no_such_table"),
        ("excel__read_range__error", "Error executing tool read_range: Workbook nope.xlsx"),
    ],
)
def test_errors_are_one_line_messages(name, message):
    outcome, _ = read(name)
    assert outcome.value is None
    assert outcome.error.startswith(message)
    assert "\n" not in outcome.error
    assert '"success"' not in outcome.error and "errorType" not in outcome.error


def test_truncation_warning_is_a_notice_and_kept_in_attrs():
    outcome, _ = read("mduck__execute_query__big_3000_rows")
    df = outcome.value
    assert outcome.notices == ["Results limited to 263 rows due to 50KB output size limit."]
    assert df.attrs["truncated"] is True
    assert df.attrs["warning"].startswith("Results limited to 263 rows")


def test_envelope_fields_are_kept_and_shown():
    outcome, _ = read("mduck__list_tables__call")
    df = outcome.value
    assert list(df.columns) == ["schema", "name", "type", "comment"]
    assert df.attrs["tableCount"] == 3 and df.attrs["success"] is True
    assert outcome.notices == [
        "other fields: database=lab, schema=all, tableCount=3, viewCount=0"
    ]


def test_nested_duckdb_values_and_intervals():
    df = frame("mduck", "nested")
    assert dtypes(df)["span"] == "timedelta64[us]"
    assert isinstance(df["pair"][0], list) and isinstance(df["obj"][0], dict)
    duck = frame("duck", "nested")
    assert dtypes(duck)["col_3"] == "timedelta64[us]"
    assert duck["col_3"].tolist() == df["span"].tolist()


def test_spreadsheet_values_with_header_row():
    outcome, _ = read("excel__read_range__paged")
    df = outcome.value
    assert list(df.columns) == ["id", "region", "units", "price", "day", "paid"]
    assert dtypes(df) == {"id": "int64", "region": "str", "units": "int64",
                          "price": "float64", "day": "datetime64[us]", "paid": "bool"}
    assert df.attrs["next_range"] == "A11:F51"
    assert "next_range=A11:F51" in outcome.notices[0]


def test_nested_literal_is_parsed_not_left_as_text():
    outcome, _ = read("pgmcp__get_object_details__call")
    details = outcome.value
    assert details["basic"]["name"] == "measurements"
    assert [c["column"] for c in details["columns"]][:3] == ["id", "big", "price"]


def test_parquet_read_through_duckdb():
    df = frame("duck", "parquet")
    assert dtypes(df) == {**MEASUREMENTS, "active": dtypes(df)["active"]}
