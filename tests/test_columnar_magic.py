"""Big tables in the cell: a capped `%mcp call` says so in one line, `--all` fetches every
page with a progress bar, both against the built-in server over stdio (Arrow fast path)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from test_columnar import SQL, expected, make_db, same

ROWS = 5_000


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_db(tmp_path_factory.mktemp("magic") / "facts.db", ROWS)


@pytest.fixture
def data(mcp, db: Path):
    mcp(f"connect data --builtin --db {db}")
    return mcp


def shown(captured) -> str:
    return "\n".join(out.data.get("text/plain", "") for out in captured.outputs)


def test_a_capped_call_says_so_in_the_cell(data, db):
    with capture_output() as captured:
        frame = data(f'call data.query_db sql="{SQL}" limit=2000')
    assert len(frame) == 2000 and frame.attrs["truncated"] is True
    notes = [line for line in shown(captured).splitlines() if line.startswith("note:")]
    assert notes == ["note: 2,000 rows of more (limit=2,000); offset=2000 fetches the next "
                     "page, a larger limit= more at once"]


def test_an_uncapped_call_shows_no_note(data):
    with capture_output() as captured:
        frame = data(f'call data.query_db sql="{SQL}" limit=10000')
    assert len(frame) == ROWS
    assert "note:" not in shown(captured)


def test_all_fetches_every_page_with_a_progress_bar(data, db, shell, monkeypatch):
    import mcp_magic
    from mcp_magic.display import render

    updates: list[tuple] = []
    original = render.Progress.update

    def update(self, progress, total, message):  # the bar the cell shows, recorded
        updates.append((progress, total, message))
        return original(self, progress, total, message)

    monkeypatch.setattr(render.Progress, "update", update)
    monkeypatch.setattr(mcp_magic._magics, "show_progress", True)
    with capture_output() as captured:
        frame = data(f'call data.query_db sql="{SQL}" --all')
    same(frame, expected(db))
    assert frame.attrs["truncated"] is False and frame.attrs["row_count"] == ROWS
    assert "note:" not in shown(captured)  # no page's "more rows" note reaches the cell
    assert (ROWS, None, f"{ROWS:,} rows in 1 page") in updates


def test_all_pages_a_query_larger_than_a_page(data, db, monkeypatch):
    import mcp_magic.host.paging as paging

    pages: list[dict] = []
    original = paging.call_pages

    def small_pages(call_page, arguments, page_rows=100_000, progress=None):
        def record(page):
            pages.append(page)
            return call_page(page)

        return original(record, arguments, 2_000, progress)

    monkeypatch.setattr(paging, "call_pages", small_pages)
    frame = data(f'call data.query_db sql="{SQL}" --all')
    assert isinstance(frame, pd.DataFrame)
    same(frame, expected(db))
    assert [p["offset"] for p in pages] == [0, 2000, 4000]


def test_all_needs_a_pageable_tool(data):
    with pytest.raises(UsageError, match="--all: the tool has no limit= and offset="):
        data("call data.list_tables --all")
