"""Bounded display of tool answers, and small tables: plain functions, no kernel."""

from __future__ import annotations

import json
import pickle

import pytest
from IPython.lib.pretty import pretty

from mcp_magic.display import render
from mcp_magic.display.render import (
    JsonDict,
    JsonList,
    ToolText,
    bounded_pretty,
    bounded_text,
    cut_note,
    cut_text,
    status_table,
    tool_value,
)


def test_cut_text_keeps_short_text_and_cuts_at_a_line_break():
    assert cut_text("short", 100) == ("short", 0)
    assert cut_text("x" * 500, 0) == ("x" * 500, 0)  # 0: no limit
    text = "".join(f"line {i}\n" for i in range(1000))
    shown, left = cut_text(text, 1000)
    assert shown.endswith("\n") is False and text.startswith(shown)
    assert 800 <= len(shown) <= 1000 and len(shown) + left == len(text)
    assert text[len(shown)] == "\n"  # ended at a line break
    one_line = "y" * 5000
    assert cut_text(one_line, 1000) == ("y" * 1000, 4000)


def test_bounded_text_says_how_much_and_where():
    text = "a" * 1_000_000
    shown = bounded_text(text, 20_000)
    head, note = shown.rsplit("\n", 1)
    assert head == "a" * 20_000
    assert note == cut_note("980 kB")
    assert "`_`" in note and "variable" in note
    assert bounded_text("small", 20_000) == "small"


def test_bounded_text_counts_bytes_of_unicode():
    shown = bounded_text("é" * 30_000, 10_000)
    assert shown.endswith(cut_note("40 kB"))  # 20,000 characters of 2 bytes each


def test_bounded_pretty_renders_a_bounded_part():
    rows = [{"id": i, "name": f"row {i}"} for i in range(100_000)]
    shown = bounded_pretty(rows, 20_000)
    head, note = shown.rsplit("\n", 1)
    assert len(head) <= 20_000 and head.startswith("[{'id': 0, 'name': 'row 0'},")
    assert note.startswith("… about ") and "MB more not shown" in note
    small = {"a": [1, 2, 3], "b": None}
    assert bounded_pretty(small, 20_000) == pretty(small)


@pytest.mark.parametrize(
    "value",
    [
        "t" * 100_000,
        {"rows": [{"i": i, "text": "x" * 50} for i in range(5_000)], "note": "done"},
        [[i, str(i)] for i in range(20_000)],
    ],
    ids=["text", "object", "array"],
)
def test_tool_value_keeps_everything_and_shows_a_part(value, monkeypatch):
    monkeypatch.setattr(render, "DISPLAY_LIMIT", 20_000)
    shown_value = tool_value(value)
    assert shown_value == value and isinstance(shown_value, type(value))
    assert json.dumps(shown_value) == json.dumps(value)
    assert pickle.loads(pickle.dumps(shown_value)) == value
    display = pretty(shown_value)
    assert len(display) < 20_200
    assert display.splitlines()[-1].startswith("… ")
    assert "the whole value is in `_`" in display.splitlines()[-1]


def test_display_limit_zero_shows_all(monkeypatch):
    monkeypatch.setattr(render, "DISPLAY_LIMIT", 0)
    assert pretty(ToolText("z" * 50_000)) == "z" * 50_000
    big = list(range(20_000))
    assert pretty(JsonList(big)) == pretty(big, max_seq_length=0)


def test_small_answers_display_as_before():
    assert pretty(ToolText("hello\nworld")) == "hello\nworld"
    assert pretty(JsonDict({"a": 1})) == "{'a': 1}"
    assert tool_value(5) == 5 and tool_value(None) is None


def test_status_table_with_no_servers_is_one_line():
    table = status_table([])
    assert repr(table) == "No MCP servers connected."
    assert "<table" not in table._repr_html_() and "No MCP servers" in table._repr_html_()


def test_a_quick_call_leaves_no_progress_bar(capsys):
    bar = render.Progress("data.query_db", "terminal", delay=60)
    bar.update(5, 5, "5 rows")
    bar.close()
    assert capsys.readouterr().out == ""


def test_a_slow_call_shows_its_progress_bar(capsys):
    bar = render.Progress("data.query_db", "terminal", delay=0)
    bar.update(5, 10, "5 rows")
    bar.close()
    assert "data.query_db [##########" in capsys.readouterr().out
