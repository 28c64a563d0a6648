"""The one table shape every tabular tool answers with, and how it is sent.

Tools build their answer with `make_table`; `table_result` turns it into the MCP result
(structured content plus a JSON text, or a summary text for a large table).
"""

import base64
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import pydantic_core
from mcp.types import CallToolResult, TextContent
from pydantic import Field, SkipValidation, WithJsonSchema
from typing_extensions import NotRequired, TypedDict

PREVIEW_ROWS = 20
TEXT_LIMIT = 64 * 1024  # larger tables get a summary as text content (the data stays structured)
PREVIEW_CELL = 200  # characters of one cell in that summary


_ROWS_SCHEMA = {"type": "array", "title": "Rows",
                "description": "The rows, each a list of cell values in column order. Absent "
                               "when the client asked for Arrow: the rows are then in the "
                               "embedded Arrow resource."}


class Table(TypedDict):
    """The table shape every tabular tool returns (the host converts it to a DataFrame)."""

    columns: Annotated[list[str], Field(description="Column names, in order.")]
    types: Annotated[
        list[str],
        Field(description="One type per column: INTEGER, REAL, TEXT, BLOB (base64 text), "
                          "DATE, TIMESTAMP (ISO 8601 text) or NULL (no non-null value)."),
    ]
    # No per-row schema and no server-side validation: clients validate structured content
    # against the output schema, and checking 100,000 rows cell by cell takes seconds.
    # Absent when the rows travel as an Arrow stream in the content (see server/arrow.py).
    rows: NotRequired[Annotated[list[list[Any]], SkipValidation(), WithJsonSchema(_ROWS_SCHEMA)]]
    row_count: Annotated[int, Field(description="Number of rows returned.")]
    truncated: Annotated[bool, Field(description="True when more rows existed than the limit "
                                                 "(or the server's answer size allowed).")]
    note: NotRequired[Annotated[str, Field(
        description="Why the rows were cut short when the server's size limit did it.")]]
    format: NotRequired[Annotated[str, Field(
        description="Where the rows are instead of `rows`: the MIME type of the embedded "
                    "resource holding them (application/vnd.apache.arrow.stream).")]]


class TableDescription(Table):
    """A table's columns (one row each) plus facts about the table itself."""

    table: Annotated[str, Field(description="The table or view described.")]
    kind: Annotated[str, Field(description="'table' or 'view'.")]
    table_rows: Annotated[int, Field(description="Number of rows in the table or view.")]


def make_table(columns: Sequence[str], types: Sequence[str], rows: list[Any],
               truncated: bool = False, note: str | None = None) -> Table:
    table = Table(columns=list(columns), types=list(types), rows=rows, row_count=len(rows),
                  truncated=truncated or note is not None)
    if note is not None:
        table["note"] = note
    return table


def row_bytes(row: Sequence[Any]) -> int:
    """About how many bytes a row takes as JSON (text and base64 blobs dominate)."""
    size = 2
    for cell in row:
        kind = type(cell)
        if kind is str:
            size += len(cell) + 3
        elif kind is bytes:
            size += len(cell) * 4 // 3 + 6
        else:
            size += 9
    return size


class AnswerBudget:
    """Adds up the size of an answer's rows, to stop it at the server's byte limit."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self.exceeded = False

    def admits(self, row: Sequence[Any]) -> bool:
        """Count `row` in if it still fits; once one does not, none does."""
        size = row_bytes(row)
        if self.exceeded or self.used + size > self.max_bytes:
            self.exceeded = True
            return False
        self.used += size
        return True

    def note(self, kept: int) -> str | None:
        if not self.exceeded:
            return None
        return (f"answer cut after {kept:,} rows: more would exceed {self.max_bytes:,} bytes, "
                "the server's answer size limit (--max-answer-bytes)")


_VALUE_TYPES = {int: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB"}


def infer_type(values: Iterable[Any]) -> str:
    """SQL type of a column from its Python values; NULL when none is non-null."""
    return type_of_kinds(set(map(type, values)))


def type_of_kinds(kinds: set[type]) -> str:
    """`infer_type` from the set of the values' Python types."""
    kinds = set(kinds)
    kinds.discard(type(None))
    if not kinds:
        return "NULL"
    if len(kinds) == 1:
        return _VALUE_TYPES.get(kinds.pop(), "TEXT")
    if kinds <= {int, float}:
        return "REAL"
    return "TEXT"


def encode_blobs(rows: list[Any], types: list[str]) -> list[Any]:
    """BLOB cells become base64 text so the result is JSON."""
    blob_columns = [i for i, kind in enumerate(types) if kind in ("BLOB", "TEXT")]
    if not any(isinstance(row[i], bytes) for row in rows for i in blob_columns):
        return rows
    encoded = []
    for row in rows:
        row = list(row)
        for i in blob_columns:
            if isinstance(row[i], bytes):
                row[i] = base64.b64encode(row[i]).decode("ascii")
        encoded.append(row)
    return encoded


def table_text(table: Table | TableDescription, force_preview: bool = False) -> str:
    """The table as JSON text, or for a large one a summary with the first rows.

    `force_preview`: always the summary, the rows being elsewhere (an Arrow resource).
    """
    where = "the Arrow resource" if force_preview else "the structured content"
    if not force_preview and table["row_count"] * len(table["columns"]) <= TEXT_LIMIT:
        text = pydantic_core.to_json(table).decode()
        if len(text) <= TEXT_LIMIT:
            return text
    preview = pydantic_core.to_json([[_cut(cell) for cell in row]
                                     for row in table["rows"][:PREVIEW_ROWS]]).decode()
    columns = ", ".join(f"{name} {kind}"
                        for name, kind in zip(table["columns"], table["types"], strict=True))
    more = " (truncated: more rows exist)" if table["truncated"] else ""
    if "note" in table:
        more = f" ({table['note']})"
    why = "Sent as Arrow" if force_preview else "Too large to repeat as text"
    return (f"{table['row_count']} rows{more}, columns: {columns}. {why}: "
            f"the full table is in {where}. First {PREVIEW_ROWS} rows: {preview}")


def _cut(cell: Any) -> Any:
    if isinstance(cell, str) and len(cell) > PREVIEW_CELL:
        return f"{cell[:PREVIEW_CELL]}… ({len(cell):,} characters)"
    return cell


def table_result(table: Table | TableDescription) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=table_text(table))],
                          structured_content=dict(table))

