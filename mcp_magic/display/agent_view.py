"""The display of one `%%agent` run: streamed answer text, tool call blocks, usage.

An `AgentView` turns the events the agent loop publishes (see `events.py`) into
outputs. It runs on the kernel's main thread only, because display updates and
widgets touched from another thread land in the wrong cell.

Everything shown here came from a model or a tool, so all of it is escaped; every
output carries a static fallback (`text/html` `<details>` and `text/plain`) so a saved
notebook, nbviewer, GitHub or an HTML export shows the same blocks without widgets.
The pure functions (`tool_block_html`, `tool_block_text`, `safe_markdown`, ...) do the
rendering and need no IPython; ipywidgets and pandas are never imported at load time.
"""

from __future__ import annotations

import html
import json
import re
import sys
import time
from typing import Any

from ..agent.events import (
    ApprovalAnswered,
    ApprovalRequest,
    CodeFinished,
    CodeRequest,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    UsageReport,
)
from .render import format_duration, server_notes_html, server_notes_text

WAITING = "waiting for approval"
STATUS_SYMBOLS = {"running": "⏳", WAITING: "⏸", "ok": "✓", "error": "✗", "denied": "⊘",
                  "cancelled": "⊘"}
STATUS_COLORS = {
    "running": "#888",
    WAITING: "#b80",
    "ok": "#2a7",
    "error": "#c33",
    "denied": "#b80",
    "cancelled": "#888",
}
TEXT_LIMIT = 2000  # characters of a text result shown in a block
ROW_LIMIT = 10  # rows of a DataFrame shown in a block
CELL_LIMIT = 200  # characters of one DataFrame cell
SHORT_TEXT_LIMIT = 500  # the text/plain and terminal previews stay short
SHORT_ROW_LIMIT = 5
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# ---------------------------------------------------------------------------
# pure renderers


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (truncated, {len(text):,} characters in all)"


def _is_frame(value: Any) -> bool:
    """A DataFrame, by duck typing: importing pandas here would cost 0.5 s at load."""
    return hasattr(value, "to_html") and hasattr(value, "shape") and hasattr(value, "head")


def _shape_text(frame: Any) -> str:
    rows, cols = frame.shape[0], frame.shape[1] if len(frame.shape) > 1 else 1
    return f"{rows:,} row{'' if rows == 1 else 's'} × {cols} column{'' if cols == 1 else 's'}"


def _short_cells(frame: Any) -> Any:
    """Cut long strings so one wide cell cannot blow up the preview."""

    def cut(value: Any) -> Any:
        if isinstance(value, str) and len(value) > CELL_LIMIT:
            return value[:CELL_LIMIT] + "…"
        return value

    mapper = getattr(frame, "map", None) or getattr(frame, "applymap", None)
    try:
        return mapper(cut) if mapper is not None else frame
    except Exception:
        return frame


def format_arguments(arguments: Any) -> str:
    """Parsed arguments for reading: `key: value` lines when the values are plain (a
    multi-line SQL string keeps its lines), pretty JSON otherwise; raw text (invalid
    JSON the model sent) as is."""
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    if isinstance(arguments, dict) and all(
        isinstance(v, (str, int, float, bool)) or v is None for v in arguments.values()
    ):
        return "\n".join(
            f"{key}: {_plain(value)}".replace("\n", "\n  ") for key, value in arguments.items()
        )
    try:
        return json.dumps(arguments, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(arguments)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def result_text(result: Any) -> str:
    """A non-tabular result as text: strings as they are, JSON-like values as JSON."""
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    if isinstance(result, (dict, list, tuple, int, float, bool)):
        try:
            return json.dumps(result, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            pass
    return str(result)


def _status(finished: ToolCallFinished | None, waiting: bool) -> str:
    if finished is not None:
        return finished.status
    return WAITING if waiting else "running"


def tool_header(started: ToolCallStarted, finished: ToolCallFinished | None = None,
                waiting: bool = False) -> str:
    """One line: status symbol, server.tool, status, duration, bound variable, hosted mark.

    Plain text (not escaped): escape it for HTML; widget titles are set as text.
    """
    status = _status(finished, waiting)
    parts = [f"{STATUS_SYMBOLS.get(status, '?')} {started.server}.{started.tool} — {status}"]
    if finished is not None:
        parts.append(format_duration(finished.duration))
        if finished.variable:
            parts.append(f"→ {finished.variable}")
    if started.hosted:
        parts.append("run by the provider")
    return " · ".join(parts)


def _header_html(started: ToolCallStarted, finished: ToolCallFinished | None,
                 waiting: bool = False) -> str:
    status = _status(finished, waiting)
    color = STATUS_COLORS.get(status, "#888")
    symbol = html.escape(STATUS_SYMBOLS.get(status, "?"))
    parts = [
        f"<span style='color:{color}'>{symbol}</span> "
        f"<code>{html.escape(started.server)}.{html.escape(started.tool)}</code> — "
        f"<span class='mcp-magic-status' style='color:{color}'>{html.escape(status)}</span>"
    ]
    if finished is not None:
        parts.append(html.escape(format_duration(finished.duration)))
        if finished.variable:
            parts.append(f"→ <code>{html.escape(finished.variable)}</code>")
    if started.hosted:
        parts.append("<i class='mcp-magic-hosted'>run by the provider</i>")
    return " · ".join(parts)


def arguments_html(started: ToolCallStarted) -> str:
    text = _truncate(format_arguments(started.arguments), TEXT_LIMIT)
    return (
        "<div class='mcp-magic-arguments'><b>Arguments</b>"
        f"<pre style='margin:2px 0'>{html.escape(text or '(none)')}</pre></div>"
    )


def preview_html(finished: ToolCallFinished | None) -> str:
    """The result part of a block: a table, text, the error, or a note while running."""
    if finished is None:
        return "<div class='mcp-magic-result'><i>running…</i></div>"
    if finished.status != "ok":
        message = finished.error or result_text(finished.result) or finished.status
        color = STATUS_COLORS.get(finished.status, "#888")
        return (
            f"<div class='mcp-magic-result mcp-magic-error'><b>{html.escape(finished.status)}</b>"
            f"<pre style='margin:2px 0;color:{color}'>"
            f"{html.escape(_truncate(message, TEXT_LIMIT))}</pre></div>"
        )
    result = finished.result
    if _is_frame(result):
        table = _short_cells(result.head(ROW_LIMIT)).to_html(max_cols=30, border=0, escape=True)
        more = " (first rows)" if result.shape[0] > ROW_LIMIT else ""
        return (
            f"<div class='mcp-magic-result'><b>Result</b>: {html.escape(_shape_text(result))}"
            f"{more}{server_notes_html(_notices(result))}"
            f"<div style='overflow-x:auto'>{table}</div></div>"
        )
    text = result_text(result)
    body = html.escape(_truncate(text, TEXT_LIMIT)) if text else "<i>(empty)</i>"
    return (
        "<div class='mcp-magic-result'><b>Result</b>"
        f"<pre style='margin:2px 0;white-space:pre-wrap'>{body}</pre></div>"
    )


def _notices(frame: Any) -> list[str]:
    """The server's remarks kept with a table (rows cut, warnings), one line each."""
    from ..tables import notices

    return notices(frame)


def tool_block_html(started: ToolCallStarted, finished: ToolCallFinished | None = None,
                    waiting: bool = False) -> str:
    """The static block: a collapsed `<details>` with the header as its summary."""
    status = "waiting" if finished is None and waiting else _status(finished, waiting)
    return (
        f"<details class='mcp-magic-tool mcp-magic-{html.escape(status)}'>"
        f"<summary>{_header_html(started, finished, waiting)}</summary>"
        f"<div style='margin-left:1.2em'>{arguments_html(started)}{preview_html(finished)}"
        "</div></details>"
    )


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def preview_text(finished: ToolCallFinished | None) -> str:
    """A short text preview of the result (for text/plain and terminals)."""
    if finished is None:
        return ""
    if finished.status != "ok":
        return _truncate(finished.error or result_text(finished.result), SHORT_TEXT_LIMIT)
    result = finished.result
    if _is_frame(result):
        head = _short_cells(result.head(SHORT_ROW_LIMIT))
        try:
            table = head.to_string(max_cols=12, max_colwidth=40)
        except TypeError:
            table = head.to_string()
        notes = server_notes_text(_notices(result))
        return f"{_shape_text(result)}\n" + (f"{notes}\n" if notes else "") + table
    return _truncate(result_text(result), SHORT_TEXT_LIMIT)


def tool_block_text(started: ToolCallStarted, finished: ToolCallFinished | None = None,
                    waiting: bool = False) -> str:
    """The header line, then the arguments and a short preview, indented."""
    lines = [tool_header(started, finished, waiting)]
    arguments = _truncate(format_arguments(started.arguments), SHORT_TEXT_LIMIT)
    if arguments:
        lines.append(_indent("arguments: " + arguments))
    preview = preview_text(finished)
    if preview:
        label = "result: " if finished is not None and finished.status == "ok" else "error: "
        lines.append(_indent(label + preview))
    return "\n".join(lines)


def tool_block_bundle(
    started: ToolCallStarted,
    finished: ToolCallFinished | None = None,
    model_id: str | None = None,
    waiting: bool = False,
) -> dict[str, Any]:
    """The MIME bundle of a block; with `model_id`, the widget view plus the fallbacks."""
    bundle: dict[str, Any] = {}
    if model_id is not None:
        bundle[WIDGET_VIEW] = {"version_major": 2, "version_minor": 0, "model_id": model_id}
    bundle["text/html"] = tool_block_html(started, finished, waiting)
    bundle["text/plain"] = tool_block_text(started, finished, waiting)
    return bundle


# -- code blocks (code mode) ---------------------------------------------------------

CODE_TITLE = "notebook.run_python"


def code_header(request: CodeRequest | None, finished: CodeFinished | None) -> str:
    """One line: status, what it is, duration, the variables it set, whether it was edited."""
    if finished is not None:
        status = finished.status
    else:
        status = "waiting for approval" if request is not None and request.ask else "running"
    parts = [f"{STATUS_SYMBOLS.get(status, '⏳')} {CODE_TITLE} — {status}"]
    if finished is not None:
        if finished.status in ("ok", "error", "cancelled"):
            parts.append(format_duration(finished.duration))
        if finished.variables:
            shown = ", ".join(finished.variables[:6])
            more = f" +{len(finished.variables) - 6}" if len(finished.variables) > 6 else ""
            parts.append(f"→ {shown}{more}")
        if finished.edited:
            parts.append("edited by you")
    return " · ".join(parts)


def _code_status(finished: CodeFinished | None) -> str:
    return finished.status if finished is not None else "running"


def code_body_html(code: str, finished: CodeFinished | None) -> str:
    """Code, printed output, and the value (a table) or the error."""
    parts = [
        "<div class='mcp-magic-code-source'><b>Code</b>"
        "<pre style='margin:2px 0'><code class='language-python'>"
        f"{html.escape(_truncate(code, TEXT_LIMIT * 5))}</code></pre></div>"
    ]
    if finished is None:
        return "".join(parts)
    if finished.output:
        parts.append(
            "<div class='mcp-magic-code-output'><b>Output</b>"
            "<pre style='margin:2px 0;white-space:pre-wrap'>"
            f"{html.escape(_truncate(finished.output, TEXT_LIMIT * 2))}</pre></div>"
        )
    if finished.status != "ok":
        color = STATUS_COLORS.get(finished.status, "#888")
        message = finished.error or finished.status
        parts.append(
            f"<div class='mcp-magic-result mcp-magic-error'><b>{html.escape(finished.status)}</b>"
            f"<pre style='margin:2px 0;color:{color}'>{html.escape(message)}</pre></div>"
        )
    elif finished.result is not None:
        result = finished.result
        if _is_frame(result) and len(getattr(result, "shape", ())) == 2:
            table = _short_cells(result.head(ROW_LIMIT)).to_html(max_cols=30, border=0)
            more = " (first rows)" if result.shape[0] > ROW_LIMIT else ""
            parts.append(
                f"<div class='mcp-magic-code-value'><b>Value</b>: "
                f"{html.escape(_shape_text(result))}{more}"
                f"<div style='overflow-x:auto'>{table}</div></div>"
            )
        else:
            parts.append(
                "<div class='mcp-magic-code-value'><b>Value</b>"
                "<pre style='margin:2px 0;white-space:pre-wrap'>"
                f"{html.escape(_truncate(_value_text(result), TEXT_LIMIT))}</pre></div>"
            )
    return "".join(parts)


def _value_text(value: Any) -> str:
    if _is_frame(value):
        return f"{_shape_text(value)}\n{value.head(SHORT_ROW_LIMIT).to_string()}"
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def code_block_html(
    request: CodeRequest | None, finished: CodeFinished | None, code: str, open_: bool = False
) -> str:
    """The static block: a `<details>`, open while it waits for approval."""
    status = _code_status(finished)
    color = STATUS_COLORS.get(status, "#888")
    return (
        f"<details class='mcp-magic-code mcp-magic-{html.escape(status)}'"
        f"{' open' if open_ else ''}>"
        f"<summary><span style='color:{color}'>{html.escape(code_header(request, finished))}"
        "</span></summary>"
        f"<div style='margin-left:1.2em'>{code_body_html(code, finished)}</div></details>"
    )


def code_block_text(request: CodeRequest | None, finished: CodeFinished | None, code: str) -> str:
    """The header, the code, and what it printed and returned, indented."""
    lines = [code_header(request, finished), _indent(code)]
    if finished is not None:
        if finished.output.strip():
            output = _truncate(finished.output.rstrip(), SHORT_TEXT_LIMIT)
            lines.append(_indent("output: " + output))
        if finished.status != "ok":
            lines.append(_indent(f"{finished.status}: {finished.error or ''}".rstrip(": ")))
        elif finished.result is not None:
            value = _truncate(_value_text(finished.result), SHORT_TEXT_LIMIT)
            lines.append(_indent("value: " + value))
    return "\n".join(lines)


class _CodeBlock:
    """One code block on screen: shown at the request, updated when it finished."""

    def __init__(self, request: CodeRequest | None, code: str) -> None:
        self.request = request
        self.code = code
        self.finished: CodeFinished | None = None
        self.handle: Any = None
        self.accordion: Any = None
        self.body: Any = None

    def bundle(self) -> dict[str, Any]:
        asking = self.finished is None and self.request is not None and self.request.ask
        bundle: dict[str, Any] = {}
        if self.accordion is not None:
            bundle[WIDGET_VIEW] = {
                "version_major": 2, "version_minor": 0, "model_id": self.accordion.model_id
            }
        bundle["text/html"] = code_block_html(self.request, self.finished, self.code, asking)
        bundle["text/plain"] = code_block_text(self.request, self.finished, self.code)
        return bundle

    def show(self, live: bool) -> None:
        if live:
            import ipywidgets as widgets

            self.body = widgets.HTML(value=code_body_html(self.code, None))
            asking = self.request is not None and self.request.ask
            self.accordion = widgets.Accordion(
                children=[self.body],
                titles=(code_header(self.request, None),),
                selected_index=0 if asking else None,
            )
            self.accordion.add_class("mcp-magic-code")
        self.handle = _display(self.bundle())

    def finish(self, finished: CodeFinished) -> None:
        self.finished = finished
        self.code = finished.code
        if self.accordion is not None:
            self.body.value = code_body_html(self.code, finished)
            self.accordion.set_title(0, code_header(self.request, finished))
        if self.handle is not None:
            self.handle.update(self.bundle(), raw=True)


def format_cost(cost: float) -> str:
    if cost == 0:
        return "$0"
    if cost < 0.0001:
        return "<$0.0001"
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


def usage_text(report: UsageReport) -> str:
    usage = report.usage
    if not report.reported or (usage.total_tokens == 0 and usage.cost is None):
        parts = ["usage not reported"]  # some servers send none when streaming; not zero
    else:
        parts = [
            f"tokens: {usage.input_tokens:,} in · {usage.output_tokens:,} out · "
            f"{usage.total_tokens:,} total"
        ]
    if usage.cost is not None:
        cost = format_cost(usage.cost)
        total = report.total
        if total is not None and total.cost is not None and total.cost > usage.cost + 1e-12:
            cost += f" (conversation {format_cost(total.cost)})"
        parts.append(cost)
    if report.model:
        # The model that answered, when the provider names another one than was asked
        # for (a router's choice, or a local stand-in): the label never claims otherwise.
        parts.append(
            f"{report.model}, answered by {report.served_by}" if report.served_by else report.model
        )
    parts.append(f"{report.steps} step{'' if report.steps == 1 else 's'}")
    return " · ".join(parts)


def usage_html(report: UsageReport) -> str:
    return (
        "<div class='mcp-magic-usage' style='color:#888;font-size:smaller'>"
        f"{html.escape(usage_text(report))}</div>"
    )


def notice_text(notice: Notice) -> str:
    return f"{'⚠' if notice.level == 'warning' else 'ℹ'} {notice.text}"


def notice_html(notice: Notice) -> str:
    style = "color:#b60;font-weight:bold" if notice.level == "warning" else "color:#888"
    return (
        f"<div class='mcp-magic-notice mcp-magic-{html.escape(notice.level)}' "
        f"style='{style}'>{html.escape(notice_text(notice))}</div>"
    )


# Code found in the model's Markdown: fenced blocks (closed or still streaming) and
# inline spans. Both are replaced by HTML we escape ourselves, so whatever Markdown
# makes of the surrounding text, no raw tag from the model ever reaches the page.
_CODE = re.compile(
    r"(?P<fence>^[ \t]*(?P<f>`{3,}|~{3,})(?P<info>[^`\n]*)\n(?P<code>.*?)"
    r"(?:^[ \t]*(?P=f)[`~]*[ \t]*(?:\n|\Z)|\Z))"
    r"|(?P<inline>`(?P<span>[^`\n]+)`)",
    re.MULTILINE | re.DOTALL,
)
_SCRIPT_URL = re.compile(r"(j\s*a\s*v\s*a|v\s*b)(\s*s\s*c\s*r\s*i\s*p\s*t\s*\\?:)", re.IGNORECASE)


def _escape_prose(text: str) -> str:
    # `$` too: "$385 against $515" would otherwise render as LaTeX math.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace("$", "\\$")
    return _SCRIPT_URL.sub(lambda m: f"unsafe-{m.group(1)}{m.group(2)}", text)


def _code_html(match: re.Match[str]) -> str:
    if match.group("inline") is not None:
        return f"<code>{html.escape(match.group('span'), quote=False)}</code>"
    words = match.group("info").split()
    language = re.sub(r"[^\w+-]", "", words[0]) if words else ""
    attr = f" class='language-{language}'" if language else ""
    code = html.escape(match.group("code"), quote=False)
    return f"\n<pre><code{attr}>{code}</code></pre>\n"


def safe_markdown(text: str) -> str:
    """Model text as Markdown with no raw HTML or math: `<`, `&` and `$` are escaped outside code,
    code is turned into escaped `<code>`/`<pre>`, and `javascript:` links are defused.

    Jupyter renders outputs of the current session as trusted (unsanitized) HTML, and a
    model can be steered by what a tool returned, so its text must not carry markup.
    """
    out: list[str] = []
    position = 0
    for match in _CODE.finditer(text):
        out.append(_escape_prose(text[position : match.start()]))
        out.append(_code_html(match))
        position = match.end()
    out.append(_escape_prose(text[position:]))
    return "".join(out)


# ---------------------------------------------------------------------------
# the view


def _display(bundle: dict[str, Any]) -> Any:
    from IPython.display import display

    return display(bundle, raw=True, display_id=True)


class _ToolBlock:
    """One tool call on screen: its events, its display handle and (live) its widgets."""

    def __init__(self, started: ToolCallStarted) -> None:
        self.started = started
        self.finished: ToolCallFinished | None = None
        self.since = time.monotonic()
        self.handle: Any = None
        self.accordion: Any = None
        self.result_html: Any = None
        self.waiting = False  # for the user's approval

    def bundle(self) -> dict[str, Any]:
        model_id = self.accordion.model_id if self.accordion is not None else None
        return tool_block_bundle(self.started, self.finished, model_id, self.waiting)

    def show(self, live: bool) -> None:
        if live:
            self._make_widget()
        self.handle = _display(self.bundle())

    def _make_widget(self) -> None:
        import ipywidgets as widgets

        self.result_html = widgets.HTML(value=preview_html(None))
        body = widgets.VBox([widgets.HTML(value=arguments_html(self.started)), self.result_html])
        self.accordion = widgets.Accordion(
            children=[body], titles=(tool_header(self.started),), selected_index=None
        )
        self.accordion.add_class("mcp-magic-tool")

    def wait_for_approval(self, waiting: bool = True) -> None:
        self.waiting = waiting
        if self.accordion is not None:
            self.accordion.set_title(0, tool_header(self.started, None, waiting))
        if self.handle is not None:
            self.handle.update(self.bundle(), raw=True)

    def finish(self, finished: ToolCallFinished) -> None:
        self.finished = finished
        self.waiting = False
        if self.accordion is not None:
            self.result_html.value = preview_html(finished)
            self.accordion.set_title(0, tool_header(self.started, finished))
        if self.handle is not None:
            self.handle.update(self.bundle(), raw=True)


class AgentView:
    """Shows one `%%agent` run, in the order things happened.

    `live`: a Jupyter frontend with widgets (tool calls become ipywidgets Accordions,
    with a static fallback in the same output). `terminal`: plain text on stdout.
    Call `handle(event)` for each event drained from the loop's queue, `tick()` when
    the queue was idle (so a throttled text update is not held back), `close()` at the end.
    """

    UPDATE_INTERVAL = 0.1  # seconds between two updates of the streaming text

    def __init__(self, live: bool = False, terminal: bool = False, manager: Any = None) -> None:
        self.live = live and not terminal
        self.terminal = terminal
        self.manager = manager  # to show a tool's view (MCP Apps), when given
        self.blocks: dict[str, _ToolBlock] = {}
        self.code_blocks: dict[str, _CodeBlock] = {}
        self._text = ""  # the current text segment (Jupyter)
        self._text_handle: Any = None
        self._last_update = 0.0
        self._dirty = False
        self._at_line_start = True  # terminal: whether a newline is needed before a line

    # -- dispatch

    def handle(self, event: Any) -> None:
        """Show one event."""
        if isinstance(event, TextDelta):
            self.text(event.text)
        elif isinstance(event, ToolCallStarted):
            self.tool_started(event)
        elif isinstance(event, ToolCallFinished):
            self.tool_finished(event)
        elif isinstance(event, UsageReport):
            self.usage(event)
        elif isinstance(event, Notice):
            self.notice(event)
        elif isinstance(event, ApprovalRequest):
            self.approval_asked(event)
        elif isinstance(event, ApprovalAnswered):
            self.approval_answered(event)
        elif isinstance(event, CodeRequest):
            self.code_requested(event)
        elif isinstance(event, CodeFinished):
            self.code_finished(event)

    # -- text

    def text(self, delta: str) -> None:
        """Stream answer text: straight to stdout, or into the current Markdown display."""
        if not delta:
            return
        if self.terminal:
            sys.stdout.write(delta)
            sys.stdout.flush()
            self._at_line_start = delta.endswith("\n")
            return
        self._text += delta
        if self._text_handle is None:
            if self._text.strip():
                self._text_handle = _display(self._text_bundle())
                self._last_update = time.monotonic()
            return
        self._dirty = True
        self.tick()

    def tick(self) -> None:
        """Push a pending text update if the throttle interval has passed."""
        if self._dirty and time.monotonic() - self._last_update >= self.UPDATE_INTERVAL:
            self._update_text()

    def flush(self) -> None:
        """End the current text segment: final update; later text goes to a new display."""
        if self.terminal:
            return
        if self._dirty or (self._text_handle is None and self._text.strip()):
            self._update_text()
        self._text = ""
        self._text_handle = None
        self._dirty = False

    def _text_bundle(self) -> dict[str, Any]:
        return {"text/markdown": safe_markdown(self._text), "text/plain": self._text}

    def _update_text(self) -> None:
        if self._text_handle is None:
            self._text_handle = _display(self._text_bundle())
        else:
            self._text_handle.update(self._text_bundle(), raw=True)
        self._last_update = time.monotonic()
        self._dirty = False

    # -- terminal lines

    def _line(self, text: str) -> None:
        if not self._at_line_start:
            sys.stdout.write("\n")
        sys.stdout.write(text.rstrip("\n") + "\n")
        sys.stdout.flush()
        self._at_line_start = True

    # -- tool calls

    def tool_started(self, ev: ToolCallStarted) -> None:
        """A new block below the text so far, collapsed, status running."""
        self.flush()
        block = _ToolBlock(ev)
        self.blocks[ev.call_id] = block
        if self.terminal:
            arguments = format_arguments(ev.arguments)
            compact = " ".join(arguments.split())
            self._line(f"{tool_header(ev)} {_truncate(compact, 200)}".rstrip())
            return
        block.show(self.live)

    def approval_asked(self, ev: ApprovalRequest) -> None:
        """Shown before the question: the call's block says it waits, and the question
        comes after the text so far."""
        self.flush()
        block = self.blocks.get(ev.call_id)
        if block is not None and block.finished is None and not self.terminal:
            block.wait_for_approval(True)

    def approval_answered(self, ev: ApprovalAnswered) -> None:
        """The call runs (or is denied): its block no longer waits."""
        block = self.blocks.get(ev.call_id)
        if block is not None and block.finished is None and not self.terminal:
            block.wait_for_approval(False)

    def tool_finished(self, ev: ToolCallFinished) -> None:
        """Update the call's block in place with its status, duration, variable, result."""
        block = self.blocks.get(ev.call_id)
        if block is None:  # finished without a start we saw: still show it
            self.flush()
            block = _ToolBlock(ToolCallStarted(ev.call_id, "?", ev.call_id, None))
            self.blocks[ev.call_id] = block
            if not self.terminal:
                block.show(self.live)
        if self.terminal:
            block.finished = ev
            self._line(tool_header(block.started, ev))
            preview = preview_text(ev)
            if preview:
                self._line(_indent(preview))
            self._show_view(block.started, ev)
            return
        block.finish(ev)
        self._show_view(block.started, ev)

    def _show_view(self, started: ToolCallStarted, ev: ToolCallFinished) -> None:
        """Below a finished call whose tool has a view (MCP Apps): the view, live."""
        if self.manager is None or ev.status != "ok" or started.hosted:
            return
        session = self.manager.sessions.get(started.server)
        tool = session.tools.get(started.tool) if session is not None else None
        from ..apps import view_uri

        if tool is None or view_uri(tool) is None:
            return
        from ..apps.widget import show_view

        self.flush()
        result = ev.raw
        if result is None:  # a table bound to a variable: the view gets its text
            result = {"content": [{"type": "text", "text": result_text(ev.result)}]}
        arguments = started.arguments if isinstance(started.arguments, dict) else {}
        show_view(self.manager, started.server, started.tool, arguments, result)

    # -- code blocks

    def code_requested(self, ev: CodeRequest) -> None:
        """A block with the code, open while it waits for approval; the prompt follows."""
        self.flush()
        block = _CodeBlock(ev, ev.code)
        self.code_blocks[ev.call_id] = block
        if self.terminal:
            self._line(code_block_text(ev, None, ev.code))
            return
        block.show(self.live)

    def code_finished(self, ev: CodeFinished) -> None:
        block = self.code_blocks.get(ev.call_id)
        if block is None:  # refused before it was asked about: still show it
            self.flush()
            block = _CodeBlock(None, ev.code)
            self.code_blocks[ev.call_id] = block
            if not self.terminal:
                block.show(self.live)
        if self.terminal:
            block.finished = ev
            text = code_block_text(block.request, ev, ev.code)
            # the code was shown with the request; repeat it only when it changed
            lines = text.splitlines()
            if block.request is not None and not ev.edited:
                lines = [lines[0]] + lines[1 + len(ev.code.splitlines()) :]
            self._line("\n".join(lines))
            return
        block.finish(ev)

    # -- usage and notices

    def usage(self, ev: UsageReport) -> None:
        self._small(usage_text(ev), usage_html(ev))

    def notice(self, ev: Notice) -> None:
        self._small(notice_text(ev), notice_html(ev))

    def _small(self, text: str, markup: str) -> None:
        self.flush()
        if self.terminal:
            self._line(text)
        else:
            _display({"text/plain": text, "text/html": markup})

    # -- the end

    def close(self) -> None:
        """Final text update; calls that never finished are shown as cancelled."""
        self.flush()
        for block in self.blocks.values():
            if block.finished is None:
                duration = time.monotonic() - block.since
                self.tool_finished(ToolCallFinished(block.started.call_id, "cancelled", duration))
        for call_id, code_block in list(self.code_blocks.items()):
            if code_block.finished is None:
                self.code_finished(
                    CodeFinished(call_id, "cancelled", code_block.code, error="stopped")
                )
        if self.terminal and not self._at_line_start:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self._at_line_start = True
