"""What a tool's answer means: an error, a table, JSON, or text.

Shared by `%mcp call` (which returns the value) and the agent (which also tells the
model about it, compactly when it is large).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TABLE_TOOLS = frozenset({"query_db", "list_files"})
"""Tools whose answers are always tables, even when empty."""


@dataclass
class Outcome:
    value: Any  # DataFrame, parsed JSON or literal, str, or None
    error: str | None
    text: str  # the result's text content blocks, joined
    notices: list[str] = field(default_factory=list)  # one line each: truncation, warnings


def interpret(result: Any, tool: str, output_schema: dict | None = None) -> Outcome:
    """Read an MCP CallToolResult the way a notebook user wants it.

    `output_schema` is the tool's declared ``outputSchema``: it names and types the
    columns of answers that do not say so themselves.
    """
    from .. import tables

    content = result.content
    text = "\n".join(block.text for block in content if getattr(block, "type", None) == "text")
    # One block of plain text (an echo, a status line) carries no binary table: the
    # columnar check and its imports are skipped, and `read_result` takes it quickly.
    plain = len(content) == 1 and tables.plainly_text(result.structured_content, text)
    if not result.is_error and not plain:
        from .columnar import has_table, result_frame  # Arrow/Parquet content first

        if has_table(result):
            frame = result_frame(result)
            if frame is not None:
                from .notices import notices

                return Outcome(frame, None, text, notices(frame))
    reading = tables.read_result(
        result.structured_content,
        text or None,
        is_error=bool(result.is_error),
        expect_table=tool in TABLE_TOOLS,
        output_schema=output_schema,
    )
    if reading.error is not None:
        return Outcome(None, reading.error, text)
    if reading.table is not None:
        return Outcome(reading.table, None, text, reading.notices)
    if reading.parsed:
        return Outcome(reading.value, None, text)
    if text:
        return Outcome(text, None, text)
    if result.structured_content is not None:
        return Outcome(result.structured_content, None, json.dumps(result.structured_content))
    kinds = ", ".join(sorted({getattr(b, "type", "?") for b in result.content}))
    note = f"({kinds or 'empty'} result)"
    return Outcome(note, None, note)


def frame_summary(frame: Any, name: str | None = None, preview_rows: int = 5) -> str:
    """A DataFrame in a few lines: shape, column types and the first rows as CSV."""
    rows, cols = frame.shape
    label = f"DataFrame `{name}`" if name else "DataFrame"
    columns = ", ".join(f"{c} ({t})" for c, t in zip(frame.columns, frame.dtypes.astype(str)))
    head = frame.head(preview_rows).to_csv(index=False).strip()
    more = f" (first {min(rows, preview_rows)} shown)" if rows > preview_rows else ""
    return f"{label}: {rows:,} rows × {cols} columns; columns: {columns}\nrows{more}:\n{head}"


def frame_for_model(
    frame: Any, variable: str | None, max_rows: int = 30, max_chars: int = 4000
) -> str:
    """What the model is told about a table: all of it if small, else a summary.

    The full DataFrame stays in the kernel under `variable`, and the model is told so.
    """
    from .notices import notices

    bound = f"The full table is in the notebook variable `{variable}`." if variable else ""
    # what the server said about its answer (rows cut, warnings) matters to the model too
    notes = "".join(f"\nServer note: {line}" for line in notices(frame))
    if len(frame) <= max_rows:
        csv_text = frame.to_csv(index=False).strip()
        if len(csv_text) <= max_chars:
            rows, cols = frame.shape
            return f"{rows} rows × {cols} columns (CSV):\n{csv_text}{notes}\n{bound}".strip()
    return f"{frame_summary(frame, variable)}{notes}\n{bound}".strip()
