"""One-line remarks about a table from the fields its answer carried (``DataFrame.attrs``).

A server that cut its answer says so in a field (``warning``, ``note``, ``truncated``,
``has_more``, a total larger than the rows sent, a next-page cursor). The user must see
that in the cell, not only find it in ``df.attrs``. Other fields are listed on one line
too, so that no field of the answer goes unseen; fields that only restate the table
(``success: true``, a row count equal to the rows, ``truncated: false``) are not.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import shorten

__all__ = ["notices"]

_TEXT_KEYS = ("warning", "warnings", "note", "notes", "notice", "notices", "message",
              "messages", "truncation", "truncation_note", "truncation_message", "hint")
_FLAG_KEYS = ("truncated", "is_truncated", "isTruncated", "has_more", "hasMore", "more",
              "limited", "partial", "incomplete")
_TOTAL_KEYS = ("total", "total_count", "totalCount", "total_rows", "totalRows", "row_count",
               "rowCount", "count", "num_rows", "numRows")
_CURSOR_KEYS = ("next_cursor", "nextCursor", "next_page_token", "nextPageToken", "next_page",
                "nextPage", "cursor", "next")
_QUIET = {"success": True, "ok": True, "status": "ok", "error": None, "errors": None}
_VALUE_CHARS = 60
_LINE_CHARS = 300


def notices(frame: Any) -> list[str]:
    """Lines to show with a table: truncation and warnings first, then other fields."""
    attrs = getattr(frame, "attrs", None)
    if not attrs:
        return []
    rows = len(frame)
    lines: list[str] = []
    shown: set[str] = set()
    for key in _TEXT_KEYS:
        text = _text(attrs.get(key))
        if text:
            lines.append(shorten(text))
            shown.add(key)
    totals = [(k, attrs[k]) for k in _TOTAL_KEYS if _is_count(attrs.get(k))]
    shown.update(k for k, v in totals if v == rows)
    more = [(k, v) for k, v in totals if v > rows]
    flagged = [k for k in _FLAG_KEYS if attrs.get(k) is True]
    cursor = next((k for k in _CURSOR_KEYS if isinstance(attrs.get(k), (str, int))
                   and attrs.get(k) not in ("", None) and not isinstance(attrs.get(k), bool)),
                  None)
    shown.update(k for k in _FLAG_KEYS if attrs.get(k) is False)
    if more or flagged or cursor:
        if not lines:
            lines.append(_truncation_line(rows, more, flagged, cursor, attrs))
        shown.update(k for k, _ in more)
        shown.update(flagged)
        if cursor:
            shown.add(cursor)
    rest = [
        f"{key}={_short(value)}"
        for key, value in attrs.items()
        if key not in shown and value is not None and _QUIET.get(key, ...) != value
    ]
    if rest:
        lines.append(_cap("other fields: " + ", ".join(rest)))
    return lines


def _truncation_line(
    rows: int, more: list[tuple[str, int]], flagged: list[str], cursor: str | None,
    attrs: dict,
) -> str:
    if more:
        key, total = more[0]
        text = f"only {rows:,} of {total:,} rows came back ({key}={total})"
    else:
        text = f"only {rows:,} rows came back; the server says there are more"
        if flagged:
            text += f" ({flagged[0]}=true)"
    if cursor:
        text += f"; next page: {cursor}={_short(attrs[cursor])}"
    return text


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (list, tuple)):
        parts = [_text(v) for v in value[:5]]
        text = "; ".join(p for p in parts if p)
        return text + (f" (+{len(value) - 5} more)" if len(value) > 5 and text else "")
    if isinstance(value, dict):
        for key in ("message", "text", "detail", "warning", "note"):
            if isinstance(value.get(key), str):
                return value[key].strip()
    return ""


def _short(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    text = " ".join(text[: _VALUE_CHARS * 2].split())
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def _cap(line: str) -> str:
    return line if len(line) <= _LINE_CHARS else line[: _LINE_CHARS - 1] + "…"
