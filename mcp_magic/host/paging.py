"""A big table page by page: a table tool's ``limit=``/``offset=`` (the built-in
``query_db`` has both) called until a page says no more rows exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ProgressFn = Callable[[float, "float | None", "str | None"], None]


def call_pages(call_page: Callable[[dict[str, Any]], Any], arguments: dict[str, Any],
               page_rows: int = 100_000, progress: ProgressFn | None = None) -> Any:
    """All rows as one DataFrame; `progress` hears (rows so far, None, a message) per page.

    A page cut short by the server's byte limit is fine: the next starts where it ended.
    """
    import pandas as pd

    if page_rows < 1:
        raise ValueError("page_rows must be at least 1")
    frames = []
    offset = int(arguments.get("offset", 0))
    while True:
        frame = call_page({**arguments, "limit": page_rows, "offset": offset})
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"a page was not a table but {type(frame).__name__}")
        frames.append(frame)
        offset += len(frame)
        if progress is not None:
            rows = offset - int(arguments.get("offset", 0))
            pages = f"{len(frames)} page" + ("s" if len(frames) > 1 else "")
            progress(rows, None, f"{rows:,} rows in {pages}")
        if not frame.attrs.get("truncated") or len(frame) == 0:
            break
    whole = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    whole.attrs = dict(frames[-1].attrs, row_count=len(whole))
    return whole


def page_tool_problem(input_schema: dict[str, Any] | None) -> str | None:
    """Why a tool cannot be paged with `call_pages` (None when it can)."""
    properties = (input_schema or {}).get("properties") or {}
    if "limit" in properties and "offset" in properties:
        return None
    return "the tool has no limit= and offset= arguments to page with (query_db has both)"
