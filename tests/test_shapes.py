"""Shapes of data server answers -> DataFrames: literals, tuples, envelopes, declared types.

Pure-function tests of mcp_magic.tables, plus `interpret` on real `mcp.types` results.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zoneinfo
from decimal import Decimal

import pandas as pd
import pytest
from mcp.types import CallToolResult, TextContent

from mcp_magic.tables import notices, parse_text, read_result, result_to_table
from mcp_magic.tables.literals import literal_value, python_repr_to_json
from mcp_magic.tables.results import frame_for_model, interpret

UTC = dt.timezone.utc


def dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {str(c): str(t) for c, t in df.dtypes.items()}


# --------------------------------------------------------------------------- Python literals

PG_ROWS = [
    {"id": 1, "price": Decimal("1.37"), "whole": Decimal("5"), "day": dt.date(2024, 1, 2),
     "at": dt.datetime(2024, 1, 1, 0, 37, 13),
     "tz": dt.datetime(2024, 1, 1, 1, 0, 1, tzinfo=UTC), "ok": True,
     "uid": uuid.UUID(int=1), "label": "item 1"},
    {"id": 2, "price": None, "whole": Decimal("7"), "day": None,
     "at": dt.datetime(2024, 1, 1, 1, 14, 26, 500),
     "tz": None, "ok": None, "uid": uuid.UUID(int=2), "label": "it's"},
]


def test_postgres_literal_rows_get_sql_dtypes():
    df = result_to_table(None, str(PG_ROWS))
    assert dtypes(df) == {
        "id": "int64", "price": "float64", "whole": "float64", "day": "datetime64[us]",
        "at": "datetime64[us]", "tz": "datetime64[us, UTC]", "ok": "boolean",
        "uid": "str", "label": "str",
    }
    assert df["price"].tolist()[0] == 1.37 and pd.isna(df["price"][1])
    assert df["at"][1] == pd.Timestamp("2024-01-01 01:14:26.000500")
    assert df["tz"][0] == pd.Timestamp("2024-01-01 01:00:01", tz="UTC")
    assert df["day"].isna().tolist() == [False, True]
    assert df["ok"].tolist()[0] is True and pd.isna(df["ok"][1])
    assert df["uid"][1] == str(uuid.UUID(int=2))
    assert df["label"][1] == "it's"


def test_duckdb_tuples_get_numbered_columns():
    rows = [(1, Decimal("2.50"), "a", dt.date(2024, 5, 1)), (2, None, "b", dt.date(2024, 5, 2))]
    df = result_to_table(None, str(rows))
    assert list(df.columns) == ["col_0", "col_1", "col_2", "col_3"]
    assert dtypes(df) == {"col_0": "int64", "col_1": "float64", "col_2": "str",
                          "col_3": "datetime64[us]"}


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        dt.datetime(2024, 7, 1, 12, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        dt.datetime(2024, 1, 1, 12, 0, tzinfo=zoneinfo.ZoneInfo("Etc/UTC")),
        dt.datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC),
    ],
)
def test_timezone_forms_keep_the_instant(value):
    df = result_to_table(None, str([{"at": value}, {"at": value}]))
    assert df["at"].dtype.kind == "M" and df["at"].dt.tz is not None
    assert df["at"][0] == pd.Timestamp(value)


def test_mixed_offsets_are_shown_in_utc():
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    rows = [{"at": dt.datetime(2024, 1, 1, 12, tzinfo=paris)},
            {"at": dt.datetime(2024, 7, 1, 12, tzinfo=paris)}]
    df = result_to_table(None, str(rows))
    assert str(df["at"].dtype) == "datetime64[us, UTC]"
    assert df["at"][1] == pd.Timestamp("2024-07-01 10:00", tz="UTC")


def test_naive_and_aware_mixed_stay_text():
    rows = [{"at": "2024-01-01T10:00:00"}, {"at": "2024-01-01T10:00:00+02:00"}]
    df = result_to_table(None, json.dumps(rows))
    assert df["at"].tolist() == ["2024-01-01T10:00:00", "2024-01-01T10:00:00+02:00"]


def test_time_timedelta_and_decimal_nan():
    rows = [{"t": dt.time(10, 30), "span": dt.timedelta(days=1, seconds=5), "d": Decimal("NaN")},
            {"t": None, "span": dt.timedelta(0), "d": Decimal("-Infinity")}]
    df = result_to_table(None, str(rows))
    assert df["t"][0] == dt.time(10, 30)
    assert str(df["span"].dtype).startswith("timedelta64")
    assert df["span"][0] == pd.Timedelta(days=1, seconds=5)
    assert df["d"].dtype == "float64" and pd.isna(df["d"][0]) and df["d"][1] == float("-inf")


def test_nested_literals_are_values():
    rows = [{"id": 1, "tags": ["a", "b"], "meta": {"price": Decimal("2.5")}, "pair": (1, 2)}]
    df = result_to_table(None, str(rows))
    assert df["tags"][0] == ["a", "b"]
    assert df["meta"][0] == {"price": 2.5}
    assert df["pair"][0] == [1, 2]


SAMPLES = [
    PG_ROWS,
    [(1, "a"), (2, None)],
    [{"s": 'He said "hi"', "b": b"\x00", "n": float("nan"), "i": -float("inf")}],
    [{"ip": __import__("ipaddress").IPv4Address("10.0.0.1"), "k": frozenset()}],
    [{"d": Decimal("1E+2"), "e": Decimal("-0.001"), "w": dt.date(1, 1, 1)}],
    [{"paris": dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))}],
    [{"u": "ünïcode ✓", "x": "tab\there", "q": "it's \\ back"}],
    [{"at": dt.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("Etc/UTC")), "s": "O'Brien",
      "u": uuid.UUID(int=3)}],
    [{"s": "x zoneinfo.ZoneInfo(key='Etc/UTC') UUID('00000000-0000-0000-0000-000000000001')",
      "at": dt.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("Etc/UTC"))}],
]


def test_large_answers_with_quotes_and_named_zones_use_the_fast_reader():
    rows = [{"at": dt.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("Etc/UTC")),
             "s": "O'Brien", "u": uuid.UUID(int=i), "p": Decimal("1.50")} for i in range(3)]
    value = json.loads(python_repr_to_json(str(rows)))  # no fallback needed
    assert value == literal_value(str(rows))


@pytest.mark.parametrize("rows", SAMPLES)
def test_fast_reader_agrees_with_the_ast_reader(rows):
    text = str(rows)
    value, ok = parse_text(text)
    assert ok
    assert repr(value) == repr(literal_value(text))
    try:
        fast = json.loads(python_repr_to_json(text))
    except ValueError:
        return  # left to the AST reader, which is fine
    assert repr(fast) == repr(literal_value(text))


@pytest.mark.parametrize(
    "text",
    [
        "[{'a': __import__('os').system('true')}]",
        "[{'a': open('/etc/passwd')}]",
        "[{'a': Decimal('1').__class__}]",
        "[{'a': datetime.datetime.now()}]",
        "[{'a': (lambda: 1)()}]",
        "[{'a': Decimal(*['1'])}]",
        "[{'a': [x for x in range(3)]}]",
        "[{'a': 1 + 2}]",
    ],
)
def test_only_whitelisted_constructors_are_called(text):
    assert parse_text(text) == (None, False)
    assert result_to_table(None, text) is None


@pytest.mark.parametrize(
    "text",
    [
        "[{'a': Decimal('x')}]",
        "[{'a': datetime.date(2024, 2, 30)}]",
        "[{'a': UUID('nope')}]",
        "[{'a': 1,}",
        "[(1, 'a'), (2, 'b'",
        "[{'a': zoneinfo.ZoneInfo(key='No/Such_Zone')}]",
    ],
)
def test_malformed_literal_stays_text(text):
    outcome = interpret(CallToolResult(content=[TextContent(type="text", text=text)]), "q")
    assert outcome.error is None and outcome.value == text


def test_huge_non_table_text_is_bounded():
    text = "[" + "x" * 10_000_000  # 10 MB that looks like a literal but is not
    assert result_to_table(None, text) is None
    prose = ("word, " * 1_700_000)[:10_000_000]
    assert result_to_table(None, prose) is None


def test_deep_nesting_does_not_crash():
    text = "[" * 100_000 + "]" * 100_000
    assert result_to_table(None, text) is None


# --------------------------------------------------------------------------- lists and envelopes


def test_json_list_of_lists_gets_numbered_columns():
    df = result_to_table(None, "[[1, \"a\"], [2, \"b\"]]")
    assert list(df.columns) == ["col_0", "col_1"] and df["col_0"].tolist() == [1, 2]


def test_rows_named_by_the_output_schema():
    schema = {"type": "object", "properties": {"result": {"type": "array", "items": {
        "type": "array", "prefixItems": [{"title": "id", "type": "integer"},
                                         {"title": "day", "type": "string", "format": "date"}]}}}}
    df = result_to_table({"result": [[1, "2024-01-01"], [2, "2024-01-02"]]}, None,
                         output_schema=schema)
    assert list(df.columns) == ["id", "day"]
    assert dtypes(df) == {"id": "int64", "day": "datetime64[us]"}


def test_output_schema_types_records_through_refs():
    schema = {
        "type": "object",
        "properties": {"rows": {"type": "array", "items": {"$ref": "#/$defs/Row"}}},
        "$defs": {"Row": {"type": "object", "properties": {
            "zip": {"type": "string"}, "n": {"type": "integer"},
            "at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}}}},
    }
    sc = {"rows": [{"zip": "01234", "n": "5", "at": "2024-01-01T10:00:00Z"},
                   {"zip": "99999", "n": "6", "at": None}]}
    df = result_to_table(sc, None, output_schema=schema)
    assert df["zip"].tolist() == ["01234", "99999"]
    assert dtypes(df) == {"zip": "str", "n": "int64", "at": "datetime64[us, UTC]"}


@pytest.mark.parametrize("key", ["data", "rows", "results", "records", "items"])
def test_envelope_one_level(key):
    answer = {"success": True, key: [{"a": 1}, {"a": 2}], "count": 2, "source": "db"}
    df = result_to_table(None, json.dumps(answer))
    assert df["a"].tolist() == [1, 2]
    assert df.attrs == {"success": True, "count": 2, "source": "db"}


def test_envelope_two_levels_keeps_both_levels_fields():
    answer = {"ok": True, "data": {"rows": [{"a": 1}], "total": 10, "next_cursor": "abc"}}
    reading = read_result(answer, None)
    assert reading.table["a"].tolist() == [1]
    assert reading.table.attrs == {"ok": True, "total": 10, "next_cursor": "abc"}
    assert reading.notices == ["only 1 of 10 rows came back (total=10); next page: next_cursor=abc"]


def test_single_statement_list_is_unwrapped():
    answer = {"success": True, "data": {"statements": [
        {"sql": "select 1", "rows": [{"n": "1"}], "count": 1}], "source_id": "x"}}
    df = result_to_table(None, json.dumps(answer))
    assert df["n"].tolist() == [1]
    assert df.attrs["sql"] == "select 1" and df.attrs["source_id"] == "x"


def test_columns_and_rows_with_declared_types_under_several_names():
    for key in ("types", "columnTypes", "column_types"):
        answer = {"columns": ["n", "p", "d", "code"],
                  key: ["BIGINT", "DECIMAL(10,2)", "TIMESTAMP WITH TIME ZONE", "VARCHAR"],
                  "rows": [["1", "2.50", "2024-01-01 10:00:00+00", "007"],
                           ["2", None, None, "010"]]}
        df = result_to_table(answer, None)
        assert dtypes(df) == {"n": "int64", "p": "float64", "d": "datetime64[us, UTC]",
                              "code": "str"}, key
        assert df["code"].tolist() == ["007", "010"]


def test_fields_with_postgres_type_oids():
    answer = {"fields": [{"name": "n", "dataTypeID": 20}, {"name": "d", "dataTypeID": 1082},
                         {"name": "t", "dataTypeID": 25}],
              "rows": [{"n": "3000", "d": "2024-01-02", "t": "42"}]}
    df = result_to_table(answer, None)
    assert dtypes(df) == {"n": "int64", "d": "datetime64[us]", "t": "str"}


def test_table_schema_orientation():
    answer = json.loads(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_json(orient="table"))
    df = result_to_table(answer, None)
    assert df["a"].tolist() == [1, 2] and df["b"].tolist() == ["x", "y"]
    assert "schema" not in df.attrs


def test_spreadsheet_values_pad_short_rows_and_empty_cells():
    answer = {"range": "A1:C3", "values": [["name", "age", "city"], ["Ann", "31"],
                                           ["Bob", "", "Rome"]]}
    df = result_to_table(answer, None)
    assert df["age"].tolist()[0] == 31 and pd.isna(df["age"][1])
    assert pd.isna(df["city"][0]) and df["city"][1] == "Rome"
    assert df.attrs == {"range": "A1:C3"}


def test_non_table_dict_is_returned_whole():
    answer = {"basic": {"name": "t"}, "columns": [{"c": 1}], "indexes": [{"i": 1}]}
    assert result_to_table(answer, None) is None
    outcome = interpret(CallToolResult(content=[TextContent(type="text", text=str(answer))]), "x")
    assert outcome.value == answer


# --------------------------------------------------------------------------- dtypes


def test_numbers_as_strings_become_numbers_only_when_all_parse():
    rows = [{"n": "1", "f": "1.5", "mixed": "3", "zip": "01234", "big": "12345678901234567890",
             "neg": "-2", "exp": "1e3"},
            {"n": "22", "f": "-0.25", "mixed": "n/a", "zip": "99999", "big": "1",
             "neg": "0", "exp": "2E-2"}]
    df = result_to_table(None, json.dumps(rows))
    assert dtypes(df) == {"n": "int64", "f": "float64", "mixed": "str", "zip": "str",
                          "big": "str", "neg": "int64", "exp": "float64"}
    assert df["mixed"].tolist() == ["3", "n/a"]
    assert df["big"][0] == "12345678901234567890"


def test_numbers_as_strings_with_nulls():
    df = result_to_table(None, json.dumps([{"n": "1"}, {"n": None}, {"n": "3"}]))
    assert df["n"].dtype == "float64" and pd.isna(df["n"][1])


def test_iso_dates_need_the_whole_column():
    rows = [{"d": "2024-01-01", "e": "2024-01-01"}, {"d": "2024-02-03", "e": "soon"}]
    df = result_to_table(None, json.dumps(rows))
    assert str(df["d"].dtype) == "datetime64[us]"
    assert df["e"].tolist() == ["2024-01-01", "soon"]


def test_year_only_text_is_not_a_date():
    df = result_to_table(None, json.dumps([{"d": "2024-01-01"}, {"d": "2024"}]))
    assert df["d"].tolist() == ["2024-01-01", "2024"]


def test_mixed_type_column_stays_as_it_came():
    df = result_to_table(None, json.dumps([{"v": 1}, {"v": "two"}, {"v": None}, {"v": 3.5}]))
    assert df["v"].tolist()[:2] == [1, "two"] and df["v"].dtype == object


def test_nan_none_null_stay_missing():
    df = result_to_table(None, "[{'x': nan, 'y': None, 'z': 1}, {'x': 2.0, 'y': 'a', 'z': None}]")
    assert pd.isna(df["x"][0]) and pd.isna(df["y"][0]) and pd.isna(df["z"][1])
    assert df["x"].dtype == "float64"


def test_declared_text_wins_over_guessing():
    answer = {"columns": ["d", "n"], "types": ["TEXT", "VARCHAR"],
              "rows": [["2024-01-01", "1"], ["2024-01-02", "2"]]}
    df = result_to_table(answer, None)
    assert df["d"].tolist() == ["2024-01-01", "2024-01-02"] and df["n"].tolist() == ["1", "2"]


def test_declared_numeric_that_does_not_parse_is_left_alone():
    answer = {"columns": ["n"], "columnTypes": ["INTEGER"], "rows": [["1"], ["x"]]}
    assert result_to_table(answer, None)["n"].tolist() == ["1", "x"]


def test_declared_boolean_strings():
    answer = {"columns": ["b"], "types": ["BOOLEAN"], "rows": [["true"], ["f"], [None]]}
    df = result_to_table(answer, None)
    assert str(df["b"].dtype) == "boolean" and df["b"].tolist()[:2] == [True, False]


def test_empty_and_one_row_results():
    assert result_to_table({"columns": ["a"], "types": ["DATE"], "rows": []}, None)[
        "a"].dtype.kind == "M"
    df = result_to_table(None, json.dumps([{"a": "2024-01-01", "n": "5"}]))
    assert dtypes(df) == {"a": "datetime64[us]", "n": "int64"}


def test_unicode_column_names():
    df = result_to_table(None, str([{"ünïcode näme": 1, "Σ": Decimal("1.5"), "列": "x"}]))
    assert list(df.columns) == ["ünïcode näme", "Σ", "列"] and df["Σ"][0] == 1.5


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"success": False, "error": "Catalog Error: no table", "errorType": "CatalogException"},
         "Catalog Error: no table"),
        ({"error": {"code": -1, "message": "boom"}, "code": 500}, "boom"),
        ({"ok": False, "message": "denied"}, "denied"),
        ({"status": "error", "message": "bad query\nLINE 1"}, "bad query LINE 1"),
        ({"errors": [{"message": "field x unknown"}], "data": None}, "field x unknown"),
        ({"success": False}, "the tool reported a failure without a message"),
    ],
)
def test_error_envelopes_are_errors_even_without_is_error(answer, message):
    text = json.dumps(answer, indent=2)
    outcome = interpret(CallToolResult(content=[TextContent(type="text", text=text)]), "q")
    assert outcome.error == message and outcome.value is None
    outcome = interpret(CallToolResult(content=[], structured_content=answer), "q")
    assert outcome.error == message


def test_wrapped_error_envelope_in_structured_result_string():
    inner = json.dumps({"success": False, "error": "file locked", "errorType": "IOException"})
    result = CallToolResult(content=[TextContent(type="text", text=inner)],
                            structured_content={"result": inner})
    assert interpret(result, "list_tables").error == "file locked"


def test_is_error_with_prefixed_envelope_gives_just_the_message():
    text = ("Error calling tool 'execute_query': " + json.dumps(
        {"success": False, "error": "Parser Error: syntax error", "errorType": "ParserException"},
        indent=2))
    result = CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
    assert interpret(result, "execute_query").error == "Parser Error: syntax error"


@pytest.mark.parametrize(
    "answer",
    [
        {"success": True, "rows": [{"error": "timeout"}]},
        {"rows": [{"a": 1}], "warning": "slow", "error": None},
        [{"error": "x", "code": 1}],
    ],
)
def test_data_next_to_error_words_is_not_an_error(answer):
    outcome = interpret(CallToolResult(content=[TextContent(type="text",
                                                            text=json.dumps(answer))]), "q")
    assert outcome.error is None and isinstance(outcome.value, pd.DataFrame)


# --------------------------------------------------------------------------- notices


def test_builtin_server_note_is_one_line():
    sc = {"columns": ["a"], "types": ["INTEGER"], "rows": [[1]], "row_count": 1,
          "truncated": True, "note": "answer cut after 1 rows: more would exceed 10 bytes"}
    reading = read_result(sc, None)
    assert reading.notices == ["answer cut after 1 rows: more would exceed 10 bytes"]
    assert reading.table.attrs["note"].startswith("answer cut")


def test_truncated_flag_without_text_and_quiet_fields():
    df = result_to_table({"rows": [{"a": 1}], "truncated": True, "success": True,
                          "rowCount": 1}, None)
    assert notices(df) == ["only 1 rows came back; the server says there are more "
                           "(truncated=true)"]
    df = result_to_table({"rows": [{"a": 1}], "truncated": False, "row_count": 1}, None)
    assert notices(df) == []


def test_frame_for_model_carries_the_notes():
    sc = {"success": True, "columns": ["a"], "rows": [[1], [2]], "rowCount": 2,
          "truncated": True, "warning": "Results limited to 2 rows."}
    text = frame_for_model(result_to_table(sc, None), "rows_1")
    assert "Server note: Results limited to 2 rows." in text
    assert "`rows_1`" in text


def test_interpret_passes_output_schema_and_notices():
    schema = {"type": "object", "properties": {"data": {"type": "array", "items": {
        "type": "object", "properties": {"n": {"type": "integer"}}}}}}
    sc = {"data": [{"n": "1"}, {"n": "2"}], "hasMore": True}
    result = CallToolResult(content=[TextContent(type="text", text=json.dumps(sc))],
                            structured_content=sc)
    outcome = interpret(result, "q", schema)
    assert outcome.value["n"].dtype == "int64"
    assert outcome.notices == [
        "only 2 rows came back; the server says there are more (hasMore=true)"]


def test_agent_tool_block_shows_the_server_note():
    from mcp_magic.agent.events import ToolCallFinished
    from mcp_magic.display.agent_view import preview_html, preview_text

    sc = {"success": True, "columns": ["a"], "rows": [[1]], "rowCount": 1, "truncated": True,
          "warning": "Results limited to 1 rows."}
    finished = ToolCallFinished("c1", "ok", 0.1, result=result_to_table(sc, None),
                                variable="rows_1")
    assert "note: Results limited to 1 rows." in preview_text(finished).splitlines()
    assert "note: Results limited to 1 rows." in preview_html(finished)
    plain = ToolCallFinished("c2", "ok", 0.1, result=result_to_table({"rows": [{"a": 1}]}, None))
    assert "note:" not in preview_text(plain)


def test_csv_dates_need_the_whole_column_too():
    df = result_to_table(None, "id,at,day\n1,2024-01-01T10:00:00+01:00,2024-01-01\n"
                               "2,2024-07-01T10:00:00+02:00,2024\n")
    assert str(df["at"].dtype) == "datetime64[us, UTC]"
    assert df["at"][1] == pd.Timestamp("2024-07-01 08:00", tz="UTC")
    assert df["day"].tolist() == ["2024-01-01", "2024"]
