"""The display of an `%%agent` run: pure renderers, then an in-process IPython that
records what `display` publishes (no kernel, no frontend)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pandas as pd
import pytest
from IPython.utils.capture import capture_output

from mcp_magic.agent.events import (
    ApprovalRequest,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    UsageReport,
)
from mcp_magic.agent.providers.base import Usage
from mcp_magic.display import agent_view
from mcp_magic.display.agent_view import (
    WIDGET_VIEW,
    AgentView,
    safe_markdown,
    tool_block_bundle,
    tool_block_html,
    tool_block_text,
    tool_header,
    usage_html,
    usage_text,
)

SQL = {"sql": "select region, revenue from sales"}


def started(**kw) -> ToolCallStarted:
    values = {"call_id": "c1", "server": "db", "tool": "query_db", "arguments": SQL}
    return ToolCallStarted(**{**values, **kw})


def finished(**kw) -> ToolCallFinished:
    values = {"call_id": "c1", "status": "ok", "duration": 0.25, "result": "fine"}
    return ToolCallFinished(**{**values, **kw})


def frame(rows: int = 25) -> pd.DataFrame:
    return pd.DataFrame(
        {"region": [f"r{i}" for i in range(rows)], "revenue": [i * 10 for i in range(rows)]}
    )


# ---------------------------------------------------------------------------
# pure renderers


def test_import_is_cheap() -> None:
    code = (
        "import sys, mcp_magic.display.agent_view\n"
        "print([m for m in ('ipywidgets', 'pandas') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_header_while_running() -> None:
    header = tool_header(started())
    assert header.startswith("⏳ db.query_db")
    assert "running" in header
    assert "→" not in header


def test_a_call_waiting_for_approval_says_so_until_answered(monkeypatch) -> None:
    import mcp_magic.display.agent_view as agent_view
    from mcp_magic.agent.events import ApprovalAnswered, ApprovalRequest, Decision

    shown: list[dict] = []

    class Handle:  # what IPython's display(display_id=True) returns
        def update(self, bundle: dict, raw: bool = False) -> None:
            shown.append(bundle)

    monkeypatch.setattr(agent_view, "_display", lambda bundle: (shown.append(bundle), Handle())[1])
    view = agent_view.AgentView(live=False)
    view.handle(started())
    request = ApprovalRequest("c1", "db", "query_db", {"sql": "select 1"}, "it may change data")
    view.handle(request)
    assert shown[-1]["text/plain"].startswith("⏸ db.query_db — waiting for approval")
    assert "mcp-magic-waiting" in shown[-1]["text/html"]
    request.reply.set_result(Decision("allow"))
    view.handle(ApprovalAnswered("c1", Decision("allow")))
    assert shown[-1]["text/plain"].startswith("⏳ db.query_db — running")


@pytest.mark.parametrize(
    ("status", "symbol"),
    [("ok", "✓"), ("error", "✗"), ("denied", "⊘"), ("cancelled", "⊘")],
)
def test_header_when_finished(status: str, symbol: str) -> None:
    header = tool_header(started(), finished(status=status, duration=1.5, variable="result_1"))
    assert header.startswith(f"{symbol} db.query_db")
    assert status in header
    assert "1.5 s" in header
    assert "→ result_1" in header
    html = tool_block_html(started(), finished(status=status, variable="result_1"))
    assert html.startswith("<details") and html.endswith("</details>")
    assert "<summary>" in html and status in html and "result_1" in html


def test_header_without_variable_and_ms_duration() -> None:
    header = tool_header(started(), finished(duration=0.042))
    assert "42 ms" in header
    assert "→" not in header


def test_hosted_calls_are_marked() -> None:
    assert "run by the provider" in tool_header(started(hosted=True))
    assert "run by the provider" in tool_block_html(started(hosted=True), finished())
    assert "run by the provider" in tool_block_text(started(hosted=True), finished())
    assert "provider" not in tool_header(started())


def test_everything_from_model_and_tools_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    start = started(server=evil, tool=evil, arguments={"q": evil})
    done = finished(result=evil, variable=evil)
    html = tool_block_html(start, done)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    error = tool_block_html(start, finished(status="error", error=evil, result=None))
    assert "<script>" not in error and "&lt;script&gt;alert(1)" in error
    table = tool_block_html(start, finished(result=pd.DataFrame({evil: [evil]})))
    assert "<script>" not in table


def test_arguments_read_as_lines_json_when_nested_and_raw_text_as_is() -> None:
    html = tool_block_html(started(arguments={"sql": "select 1\nfrom t", "limit": 5}))
    assert "sql: select 1\n  from t\nlimit: 5" in html  # the query keeps its lines
    nested = tool_block_html(started(arguments={"filter": {"region": "West"}}))
    assert "&quot;region&quot;: &quot;West&quot;" in nested
    text = tool_block_text(started(arguments='{"broken": '))
    assert 'arguments: {"broken": ' in text


def test_dataframe_preview_shows_columns_shape_and_first_rows() -> None:
    html = tool_block_html(started(), finished(result=frame(25), variable="result_1"))
    assert "25 rows × 2 columns" in html
    assert "<table" in html and ">region</th>" in html and ">revenue</th>" in html
    assert ">r9</td>" in html and ">r10</td>" not in html  # first 10 rows only
    text = tool_block_text(started(), finished(result=frame(25)))
    assert "25 rows × 2 columns" in text
    assert "region" in text and "r4" in text and "r5" not in text.split("region", 1)[1]


def test_long_text_is_truncated() -> None:
    long = "x" * 10_000
    html = tool_block_html(started(), finished(result=long))
    assert "x" * 2000 in html and "x" * 2001 not in html
    assert "10,000 characters" in html
    text = tool_block_text(started(), finished(result=long))
    assert len(text) < 1500


def test_json_result_and_error_previews() -> None:
    html = tool_block_html(started(), finished(result={"rows": 3}))
    assert "&quot;rows&quot;: 3" in html
    text = tool_block_text(started(), finished(status="error", error="Database error: no table"))
    assert text.splitlines()[0].startswith("✗ db.query_db — error")
    assert "error: Database error: no table" in text


def test_plain_text_block_is_header_plus_indented_details() -> None:
    lines = tool_block_text(started(), finished(result="42", variable="result_1")).splitlines()
    assert lines[0] == "✓ db.query_db — ok · 250 ms · → result_1"
    assert all(line.startswith("    ") for line in lines[1:])
    assert any("select region" in line for line in lines)
    assert lines[-1] == "    result: 42"


def test_bundle_carries_widget_view_only_with_a_model_id() -> None:
    static = tool_block_bundle(started(), finished())
    assert set(static) == {"text/html", "text/plain"}
    live = tool_block_bundle(started(), finished(), model_id="abc")
    assert live[WIDGET_VIEW] == {"version_major": 2, "version_minor": 0, "model_id": "abc"}
    assert live["text/html"].startswith("<details")


def test_usage_line() -> None:
    report = UsageReport(Usage(1200, 34, cost=0.0012), "openai/gpt-4", 3)
    assert usage_text(report) == (
        "tokens: 1,200 in · 34 out · 1,234 total · $0.0012 · openai/gpt-4 · 3 steps"
    )
    assert "$" not in usage_text(UsageReport(Usage(1, 2), "m", 1))
    assert usage_text(UsageReport(Usage(1, 2), "m", 1)).endswith("1 step")


def test_safe_markdown_keeps_no_raw_html() -> None:
    text = (
        "Revenue < 10 & <img src=x onerror=alert(1)> `<b>code</b>` "
        "[x](javascript:alert(1))\n```python\nif a < b:\n    print('<hi>')\n```\nafter"
    )
    md = safe_markdown(text)
    assert "<img" not in md and "<b>" not in md
    assert "](javascript:" not in md and "](unsafe-javascript:alert(1))" in md
    assert "Revenue &lt; 10 &amp; " in md
    assert "<code>&lt;b&gt;code&lt;/b&gt;</code>" in md
    assert "<pre><code class='language-python'>if a &lt; b:\n    print('&lt;hi&gt;')" in md
    assert md.rstrip().endswith("after")
    # a fence still streaming is code too
    assert "<script" not in safe_markdown("```\n<script>")


# ---------------------------------------------------------------------------
# with an in-process IPython


@pytest.fixture(scope="module")
def ip():
    from conftest import global_ipython

    return global_ipython()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(agent_view, "time", fake)
    yield fake


def run(view: AgentView, events: list, clock: FakeClock | None = None) -> None:
    for event in events:
        if clock is not None:
            clock.now += 0.01
        view.handle(event)
    view.close()


def story() -> list:
    return [
        TextDelta("Let me "),
        TextDelta("look."),
        started(),
        finished(result=frame(25), variable="result_1", duration=0.3),
        TextDelta("Region "),
        TextDelta("r24 leads."),
        UsageReport(Usage(100, 20, cost=0.0012), "openai/gpt-4", 2),
    ]


def display_id(output) -> str | None:
    return (output.transient or {}).get("display_id")


def test_live_run_publishes_text_block_updates_and_usage_in_order(ip, clock) -> None:
    view = AgentView(live=True, terminal=False)
    with capture_output() as captured:
        run(view, story(), clock)
    outputs = captured.outputs

    first_text = outputs[0]
    assert first_text.data["text/plain"] == "Let me "
    assert not first_text.update
    text_id = display_id(first_text)
    text_updates = [o for o in outputs if display_id(o) == text_id]
    assert text_updates[-1].data["text/plain"] == "Let me look."
    assert text_updates[-1].data["text/markdown"] == "Let me look."

    blocks = [o for o in outputs if "text/html" in o.data and "<details" in o.data["text/html"]]
    new_block, *updates = blocks
    assert not new_block.update
    assert set(new_block.data) == {WIDGET_VIEW, "text/html", "text/plain"}
    assert new_block.data[WIDGET_VIEW]["model_id"] == view.blocks["c1"].accordion.model_id
    assert new_block.data[WIDGET_VIEW]["version_major"] == 2
    assert "⏳" in new_block.data["text/plain"] and "running" in new_block.data["text/html"]
    assert updates and all(u.update for u in updates)
    assert all(display_id(u) == display_id(new_block) for u in updates)
    final = updates[-1].data
    assert set(final) == {WIDGET_VIEW, "text/html", "text/plain"}
    assert final["text/plain"].startswith("✓ db.query_db — ok · 300 ms · → result_1")
    assert "25 rows × 2 columns" in final["text/html"]

    second_text = [o for o in outputs if "text/markdown" in o.data and display_id(o) != text_id]
    assert second_text and second_text[-1].data["text/plain"] == "Region r24 leads."

    usage = outputs[-1]
    assert usage.data["text/plain"].startswith("tokens: 100 in · 20 out · 120 total · $0.0012")
    assert "mcp-magic-usage" in usage.data["text/html"]

    order = [outputs.index(o) for o in (first_text, new_block, second_text[0], usage)]
    assert order == sorted(order)
    assert outputs.index(updates[-1]) < outputs.index(second_text[0])


def test_accordion_holds_arguments_and_preview(ip, clock) -> None:
    import ipywidgets as widgets

    view = AgentView(live=True, terminal=False)
    with capture_output():
        view.handle(started())
        accordion = view.blocks["c1"].accordion
        assert isinstance(accordion, widgets.Accordion)
        assert accordion.selected_index is None
        assert accordion.titles[0].startswith("⏳ db.query_db")
        view.handle(finished(result=frame(3), variable="result_1", status="ok"))
        view.close()
    (body,) = accordion.children
    html = "".join(child.value for child in body.children if isinstance(child, widgets.HTML))
    assert "select region, revenue from sales" in html
    assert "3 rows × 2 columns" in html and ">region</th>" in html
    assert accordion.titles[0].startswith("✓ db.query_db — ok")
    assert "→ result_1" in accordion.titles[0]
    assert accordion.selected_index is None


def test_static_run_has_no_widget(ip, clock) -> None:
    view = AgentView(live=False, terminal=False)
    with capture_output() as captured:
        run(view, story(), clock)
    assert view.blocks["c1"].accordion is None
    assert all(WIDGET_VIEW not in o.data for o in captured.outputs)
    blocks = [o for o in captured.outputs if "<details" in o.data.get("text/html", "")]
    assert set(blocks[0].data) == {"text/html", "text/plain"}
    assert blocks[-1].update and "✓" in blocks[-1].data["text/plain"]


def test_text_updates_are_throttled(ip, clock) -> None:
    view = AgentView(live=False, terminal=False)
    with capture_output() as captured:
        for i in range(50):
            clock.now += 0.01  # 100 deltas a second
            view.text(f"w{i} ")
        pending = len(captured.outputs)
        clock.now += 0.2
        view.tick()
        ticked = len(captured.outputs)
        view.close()
    assert pending <= 1 + 6  # first display plus at most ~10 updates a second
    assert ticked == pending + 1
    assert captured.outputs[-1].data["text/plain"].endswith("w49 ")


def test_text_after_approval_prompt_starts_a_new_display(ip, clock) -> None:
    view = AgentView(live=False, terminal=False)
    with capture_output() as captured:
        run(
            view,
            [TextDelta("before"), ApprovalRequest("c1", "db", "q", {}, "x"), TextDelta("after")],
        )
    ids = {display_id(o) for o in captured.outputs}
    assert len(ids) == 2


def test_notice_and_unfinished_calls(ip, clock) -> None:
    view = AgentView(live=False, terminal=False)
    with capture_output() as captured:
        run(view, [started(), Notice("step limit reached", "warning")])
    notice = [o for o in captured.outputs if "mcp-magic-notice" in o.data.get("text/html", "")]
    assert notice[0].data["text/plain"] == "⚠ step limit reached"
    last = captured.outputs[-1]
    assert last.update and "cancelled" in last.data["text/plain"]


def test_terminal_writes_to_stdout(ip, clock) -> None:
    view = AgentView(live=False, terminal=True)
    with capture_output() as captured:
        run(view, story(), clock)
    assert not captured.outputs
    out = captured.stdout
    assert out.startswith("Let me look.\n⏳ db.query_db — running")
    assert "✓ db.query_db — ok · 300 ms · → result_1" in out
    assert "25 rows × 2 columns" in out
    assert "Region r24 leads.\ntokens: 100 in · 20 out" in out
    assert out.endswith("2 steps\n")


def test_dollar_amounts_are_not_math():
    from mcp_magic.display.agent_view import safe_markdown

    assert safe_markdown("$385 against $515") == "\\$385 against \\$515"
    assert safe_markdown("`$x`") == "<code>$x</code>"


def test_usage_not_reported_is_not_shown_as_zeros():
    silent = UsageReport(Usage(), "llama:smollm2", 2, reported=False)
    assert usage_text(silent) == "usage not reported · llama:smollm2 · 2 steps"
    zeros = UsageReport(Usage(0, 0), "m", 1)
    assert usage_text(zeros).startswith("usage not reported")
    assert "0 in" not in usage_html(silent)
