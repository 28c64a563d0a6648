"""Unit tests for mcp_magic.tables: tool results -> DataFrames (DESIGN.md §2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mcp_magic.tables import error_text, result_to_table

ROOT = Path(__file__).resolve().parent.parent


def is_str_column(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series.dtype)


# --------------------------------------------------------------------------- JSON text


def test_json_list_of_records():
    records = [
        {"region": "North", "total": 12.5, "n": 3},
        {"region": "South", "total": 7.0, "n": 4},
    ]
    df = result_to_table(None, json.dumps(records))
    assert list(df.columns) == ["region", "total", "n"]
    assert df["region"].tolist() == ["North", "South"]
    assert df["total"].dtype == "float64"
    assert df["n"].dtype == "int64"


def test_json_list_of_records_matches_pandas_baseline():
    records = [{"id": i, "x": i / 2, "ok": i % 2 == 0, "s": f"id-{i}"} for i in range(50)]
    text = json.dumps(records)
    pd.testing.assert_frame_equal(
        result_to_table(None, text), pd.DataFrame.from_records(json.loads(text))
    )


def test_json_records_with_surrounding_whitespace():
    df = result_to_table(None, '\n  [{"a": 1}, {"a": 2}]\n')
    assert df["a"].tolist() == [1, 2]


def test_json_dict_of_columns():
    df = result_to_table(None, '{"city": ["Paris", "Rome"], "pop": [2.1, 2.8]}')
    assert list(df.columns) == ["city", "pop"]
    assert df["pop"].dtype == "float64"
    assert df["city"].tolist() == ["Paris", "Rome"]


def test_json_columns_rows():
    df = result_to_table(None, '{"columns": ["a", "b"], "rows": [[1, "x"], [2, "y"]]}')
    assert list(df.columns) == ["a", "b"]
    assert df["a"].dtype == "int64"
    assert df["b"].tolist() == ["x", "y"]


def test_json_columns_data_split_orientation():
    df = result_to_table(None, '{"index": [0, 1], "columns": ["a"], "data": [[1], [2]]}')
    assert df["a"].tolist() == [1, 2]


def test_json_result_wrapper_of_records():
    df = result_to_table(None, '{"result": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}')
    assert list(df.columns) == ["a", "b"]
    assert df["a"].tolist() == [1, 2]


def test_json_wrapper_with_metadata_keys():
    text = '{"count": 2, "items": [{"a": 1}, {"a": 2}], "next": null}'
    assert result_to_table(None, text)["a"].tolist() == [1, 2]


def test_json_records_with_missing_keys_are_unioned():
    df = result_to_table(None, '[{"a": 1}, {"b": 2}]')
    assert set(df.columns) == {"a", "b"}
    assert df["a"].isna().tolist() == [False, True]


# --------------------------------------------------------------------------- Python literals


SQLITE_READ_QUERY = (
    "[{'region': 'North', 'total': 12.5, 'orders': 3}, "
    "{'region': 'South', 'total': None, 'orders': 1}]"
)


def test_sqlite_server_literal_answer():
    df = result_to_table(None, SQLITE_READ_QUERY)
    assert list(df.columns) == ["region", "total", "orders"]
    assert df["region"].tolist() == ["North", "South"]
    assert df["total"].dtype == "float64"
    assert df["total"].isna().tolist() == [False, True]
    assert df["orders"].dtype == "int64"


def test_sqlite_server_list_tables_answer():
    df = result_to_table(None, "[{'name': 'users'}, {'name': 'orders'}]")
    assert df["name"].tolist() == ["users", "orders"]


def test_sqlite_server_write_answer_is_one_row():
    df = result_to_table(None, "[{'affected_rows': 3}]")
    assert df.to_dict("records") == [{"affected_rows": 3}]


def test_sqlite_server_empty_result_with_expect_table():
    df = result_to_table(None, "[]", expect_table=True)
    assert isinstance(df, pd.DataFrame) and df.empty


def test_empty_list_without_expect_table_is_none():
    assert result_to_table(None, "[]") is None


def test_literal_strings_keep_quotes_escapes_and_keywords():
    records = [
        {"s": "it's", "t": 'He said "None"', "u": "C:\\temp\\new", "v": "tab\there"},
        {"s": "True, False", "t": "ünïcode ✓", "u": "", "v": "line\nbreak"},
    ]
    df = result_to_table(None, str(records))
    assert df.to_dict("records") == records


def test_literal_floats_nan_and_inf():
    df = result_to_table(None, "[{'x': nan, 'y': inf}, {'x': -1e-05, 'y': -inf}]")
    assert df["x"].isna().tolist() == [True, False]
    assert df["y"].tolist() == [float("inf"), float("-inf")]


def test_literal_with_bytes_uses_literal_eval():
    df = result_to_table(None, "[{'id': 1, 'blob': b'\\x00\\x01'}]")
    assert df["blob"].tolist() == [b"\x00\x01"]


def test_malicious_literal_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    text = f"[{{'a': __import__('os').system('echo hi > {marker}')}}]"
    assert result_to_table(None, text) is None
    assert result_to_table(None, f"__import__('os').system('echo hi > {marker}')") is None
    assert not marker.exists()


# --------------------------------------------------------------------------- errors


def test_database_error_text_is_an_error():
    text = "Database error: no such table: foo"
    assert error_text(text, False) == text


def test_database_error_text_is_not_a_table():
    assert result_to_table(None, "Database error: no such table: foo") is None


def test_plain_error_prefix_is_an_error():
    assert error_text("Error: near \"SELEC\": syntax error", False).startswith("Error:")


def test_exception_class_prefix_is_an_error():
    assert error_text("sqlite3.OperationalError: database is locked", False) is not None


def test_bare_error_line_is_an_error():
    assert error_text("ERROR\nthe server could not open the database", False) is not None


@pytest.mark.parametrize("text", [None, "", "[{'a': 1}]", "Query OK, 3 rows affected"])
def test_normal_results_are_not_errors(text):
    assert error_text(text, False) is None


def test_is_error_flag_wins():
    assert error_text("Access denied - path outside allowed directories", True) == (
        "Access denied - path outside allowed directories"
    )


def test_is_error_without_text_still_gives_message():
    assert error_text(None, True)


def test_error_message_is_collapsed_to_one_line():
    message = error_text("Error executing tool query_db: 1 validation error\nsql\n  Field required",
                         False)
    assert "\n" not in message
    assert message.endswith("Field required")


def test_traceback_becomes_its_last_line():
    text = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad value'
    assert error_text(text, False) == "ValueError: bad value"


def test_long_error_is_capped():
    assert len(error_text("Error: " + "x" * 5000, False)) <= 500


def test_json_error_object_is_an_error():
    assert error_text('{"error": {"code": 404, "message": "not found"}}', False) == "not found"


@pytest.mark.parametrize(
    "text",
    [
        "The query ran without any error: 12 rows returned.",
        "Error rates by region: North 2%, South 3%",
        "Errors: 0",
        "Mean squared error: 0.25",
        "No errors found.",
        '[{"error": "timeout", "count": 3}]',
    ],
)
def test_text_mentioning_error_is_not_an_error(text):
    assert error_text(text, False) is None


def test_records_with_an_error_column_are_still_a_table():
    df = result_to_table(None, '[{"error": "timeout", "count": 3}]')
    assert df["count"].tolist() == [3]


# --------------------------------------------------------------------------- CSV / TSV


def test_csv_table():
    df = result_to_table(None, "id,name,score\n1,Alice,9.5\n2,Bob,7\n")
    assert list(df.columns) == ["id", "name", "score"]
    assert df["id"].dtype == "int64"
    assert df["score"].dtype == "float64"
    assert df["name"].tolist() == ["Alice", "Bob"]


def test_csv_with_quoted_commas():
    df = result_to_table(None, 'name,city\n"Smith, John",Paris\n"Doe, Jane",Rome')
    assert df["name"].tolist() == ["Smith, John", "Doe, Jane"]


def test_csv_single_data_row():
    df = result_to_table(None, "a,b\n1,2")
    assert df.to_dict("records") == [{"a": 1, "b": 2}]


def test_tsv_table():
    df = result_to_table(None, "name\tsize\tkind\na.txt\t120\tfile\nb.csv\t5\tfile")
    assert list(df.columns) == ["name", "size", "kind"]
    assert df["size"].tolist() == [120, 5]
    assert df["size"].dtype == "int64"


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world.\nHow are you, friend?",
        "Roses are red, violets are blue\nSugar is sweet, and so are you",
        "I looked at the data, and it seems fine.\nThe totals, however, are off.",
        "Found 3 tables: users, orders, items",
        "Summary: 3 tables, 2 views\nNext: review, export",
    ],
)
def test_prose_with_commas_is_not_csv(text):
    assert result_to_table(None, text) is None


def test_header_only_csv_is_not_a_table():
    assert result_to_table(None, "a,b,c") is None


def test_ragged_csv_is_not_a_table():
    assert result_to_table(None, "a,b\n1,2,3\n4") is None


# --------------------------------------------------------------------------- Markdown


def test_markdown_table_with_alignment():
    text = (
        "| region | total | ok |\n"
        "|:-------|------:|:--:|\n"
        "| North | 12.5 | true |\n"
        "| South | 3 | false |"
    )
    df = result_to_table(None, text)
    assert list(df.columns) == ["region", "total", "ok"]
    assert df["region"].tolist() == ["North", "South"]
    assert df["total"].dtype == "float64"
    assert df["total"].tolist() == [12.5, 3.0]
    assert df["ok"].tolist() == [True, False]


def test_markdown_table_without_outer_pipes_and_empty_cell():
    df = result_to_table(None, "a | b\n--- | ---\n1 | \n2 | y")
    assert df["a"].dtype == "int64"
    assert df["b"].isna().tolist() == [True, False]


def test_markdown_table_with_escaped_pipe():
    df = result_to_table(None, "| expr |\n|---|\n| a \\| b |")
    assert df["expr"].tolist() == ["a | b"]


def test_markdown_with_prose_around_is_not_a_table():
    text = "Here you go:\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    assert result_to_table(None, text) is None


# --------------------------------------------------------------------------- file listings


def test_file_listing():
    df = result_to_table(None, "[FILE] a.txt\n[DIR] sub\n[FILE] my notes.md")
    assert list(df.columns) == ["name", "type"]
    assert df["name"].tolist() == ["a.txt", "sub", "my notes.md"]
    assert df["type"].tolist() == ["file", "dir", "file"]


def test_file_listing_with_sizes_and_summary():
    text = "\n".join(
        [
            f"[DIR] {'sub'.ljust(30)} ",
            f"[FILE] {'a.txt'.ljust(30)} {'1.20 KB'.rjust(10)}",
            f"[FILE] {'b.bin'.ljust(30)} {'12 B'.rjust(10)}",
            "",
            "Total: 2 files, 1 directories",
            "Combined size: 1.21 KB",
        ]
    )
    df = result_to_table(None, text)
    assert list(df.columns) == ["name", "type", "size"]
    assert df["name"].tolist() == ["sub", "a.txt", "b.bin"]
    assert df["type"].tolist() == ["dir", "file", "file"]
    assert str(df["size"].dtype) == "Int64"
    assert df["size"].tolist() == [pd.NA, 1229, 12]


def test_listing_with_other_lines_is_not_a_table():
    assert result_to_table(None, "[FILE] a.txt\nSee also the docs folder.") is None


def test_empty_listing_with_expect_table():
    df = result_to_table(None, "", expect_table=True)
    assert isinstance(df, pd.DataFrame) and df.empty


def test_filesystem_structured_wrapper_falls_back_to_text():
    # the npm server's structuredContent wraps its content blocks, not a table
    text = "[FILE] a.txt\n[DIR] sub"
    structured = {"content": [{"type": "text", "text": text}]}
    df = result_to_table(structured, text)
    assert df["name"].tolist() == ["a.txt", "sub"]


# --------------------------------------------------------------------------- directory_tree


TREE = [
    {
        "name": "src",
        "type": "directory",
        "children": [
            {"name": "app.py", "type": "file"},
            {"name": "empty", "type": "directory", "children": []},
        ],
    },
    {"name": "README.md", "type": "file"},
]


def test_directory_tree_is_flattened():
    df = result_to_table(None, json.dumps(TREE, indent=2))
    assert list(df.columns) == ["path", "name", "type", "depth"]
    assert df["path"].tolist() == ["src", "src/app.py", "src/empty", "README.md"]
    assert df["type"].tolist() == ["dir", "file", "dir", "file"]
    assert df["depth"].tolist() == [0, 1, 1, 0]
    assert df["depth"].dtype == "int64"


def test_directory_tree_single_root_object():
    df = result_to_table(None, json.dumps({"name": "root", "type": "directory",
                                           "children": TREE}))
    assert df["path"].tolist()[:2] == ["root", "root/src"]
    assert df["depth"].max() == 2


# --------------------------------------------------------------------------- structured content


def test_structured_table_contract():
    sc = {
        "columns": ["region", "total"],
        "types": ["TEXT", "REAL"],
        "rows": [["North", 123.4], ["South", None]],
        "row_count": 2,
        "truncated": False,
    }
    df = result_to_table(sc, json.dumps(sc))
    assert list(df.columns) == ["region", "total"]
    assert df["total"].dtype == "float64"
    assert df["total"].isna().tolist() == [False, True]
    assert df["region"].tolist() == ["North", "South"]
    assert df.attrs == {"row_count": 2, "truncated": False}


def test_structured_integer_with_nulls_is_nullable_int():
    sc = {"columns": ["n"], "types": ["INTEGER"], "rows": [[1], [None], [3]]}
    df = result_to_table(sc, None)
    assert str(df["n"].dtype) == "Int64"
    assert df["n"].tolist() == [1, pd.NA, 3]


def test_structured_integer_without_nulls_is_int64():
    df = result_to_table({"columns": ["n"], "types": ["INTEGER"], "rows": [[1], [2]]}, None)
    assert df["n"].dtype == "int64"


def test_structured_big_integer_with_nulls_keeps_precision():
    big = 2**60 + 1
    df = result_to_table({"columns": ["n"], "types": ["INTEGER"], "rows": [[big], [None]]}, None)
    assert str(df["n"].dtype) == "Int64"
    assert df["n"][0] == big


def test_structured_timestamp_is_datetime():
    sc = {
        "columns": ["at", "day"],
        "types": ["TIMESTAMP", "DATE"],
        "rows": [["2024-01-01T10:00:00", "2024-01-01"], ["2024-01-02 11:30:00", None]],
    }
    df = result_to_table(sc, None)
    assert df["at"].dtype.kind == "M"
    assert df["day"].dtype.kind == "M"
    assert df["at"][1] == pd.Timestamp("2024-01-02 11:30:00")
    assert df["day"].isna().tolist() == [False, True]


def test_structured_unparseable_timestamp_is_left_alone():
    sc = {"columns": ["at"], "types": ["TIMESTAMP"], "rows": [["yesterday"], ["2024-01-01"]]}
    df = result_to_table(sc, None)
    assert df["at"].tolist() == ["yesterday", "2024-01-01"]


def test_structured_boolean_from_sqlite_integers():
    sc = {"columns": ["ok", "maybe"], "types": ["BOOLEAN", "BOOLEAN"],
          "rows": [[1, 0], [0, None]]}
    df = result_to_table(sc, None)
    assert df["ok"].dtype == "bool"
    assert df["ok"].tolist() == [True, False]
    assert str(df["maybe"].dtype) == "boolean"


def test_structured_integer_column_with_text_is_left_alone():
    # SQLite is dynamically typed: an INTEGER column may hold text
    sc = {"columns": ["n"], "types": ["INTEGER"], "rows": [[1], ["n/a"]]}
    df = result_to_table(sc, None)
    assert df["n"].tolist() == [1, "n/a"]


def test_structured_text_and_unknown_types_keep_inference():
    sc = {"columns": ["s", "b"], "types": ["TEXT", "BLOB"], "rows": [["x", b"\x00"]]}
    df = result_to_table(sc, None)
    assert is_str_column(df["s"])
    assert df["b"].tolist() == [b"\x00"]


def test_structured_columns_as_dicts_and_rows_as_dicts():
    sc = {
        "columns": [{"name": "id", "type": "INTEGER"}, {"name": "name", "type": "TEXT"}],
        "rows": [{"id": 1, "name": "a"}, {"id": None, "name": "b"}],
    }
    df = result_to_table(sc, None)
    assert list(df.columns) == ["id", "name"]
    assert str(df["id"].dtype) == "Int64"
    assert df["name"].tolist() == ["a", "b"]


def test_structured_empty_rows_keep_columns_and_types():
    sc = {"columns": ["id", "at"], "types": ["INTEGER", "DATETIME"], "rows": [],
          "row_count": 0, "truncated": False}
    df = result_to_table(sc, None, expect_table=True)
    assert list(df.columns) == ["id", "at"]
    assert len(df) == 0
    assert df["id"].dtype == "int64"
    assert df["at"].dtype.kind == "M"


def test_structured_empty_rows_are_a_table_even_without_expect_table():
    # the column names make the shape unambiguous
    df = result_to_table({"columns": ["a", "b"], "rows": []}, None)
    assert list(df.columns) == ["a", "b"] and len(df) == 0


def test_structured_result_wrapper():
    df = result_to_table({"result": [{"a": 1}, {"a": 2}]}, '[{"a": 1}, {"a": 2}]')
    assert df["a"].tolist() == [1, 2]


def test_structured_result_wrapper_empty_with_expect_table():
    df = result_to_table({"result": []}, "[]", expect_table=True)
    assert isinstance(df, pd.DataFrame) and df.empty


def test_structured_result_wrapper_empty_without_expect_table():
    assert result_to_table({"result": []}, "[]") is None


def test_structured_nested_table_contract():
    sc = {"result": {"columns": ["a"], "rows": [[1], [2]]}}
    assert result_to_table(sc, None)["a"].tolist() == [1, 2]


def test_structured_trusted_before_text():
    df = result_to_table({"result": [{"a": 1}]}, "a,b\n1,2")
    assert list(df.columns) == ["a"]


def test_structured_non_table_falls_back_to_text():
    df = result_to_table({"content": "id,v\n1,2"}, "id,v\n1,2")
    assert df.to_dict("records") == [{"id": 1, "v": 2}]


def test_error_text_wins_over_structured_content():
    assert result_to_table({"result": [{"a": 1}]}, "Error: boom") is None


# --------------------------------------------------------------------------- not tables


@pytest.mark.parametrize(
    "text",
    [
        "The North region had the most revenue last quarter.",
        "42",
        '"just a string"',
        "true",
        "null",
        '{"temperature": 21.5, "unit": "C"}',
        '{"a": {"b": 1}, "c": {"d": 2}}',
        "[1, 2, 3]",
        '[[1, 2], [3]]',
        '{"tags": ["x", "y"]}',
        "Table created successfully: users",
        "",
        "   \n",
        "---",
    ],
)
def test_non_tabular_text_is_none(text):
    assert result_to_table(None, text) is None


@pytest.mark.parametrize("structured", [{"temperature": 21.5}, {"content": "hi"}, 3, "x"])
def test_non_tabular_structured_content_is_none(structured):
    assert result_to_table(structured, None) is None


def test_none_everything_is_none():
    assert result_to_table(None, None) is None


def test_list_of_scalars_with_expect_table():
    df = result_to_table(None, '["a.txt", "b.txt"]', expect_table=True)
    assert list(df.columns) == ["value"]
    assert df["value"].tolist() == ["a.txt", "b.txt"]


def test_named_list_of_scalars_with_expect_table():
    df = result_to_table(None, '{"files": ["a.txt", "b.txt"]}', expect_table=True)
    assert df["files"].tolist() == ["a.txt", "b.txt"]


def test_prose_with_expect_table_is_still_none():
    assert result_to_table(None, "No rows matched.", expect_table=True) is None


# --------------------------------------------------------------------------- benchmark script


def test_benchmark_script_runs_small():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_tables.py"), "--rows", "300",
         "--repeat", "1"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "Python literal [tuples]" in out and "/parsed" in out and "/user" in out


# --------------------------------------------------------------------------- plain text


ONE_LINERS = [
    "hi", "  hi there, friend", "42", "true", "null", "-1.5", '"quoted"', "a,b", "a\tb",
    "| a | b |", "Total: 1 file, 0 directories", "Total: nothing here", "[FILE] a.txt",
    "[DIR] sub", "{\"a\": 1}", "[1, 2]", "(1, 2)", "Error: no such table: foo",
    '{"error": "boom"}', "", "   ", "two\nlines", "a,b\n1,2", "a\rb",
]
STRUCTURED = [
    None, {"result": "hi"}, {"result": 1}, {"result": None}, {"result": [1, 2]},
    {"result": {"columns": ["a"], "rows": [[1]]}}, {"name": "a.txt", "type": "file"},
    {"result": "x", "note": "y"}, [1, 2],
]


@pytest.mark.parametrize("structured", STRUCTURED)
@pytest.mark.parametrize("text", ONE_LINERS)
def test_plainly_text_is_only_said_of_answers_no_reader_takes(text, structured):
    """The shortcut for plain answers skips every reader only where none would answer."""
    from mcp_magic.tables import parse_text, plainly_text
    from mcp_magic.tables.errors import envelope_error
    from mcp_magic.tables.shapes import Hints, object_table
    from mcp_magic.tables.text import text_table

    if not plainly_text(structured, text):
        return
    assert text.strip() and "\n" not in text
    assert envelope_error(structured) is None
    for expect_table in (False, True):
        assert object_table(structured, Hints(expect_table=expect_table)) is None
    assert parse_text(text) == (None, False)
    assert text_table(text) is None


def test_plainly_text_takes_the_common_small_answers():
    from mcp_magic.tables import plainly_text

    assert plainly_text(None, "hi") and plainly_text({"result": "hi"}, "hi")
    assert plainly_text({"result": 3}, "3")
    assert not plainly_text({"result": [1]}, "[1]")
    assert not plainly_text(None, "Total: 1 file, 0 directories")


@pytest.mark.parametrize(
    ("text", "value", "error"),
    [
        ("hi", "hi", None),
        ("Error: no such table: foo", None, "Error: no such table: foo"),
        ("[FILE] a.txt", "table", None),
        ("Total: 2 files, 0 directories", "table", None),
    ],
)
def test_interpret_one_text_block(text, value, error):
    from mcp.types import CallToolResult, TextContent

    from mcp_magic.tables.results import interpret

    result = CallToolResult(
        content=[TextContent(type="text", text=text)], structuredContent={"result": text}
    )
    outcome = interpret(result, "t")
    assert outcome.error == error
    if value == "table":
        assert isinstance(outcome.value, pd.DataFrame)
    else:
        assert outcome.value == value


def test_a_plain_text_answer_does_not_import_pandas():
    code = (
        "import sys\n"
        "from mcp.types import CallToolResult, TextContent\n"
        "from mcp_magic.tables.results import interpret\n"
        "r = CallToolResult(content=[TextContent(type='text', text='done')],"
        " structuredContent={'result': 'done'})\n"
        "assert interpret(r, 'echo').value == 'done'\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
        cwd=ROOT,
    ).stdout
    assert out.strip() == "False"
