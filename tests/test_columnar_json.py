"""Big JSON tables parsed into compact columns give the frame the usual reading gives."""

import datetime as dt
import json
from collections.abc import Iterator

import mcp_types as types
import pandas as pd
import pydantic_core
import pytest

from mcp_magic import tables
from mcp_magic.host.stdio_transport import parse_line
from mcp_magic.tables import big_json
from mcp_magic.tables.results import interpret


@pytest.fixture(autouse=True)
def small_slices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(big_json, "SLICE", 300)  # many slices, with cuts to retry
    monkeypatch.setattr(big_json, "MIN_ROWS_BYTES", 100)
    monkeypatch.setattr("mcp_magic.host.stdio_transport.BIG_LINE", 100)
    token = big_json.COMPACT.set(True)  # as in a host session's transport
    yield
    big_json.COMPACT.reset(token)


def _line(structured: dict, text: str = "a summary", rid: int = 1) -> bytes:
    return pydantic_core.to_json({"jsonrpc": "2.0", "id": rid, "result": {
        "content": [{"type": "text", "text": text}], "structuredContent": structured}})


def _usual(structured: dict, text: str = "a summary") -> pd.DataFrame:
    return tables.read_result(structured, text, expect_table=True).table


def _compact_result(line: bytes) -> types.CallToolResult:
    message = parse_line(line).message  # type: ignore[union-attr]
    result = types.CallToolResult.model_validate(message.result, by_name=False)
    assert big_json.compact_rows(result) is not None, "not parsed into columns"
    return result


N = 500
DAY = dt.date(2024, 1, 1)
TABLES = {
    "typed": (["id", "x", "name", "day", "ts", "flag"],
              ["INTEGER", "REAL", "TEXT", "DATE", "TIMESTAMP", "INTEGER"],
              [[i, i / 3, f"n],[{i}\"]]", str(DAY + dt.timedelta(days=i % 40)),
                f"2024-02-03 04:05:{i % 60:02d}", i % 2] for i in range(N)]),
    "nulls and mixes": (["a", "b", "c", "d"], ["INTEGER", "REAL", "TEXT", "BLOB"],
                        [[None if i % 7 == 0 else i, i if i % 2 else i + 0.5,
                          None if i % 5 == 0 else "t" * (i % 4), [i, [i]] if i % 3 else {"k": i}]
                         for i in range(N)]),
    "big ints and bools": (["big", "yes", "n"], ["INTEGER", "BOOLEAN", "TEXT"],
                           [[2**70 + i if i == N - 1 else i, i % 3 == 0, str(i)]
                            for i in range(N)]),
    "numbers as text": (["v", "w"], ["TEXT", "REAL"],
                        [[str(i * 1.5), "12.5" if i % 2 else "x"] for i in range(N)]),
}


@pytest.mark.parametrize("name", list(TABLES))
def test_compact_columns_make_the_usual_frame(name: str) -> None:
    columns, kinds, rows = TABLES[name]
    structured = {"columns": columns, "types": kinds, "rows": rows, "row_count": len(rows),
                  "truncated": True, "note": "more rows exist"}
    result = _compact_result(_line(structured))
    compact = result.structured_content["rows"]
    assert isinstance(compact, list) and len(compact) == N  # an array to the SDK's check
    assert compact.rows() == rows  # the plain rows on demand
    dumped = result.model_dump(by_alias=True, exclude_none=True)
    assert dumped["structuredContent"] == structured  # serialized with its rows
    assert json.loads(result.model_dump_json(by_alias=True))["structuredContent"] == structured
    frame = big_json.frame(result)
    usual = _usual(structured)
    pd.testing.assert_frame_equal(frame, usual)
    assert frame.attrs == usual.attrs == {"row_count": N, "truncated": True,
                                          "note": "more rows exist"}
    assert big_json.frame(result) is frame  # read twice: the same frame
    assert len(result.structured_content["rows"]) == N  # rows from the frame, once consumed
    assert result.structured_content["rows"][0][0] == rows[0][0]


def test_python_access_fills_in_the_plain_rows() -> None:
    columns, kinds, rows = TABLES["typed"]
    structured = {"columns": columns, "types": kinds, "rows": rows}
    compact = _compact_result(_line(structured)).structured_content["rows"]
    assert compact[3] == rows[3] and compact[-1] == rows[-1]
    assert compact == rows and list(compact) == rows and rows[5] in compact
    assert json.loads(json.dumps(compact)) == rows  # a plain list from here on
    assert repr(compact) == repr(rows)


def test_other_clients_keep_plain_rows() -> None:
    columns, kinds, rows = TABLES["typed"]
    token = big_json.COMPACT.set(False)  # a task that is no host session's
    try:
        message = parse_line(_line({"columns": columns, "types": kinds, "rows": rows})).message
    finally:
        big_json.COMPACT.reset(token)
    assert type(message.result["structuredContent"]["rows"]) is list


def test_interpret_takes_the_compact_path_with_the_same_outcome() -> None:
    columns, kinds, rows = TABLES["typed"]
    structured = {"columns": columns, "types": kinds, "rows": rows, "row_count": N,
                  "truncated": False}
    outcome = interpret(_compact_result(_line(structured)), "query_db")
    usual = interpret(types.CallToolResult(
        content=[types.TextContent(type="text", text="a summary")],
        structured_content=structured), "query_db")
    pd.testing.assert_frame_equal(outcome.value, usual.value)
    assert (outcome.error, outcome.text, outcome.notices) == (usual.error, usual.text,
                                                               usual.notices)


@pytest.mark.parametrize("structured", [
    {"columns": ["a", "b"], "rows": [[1, 2]] * N},  # no types: the schema might say
    {"columns": ["a", "b"], "types": ["x", "y"], "rows": [[1, 2]] * N},  # unknown types
    {"columns": ["a", "b"], "types": ["INTEGER"], "rows": [[1, 2]] * N},
    {"columns": ["a"], "types": ["INTEGER"], "rows": [[1, 2]] * N},
    {"columns": ["a", "b"], "types": ["INTEGER"] * 2, "rows": [[1, 2]] * N + [[1]]},
    {"columns": ["a", "b"], "types": ["INTEGER"] * 2, "rows": [[1, 2]] * N + [{"a": 1}]},
    {"columns": ["a", "b"], "types": ["INTEGER"] * 2, "rows": [[1, 2]] * 3},  # small
    {"data": {"rows": [[1, 2]] * N}, "rows": [[1]] * N},  # two row arrays
])
def test_other_shapes_are_parsed_the_usual_way(structured: dict) -> None:
    line = _line(structured)
    message = parse_line(line).message  # type: ignore[union-attr]
    result = types.CallToolResult.model_validate(message.result, by_name=False)
    if big_json.compact_rows(result) is not None:
        # the frame falls back to the plain rows, read the usual way
        assert big_json.frame(result) is None
        assert type(result.structured_content["rows"]) is list
    assert result.structured_content == structured


def test_an_error_result_keeps_its_rows_for_the_usual_reading() -> None:
    structured = {"columns": ["a"], "types": ["INTEGER"], "rows": [[i] for i in range(N)]}
    result = _compact_result(_line(structured, text="Error: the database is locked"))
    outcome = interpret(result, "query_db")
    assert outcome.error is not None and "locked" in outcome.error
    assert result.structured_content["rows"] == structured["rows"]


def test_a_flagged_error_is_never_compact() -> None:
    line = pydantic_core.to_json({"jsonrpc": "2.0", "id": 1, "result": {
        "content": [], "isError": True,
        "structuredContent": {"columns": ["a"], "types": ["INTEGER"],
                              "rows": [[i] for i in range(N)]}}})
    message = parse_line(line).message  # type: ignore[union-attr]
    assert len(message.result["structuredContent"]["rows"]) == N


def test_the_sdks_shape_check_does_not_make_the_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_types import methods

    columns, kinds, rows = TABLES["typed"]
    message = parse_line(_line({"columns": columns, "types": kinds, "rows": rows})).message
    made = []
    monkeypatch.setattr(big_json.CompactRows, "rows",
                        lambda self: made.append(1) or [])
    methods.validate_server_result("tools/call", "2025-11-25", message.result)
    assert made == []
    assert not message.result["structuredContent"]["rows"].filled


def test_rows_before_the_columns_and_lists_after_them() -> None:
    """The last slice ends where the row array does, not at a `],[` further on."""
    columns, kinds, rows = TABLES["typed"]
    structured = {"rows": rows, "columns": columns, "types": kinds,
                  "pages": [[1, 2], [3, 4]], "note": "x],[y]]"}
    result = _compact_result(_line(structured))
    frame = big_json.frame(result)
    usual = _usual(structured)
    pd.testing.assert_frame_equal(frame, usual)
    assert frame.attrs == usual.attrs
