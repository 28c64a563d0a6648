"""Tool results -> pandas DataFrames (pure functions, see DESIGN.md §2).

One conversion, `read_result`, serves `%mcp call`, `Host.call`, the tables `%%agent`
binds and the preview the model gets. Detection runs in order of trust: an error (the
``isError`` flag, text that reads as an error, an error envelope such as
``{"success": false, "error": ...}``), then ``structured_content``, then the text: JSON,
a Python literal (`literals`), then file listings, Markdown tables and CSV/TSV (`text`).
What is tabular becomes a DataFrame (`shapes`) whose dtypes follow what the server
declared, else what whole columns hold (`dtypes`); regular rows and records are built
column by column (`columns`), anything else through ``from_records``. The other fields of
an envelope stay in ``DataFrame.attrs``; `notices` turns truncation and warning fields
into one-line remarks for the cell.

The table contract of the built-in data server (its ``structured_content``)::

    {"columns": ["region", "total"],          # or [{"name": "region", "type": "TEXT"}, ...]
     "types": ["TEXT", "REAL"],               # optional, SQL type names, one per column
     "rows": [["North", 123.4], ["South", None]],   # lists (or dicts keyed by column)
     "row_count": 2,                          # optional: rows returned
     "truncated": False,                      # optional
     "note": "answer cut after ..."}          # optional: why it was cut
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import envelope_error, error_text, shorten
from .literals import parse_text
from .notices import notices

__all__ = [
    "Reading",
    "error_text",
    "notices",
    "parse_text",
    "plainly_text",
    "read_result",
    "result_to_table",
]

_ENVELOPE_ERROR_MAX_CHARS = 100_000

LISTING_STARTS = ("[FILE]", "[DIR]", "Total:")
"""How a file listing (`text._listing_table`) starts: the one table a single line can be."""

_PLAIN_LINE_MAX_CHARS = 4096
_SCALARS = (str, int, float, bool, type(None))


@dataclass
class Reading:
    """What a tool result holds, read once."""

    table: Any = None  # a DataFrame when the answer is tabular
    value: Any = None  # the parsed JSON or literal when it is not a table
    parsed: bool = False  # whether `value` was parsed from the text
    error: str | None = None  # one line: the answer is an error
    notices: list[str] = field(default_factory=list)  # one line each, for the cell


def read_result(
    structured_content: object,
    text: str | None,
    *,
    is_error: bool = False,
    expect_table: bool = False,
    output_schema: dict | None = None,
) -> Reading:
    """Read a tool result: its error, its table, or its parsed value.

    ``text`` is the result's text content blocks joined; ``expect_table`` (tools that
    always answer with a table) turns empty answers and lists of scalars into DataFrames;
    ``output_schema`` is the tool's ``outputSchema``, which names and types columns.
    """
    if is_error:
        return Reading(error=_flagged_error(structured_content, text))
    error = error_text(text, False)
    if error is None:
        error = envelope_error(structured_content)
    if error is not None:
        return Reading(error=error)
    if text is not None and plainly_text(structured_content, text):
        return Reading()  # no reader below would take it: skip them (and pandas)
    from .shapes import Hints, object_table  # pandas: imported on the first table

    hints = Hints(schema=output_schema if isinstance(output_schema, dict) else None,
                  expect_table=expect_table)
    if structured_content is not None:
        table = object_table(structured_content, hints)
        if table is not None:
            return Reading(table=table, notices=notices(table))
    if text is None:
        return Reading()
    value, ok = parse_text(text)
    if ok:
        error = envelope_error(value)
        if error is not None:
            return Reading(error=error)
        table = object_table(value, hints)
        if table is not None:
            return Reading(table=table, notices=notices(table))
        return Reading(value=value, parsed=True)
    if not text.strip():
        import pandas as pd

        return Reading(table=pd.DataFrame() if expect_table else None)
    from .text import text_table

    table = text_table(text)
    return Reading(table=table, notices=notices(table) if table is not None else [])


def plainly_text(structured_content: object, text: str) -> bool:
    """Whether an answer is text that no reader of `read_result` turns into anything else.

    The common small answer (a status line, an echo) then costs a few checks, not every
    reader. It is one line (Markdown and CSV tables need two), not blank, starting like
    no JSON or literal container and no file listing; and its structured content is
    absent or one wrapped scalar, ``{"result": "hi"}``, which is how SDK servers return a
    function's plain value.
    """
    if len(text) > _PLAIN_LINE_MAX_CHARS or "\n" in text or "\r" in text:
        return False
    stripped = text.lstrip()
    if not stripped or stripped[0] in "[{(" or stripped.startswith(LISTING_STARTS):
        return False
    if structured_content is None:
        return True
    return (
        type(structured_content) is dict
        and len(structured_content) == 1
        and isinstance(structured_content.get("result", ()), _SCALARS)
    )


def _flagged_error(structured_content: object, text: str | None) -> str:
    """An ``isError`` result's message: an envelope's message rather than its JSON."""
    message = envelope_error(structured_content)
    if message is None and text and len(text) <= _ENVELOPE_ERROR_MAX_CHARS:
        # the envelope may follow a prefix: "Error calling tool 'x': {"success": false, ...}"
        start = text.find("{", 0, 300)
        if start >= 0:
            value, ok = parse_text(text[start:])
            if ok:
                message = envelope_error(value)
    return message or error_text(text, True) or shorten(text)


def result_to_table(
    structured_content: object,
    text: str | None,
    *,
    expect_table: bool = False,
    output_schema: dict | None = None,
) -> Any:
    """Return a DataFrame when an MCP tool result is tabular, else None."""
    return read_result(
        structured_content, text, expect_table=expect_table, output_schema=output_schema
    ).table
