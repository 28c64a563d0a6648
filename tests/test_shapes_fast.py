"""The fast paths of the table conversion give what the full paths give.

Columns of one Python type are typed with one numpy call (`tables.columns`); anything else
takes ``from_records`` and the dtype step. Each case here is run both ways and compared:
a value that breaks a fast path must not change the result.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re

import numpy as np
import pandas as pd
import pytest

from mcp_magic.tables import result_to_table
from mcp_magic.tables.columns import _slow_columns, columns_frame, fast_column

KINDS = [None, "int", "float", "bool", "datetime", "datetimetz", "timedelta", "text"]

COLUMNS = {
    "ints": [1, 2, 3],
    "big ints": [1, 2**63, 3],
    "negative big": [-(2**63) - 1, 1],
    "near 2**53": [2**53 + 1, 1],
    "floats": [1.5, 2.0, float("nan")],
    "integral floats": [1.0, 2.0],
    "inf": [float("inf"), 1.0],
    "bools": [True, False],
    "zero one": [0, 1, 1],
    "ints and none": [1, None, 3],
    "ints and floats": [1, 2.5],
    "ints and bools": [1, True],
    "text": ["North", "South"],
    "text with empty": ["a", ""],
    "number text": ["1", "2", "30"],
    "float text": ["1.5", "-2", "3e5"],
    "decimal text": ["123.45", "0.10", "-7"],
    "exponents": ["1e5", "2.5E-3", "-0"],
    "18 digits": ["123456789012345678", "1"],
    "integral float text": ["1.0", "2"],
    "fraction only": ["0.5", ".5"],
    "zip codes": ["01234", "12345"],
    "long ints": ["1234567890123456789", "1"],
    "number text then word": ["1", "x"],
    "plus number": ["+1", "2"],
    "bool text": ["true", "False", "yes"],
    "dates": ["2024-01-05", "2024-02-29"],
    "timestamps": ["2024-01-05T10:00:00", "2024-01-05 11:30:15.123456"],
    "hour only": ["2024-01-05T10", "2024-01-05T11"],
    "hour minute": ["2024-01-05T10:00", "2024-01-05 11:30"],
    "nanoseconds": ["2024-01-05T10:00:00.123456789", "2024-01-05T10:00:00"],
    "seven digits": ["2024-01-05T10:00:00.1234567", "2024-01-05T10:00:00"],
    "impossible date": ["2024-02-30", "2024-01-01"],
    "hour 24": ["2024-01-05T24:00:00", "2024-01-05T10:00:00"],
    "utc": ["2024-01-05T10:00:00Z", "2024-01-05T10:00:00+00:00"],
    "offsets": ["2024-01-05T10:00:00+02:00", "2024-01-05T10:00:00+02:00"],
    "mixed offsets": ["2024-01-05T10:00:00+02:00", "2024-01-05T10:00:00-05:00"],
    "naive and aware": ["2024-01-05T10:00:00", "2024-01-05T10:00:00+02:00"],
    "dates then text": ["2024-01-05", "soon"],
    "year month": ["2024-01-05", "2024-01"],
    "trailing space": ["2024-01-05 ", "2024-01-06"],
    "negative year": ["2024-01-05", "-2024-01-05"],
    "durations": ["1 day", "00:00:01"],
    "text and none": ["a", None],
    "dates and none": ["2024-01-05", None],
    "all none": [None, None],
    "nan floats only": [math.nan, math.nan],
    "lists": [[1], [2]],
    "dicts": [{"a": 1}, {"a": 2}],
    "datetimes": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)],
    "dates objects": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)],
    "unicode": ["naïve", "日本"],
    "one row": ["2024-01-05"],
    "19 digits": ["1000000000000000000", "1"],
    "negative 19 digits": ["-1000000000000000000", "1"],
    "negative 18 digits": ["-999999999999999999", "999999999999999999"],
    "20 digits": ["10000000000000000000", "1"],
    "19 digit fraction": ["0.1234567890123456789", "1.5"],
    "19 digit float": ["1234567890123456789.5", "1.5"],
    "minus zero text": ["-0", "0"],
    "number then empty": ["1", ""],
    "float then empty": ["1.5", ""],
    "date then empty": ["2024-01-05", ""],
    "empty first": ["", "1"],
    "only empty": [""],
    "newline inside": ["1\n2", "3"],
    "int text then float": ["1", "2.5"],
    "int text then exponent": ["1", "2e3"],
    "int text then leading zero": ["1", "01"],
    "int text then plus": ["1", "+2"],
    "int text then trailing newline": ["1", "2\n"],
    "int text then underscore": ["1", "1_000"],
    "int text then space": ["1", " 2"],
    "int text then other digits": ["1", "\u0661\u0662"],
    "int text 18 then 19 digits": ["999999999999999999", "1000000000000000000"],
    "int text minus only": ["1", "-"],
}


def objects(values: list) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    return array


def same(left: object, right: object) -> None:
    pd.testing.assert_series_equal(pd.Series(left), pd.Series(right), check_exact=True)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(COLUMNS))
def test_fast_column_gives_what_the_full_path_gives(name: str, kind: str | None) -> None:
    values = COLUMNS[name]
    (full,) = _slow_columns([values], [kind], False)
    for given in (list(values), objects(values)):  # a record's column, a row table's
        fast = fast_column(given, kind)
        if fast is not None:
            same(fast, full)
    frame = columns_frame([list(values)], ["c"], [kind])
    same(frame["c"].rename(None), full)


@pytest.mark.parametrize("name", list(COLUMNS))
def test_spreadsheet_cells_give_what_the_full_path_gives(name: str) -> None:
    values = COLUMNS[name]
    (full,) = _slow_columns([values], [None], True)
    same(columns_frame([list(values)], ["c"], [None], empty_is_null=True)["c"].rename(None),
         full)


def test_fast_paths_are_taken_for_regular_columns() -> None:
    assert fast_column([1, 2], None).dtype == np.int64
    assert fast_column([1.5, 2.0], None).dtype == np.float64
    assert fast_column([True, False], None).dtype == np.bool_
    assert str(fast_column(["2024-01-05", "2024-01-06"], None).dtype) == "datetime64[us]"
    assert str(fast_column(["1", "22"], None).dtype) == "int64"
    assert str(fast_column(["1.5", "22"], None).dtype) == "float64"
    assert fast_column([1, None], None) is None  # NULLs: the full path
    assert fast_column([1, 2.5], None) is None  # mixed types: the full path
    assert fast_column([1, 2**64], None) is None  # beyond int64: the full path
    assert fast_column(["a", ""], None, empty_is_null=True) is None
    assert fast_column(objects([1, True]), None) is None  # a bool is no integer here
    assert fast_column(objects([1, 2**64]), None) is None
    assert fast_column(objects([1, None]), None) is None
    assert fast_column(objects([1, 2]), None).dtype == np.int64
    assert str(fast_column(objects(["1", "2"]), None).dtype) == "int64"


def test_rows_as_tuples_and_mixed_widths() -> None:
    got = result_to_table({"columns": ["a", "b"], "rows": [(1, "x"), [2, "y"]]}, None)
    assert got.to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}
    assert result_to_table({"columns": ["a", "b"], "rows": [[1, "x"], [2]]}, None) is None
    nested = result_to_table({"columns": ["a", "b"], "rows": [[[1, 2], "x"], [[3, 4], "y"]]},
                             None)
    assert nested["a"].tolist() == [[1, 2], [3, 4]]


ROWS = [[i, i * 1.5, f"r{i % 3}", f"2024-01-{i % 28 + 1:02d}", i % 2 == 0] for i in range(50)]


def slow_rows(rows: list, names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({n: s for n, s in zip(
        names, _slow_columns([list(c) for c in zip(*rows)], [None] * len(names), False))})


@pytest.mark.parametrize("breaker", [None, "x", 2**70, 1.5, [1], {"k": 1}, True])
def test_one_odd_value_changes_only_its_column(breaker: object) -> None:
    rows = [list(r) for r in ROWS]
    names = ["id", "amount", "region", "day", "paid"]
    for col in range(5):
        rows_with = [list(r) for r in rows]
        rows_with[7][col] = breaker
        got = result_to_table({"columns": names, "rows": rows_with}, None)
        pd.testing.assert_frame_equal(got, slow_rows(rows_with, names), check_exact=True)


def test_records_with_other_keys_take_the_full_path() -> None:
    records = [{"a": 1, "b": "x"}, {"b": "y", "a": 2}, {"a": 3, "c": 1.5}]
    got = result_to_table(records, None)
    assert list(got.columns) == ["a", "b", "c"]
    assert got["c"].isna().tolist() == [True, True, False]
    reordered = result_to_table([{"a": 1, "b": "x"}, {"b": "y", "a": 2}], None)
    assert reordered.to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}


def test_regular_records_are_typed_like_rows() -> None:
    records = [dict(zip(["id", "amount", "region", "day", "paid"], r)) for r in ROWS]
    by_records = result_to_table(records, None)
    by_rows = result_to_table(
        {"columns": ["id", "amount", "region", "day", "paid"], "rows": ROWS}, None)
    pd.testing.assert_frame_equal(by_records, by_rows)
    assert dict(by_records.dtypes.astype(str)) == {
        "id": "int64", "amount": "float64", "region": "str", "day": "datetime64[us]",
        "paid": "bool"}


def test_duplicate_column_names_survive() -> None:
    got = result_to_table({"columns": ["a", "a"], "rows": [[1, "x"], [2, "y"]]}, None)
    assert list(got.columns) == ["a", "a"]
    assert got.iloc[:, 0].tolist() == [1, 2]


def test_declared_numbers_as_text_parse_as_to_numeric_does() -> None:
    rng = random.Random(7)
    values = [f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 9)}f}" for _ in range(2000)]
    values += [repr(rng.random() * 10 ** rng.randint(-300, 300)) for _ in range(2000)]
    for kind in ("float", None):
        (full,) = _slow_columns([values], [kind], False)
        fast = fast_column(values, kind)
        assert fast is not None
        same(fast, full)


def test_nanoseconds_are_kept_not_cut_to_microseconds() -> None:
    got = result_to_table({"columns": ["at"], "rows": [["2024-01-05T10:00:00.123456789"],
                                                       ["2024-01-05T10:00:00"]]}, None)
    assert got["at"].iloc[0] == pd.Timestamp("2024-01-05T10:00:00.123456789")


def test_declared_big_ints_with_nulls_in_records_stay_exact() -> None:
    schema = {"type": "object", "properties": {"rows": {"type": "array", "items": {
        "type": "object", "properties": {"n": {"type": "integer"}}}}}}
    got = result_to_table({"rows": [{"n": 2**60 + 1}, {"n": None}]}, None,
                          output_schema=schema)
    assert str(got["n"].dtype) == "Int64"
    assert got["n"].iloc[0] == 2**60 + 1 and got["n"].isna().iloc[1]


# --------------------------------------------------------------------------- JSON reader

JSON_TEXTS = [
    "[18446744073709551615]", "[18446744073709551616]", "[-9223372036854775808]",
    "[-9223372036854775809]", "[123456789012345678901234567890]", "[1234567890123456789]",
    '{"a": 99999999999999999999, "b": [1, 2]}', "[1e400]", "[-1e400]", "[1e-400]",
    "[NaN]", "[Infinity]", "[-Infinity]", '{"a": 1, "b": 2, "a": 3}',
    '{"a": {"a": 1, "a": [2]}}', '["\\ud800"]', '["\ud800"]', '{"\\udc00": 1}',
    '["\\ud83d\\ude00", "\U0001f600", "é", "\\u00e9", "\\u0000", "a\\/b"]', "[1.0, -0, -0.0]",
    "[0.30000000000000004, 9007199254740993, 9007199254740993.0, 5e-324]",
    "[1.7976931348623157e308, 1.7976931348623159e308, 2.2250738585072014e-308]",
    "[1.00000000000000011102230246251565404236316680908203125]", '["\x00"]', "\ufeff[1]",
    "[1,]", "[01]", "[.5]", "[1.e5]", "[1] x", ' \n[1]\t ', "[" * 300 + "]" * 300,
    "[" * 1100 + "]" * 1100, '"x"', "{}",
]


def json_outcome(loads: object, text: str) -> str:
    try:
        value = loads(text)  # type: ignore[operator]
    except RecursionError:
        return "RecursionError"
    except ValueError:
        return "ValueError"
    return repr(value) + repr(type_tree(value))


def type_tree(value: object) -> object:
    if isinstance(value, dict):
        return {k: type_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [type_tree(v) for v in value]
    return type(value).__name__


@pytest.mark.parametrize("text", JSON_TEXTS)
def test_json_reader_gives_what_json_gives(text: str) -> None:
    from mcp_magic.tables.literals import _dense_in_objects, json_loads

    assert json_outcome(json_loads, text) == json_outcome(json.loads, text)
    # inside a large answer of records, where orjson reads it
    for big in ("[" + ", ".join([text] + ['{"k": 1}'] * 10_000) + "]",
                "[" + ", ".join(['{"k": 1}'] * 10_000 + [text]) + "]"):
        assert _dense_in_objects(big)
        assert json_outcome(json_loads, big) == json_outcome(json.loads, big)


def test_json_reader_numbers_and_long_texts() -> None:
    from mcp_magic.tables.literals import _dense_in_objects, _long_digit_run, json_loads

    rng = random.Random(11)
    numbers = []
    for _ in range(3000):
        numbers += [repr(rng.uniform(-1e6, 1e6)), f"{rng.random():.{rng.randint(1, 20)}f}",
                    f"{rng.randint(1, 10**17)}.{rng.randint(0, 10**17)}e{rng.randint(-320, 320)}",
                    str(rng.randint(-10 ** rng.randint(1, 21), 10 ** rng.randint(1, 21)))]
    short = [n for n in numbers if not re.search(r"[0-9]{19}", n)]  # these orjson reads
    for chosen in (numbers, short):
        text = "[" + ", ".join(f'{{"n": {n}}}' for n in chosen) + "]"
        assert _dense_in_objects(text)
        assert json_outcome(json_loads, text) == json_outcome(json.loads, text)
    assert not _long_digit_run(text.encode())
    big = json.dumps([{"id": i, "v": i * 0.1, "s": "x" * (i % 7)} for i in range(5000)])
    assert _dense_in_objects(big)
    for tail in ("", ", 12345678901234567890", ", -9223372036854775809", ", NaN",
                 ', "\\ud800"', ", 1234567890123456789012"):
        text = big[:-1] + tail + "]"
        assert json_outcome(json_loads, text) == json_outcome(json.loads, text)


def test_long_digit_runs_are_found_wherever_they_are() -> None:
    from mcp_magic.tables.literals import _long_digit_run

    rng = random.Random(5)
    for _ in range(400):
        size = rng.choice([50, 4096, 5003, 9000])
        chars: list[str] = []
        while len(chars) < size:
            if rng.random() < 0.3:
                chars += rng.choices("0123456789", k=rng.randint(1, rng.choice([16, 19, 25])))
            else:
                chars += rng.choices('ab,." [e', k=rng.randint(1, 4))
        data = "".join(chars[:size]).encode()
        assert _long_digit_run(data) == (re.search(rb"[0-9]{19}", data) is not None)
