"""What the user sees: small tables, tool text, progress bars.

Every object here renders both as HTML (Jupyter, nbviewer, GitHub) and as plain
text (terminal IPython, logs), so saved notebooks stay readable anywhere.
"""

from __future__ import annotations

import html
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..host.arguments import format_size, parameter_summary

DISPLAY_LIMIT = 20_000
"""Characters of a text or JSON answer shown in a cell; `%config McpMagics.display_limit`
sets it (0: no limit). The value itself always keeps everything."""
WHERE = "`_` or the variable it was assigned to"


class Table:
    """A small table with an HTML and a text rendering."""

    def __init__(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        title: str = "",
        empty: str = "",
    ):
        self.columns = list(columns)
        self.rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
        self.title = title
        self.empty = empty  # said instead of an empty table, when given

    def __len__(self) -> int:
        return len(self.rows)

    def _repr_html_(self) -> str:
        if not self.rows and self.empty:
            return f"<p class='mcp-magic-table'>{html.escape(self.empty)}</p>"
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td style='text-align:left'>{html.escape(cell)}</td>" for cell in row)
            + "</tr>"
            for row in self.rows
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return (
            f"<table class='mcp-magic-table'>{caption}"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    def __repr__(self) -> str:
        if not self.rows:
            if self.empty:
                return self.empty
            return f"{self.title}\n(none)" if self.title else "(none)"
        cells = [self.columns, *self.rows]
        widths = [min(60, max(len(row[i]) for row in cells)) for i in range(len(self.columns))]

        def line(row: Sequence[str]) -> str:
            return "  ".join(
                (cell if len(cell) <= w else cell[: w - 1] + "…").ljust(w)
                for cell, w in zip(row, widths, strict=False)
            ).rstrip()

        text = [line(self.columns), line(["-" * w for w in widths])]
        text += [line(row) for row in self.rows]
        return "\n".join(([self.title] if self.title else []) + text)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


# -- bounded display: the value keeps everything, the cell shows the first part ----------


def cut_text(text: str, limit: int) -> tuple[str, int]:
    """The head of `text` to show (ending at a line break when one is near the limit)
    and how many characters are left out. A `limit` of 0 or less shows everything."""
    if limit <= 0 or len(text) <= limit:
        return text, 0
    end = text.rfind("\n", limit * 4 // 5, limit)
    end = end if end > 0 else limit
    return text[:end], len(text) - end


def cut_note(hidden: str, where: str = WHERE) -> str:
    """The one line under a cut display: how much is missing and where the rest is."""
    return f"… {hidden} more not shown; the whole value is in {where}"


def bounded_text(text: str, limit: int, where: str = WHERE) -> str:
    """`text`, or its head and a `cut_note` when it is longer than `limit` characters."""
    shown, left = cut_text(text, limit)
    if not left:
        return text
    hidden = len(text[len(shown) :].encode("utf-8", "surrogatepass"))
    return f"{shown.rstrip()}\n{cut_note(format_size(hidden), where)}"


class _Enough(Exception):
    """The bounded stream has what it will show."""


class _BoundedStream:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size > self.limit:
            raise _Enough


def bounded_pretty(value: Any, limit: int, where: str = WHERE) -> str:
    """IPython's pretty form of a JSON-like value, rendering no more than `limit`
    characters of it (the work is bounded too); a `cut_note` says what is left."""
    from IPython.lib.pretty import RepresentationPrinter

    if limit <= 0:
        limit = sys.maxsize
    stream = _BoundedStream(limit)
    printer = RepresentationPrinter(stream, max_width=79, max_seq_length=0)
    try:
        printer.pretty(value)
        printer.flush()
    except _Enough:
        pass
    text = "".join(stream.parts)
    shown, left = cut_text(text, limit)
    if not left and stream.size <= limit:
        return text
    try:
        total = len(json.dumps(value, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        total = len(repr(value))
    hidden = max(total - len(shown), 0)
    return f"{shown.rstrip()}\n{cut_note('about ' + format_size(hidden), where)}"


class ToolText(str):
    """A tool's text answer: a real `str`, displayed as the text itself, not its repr,
    and cut at `DISPLAY_LIMIT` characters in the display (the string keeps all)."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(bounded_text(str(self), DISPLAY_LIMIT))


class JsonDict(dict):
    """A tool's JSON object answer: a real `dict`, its display cut at `DISPLAY_LIMIT`."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("{...}" if cycle else bounded_pretty(dict(self), DISPLAY_LIMIT))


class JsonList(list):
    """A tool's JSON array answer: a real `list`, its display cut at `DISPLAY_LIMIT`."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("[...]" if cycle else bounded_pretty(list(self), DISPLAY_LIMIT))


def tool_value(value: Any) -> Any:
    """What `%mcp call` returns for a non-table answer: the same value, bounded on show."""
    if isinstance(value, str):
        return ToolText(value)
    if type(value) is dict:
        return JsonDict(value)
    if type(value) is list:
        return JsonList(value)
    return value


class ServerNotes:
    """What a server said about its answer (rows cut, warnings, other fields), a line each."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)

    def _repr_html_(self) -> str:
        return server_notes_html(self.lines)

    def __repr__(self) -> str:
        return server_notes_text(self.lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def server_notes_text(lines: Sequence[str]) -> str:
    return "\n".join(f"note: {line}" for line in lines)


def server_notes_html(lines: Sequence[str]) -> str:
    return "".join(
        f"<div class='mcp-magic-notice' style='color:#a60'>note: {html.escape(line)}</div>"
        for line in lines
    )


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 120:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def status_table(sessions: Sequence[Any]) -> Table:
    rows = [
        [
            s.name,
            s.transport,
            s.state if not s.error else f"{s.state}: {s.error}",
            s.protocol_version or "",
            str(len(s.tools)) if s.state == "connected" else "",
            str(s.pid) if s.pid and s.state == "connected" else "",
            format_duration(s.uptime) if s.state == "connected" else "",
            s.spec.target,
        ]
        for s in sessions
    ]
    columns = ["name", "transport", "state", "protocol", "tools", "pid", "uptime", "target"]
    return Table(columns, rows, empty="No MCP servers connected.")


def tools_table(server_tools: dict[str, dict[str, Any]]) -> Table:
    """`server_tools` maps a server name to its tools (MCP Tool objects)."""
    rows = []
    for server, tools in server_tools.items():
        for tool in tools.values():
            hints = []
            annotations = getattr(tool, "annotations", None)
            if annotations is not None:
                if annotations.read_only_hint:
                    hints.append("read-only")
                if annotations.destructive_hint and not annotations.read_only_hint:
                    hints.append("destructive")
            description = (tool.description or "").strip().splitlines()
            rows.append(
                [
                    f"{server}.{tool.name}",
                    parameter_summary(tool.input_schema),
                    description[0] if description else "",
                    ", ".join(hints),
                ]
            )
    return Table(["tool", "parameters", "description", "hints"], rows)


class Progress:
    """A live progress bar for a running tool call, in Jupyter or a terminal.

    It appears only once the call has run for `delay` seconds: a quick call that reports
    progress anyway (a small table in chunks) leaves no bar behind in the cell. `place`
    is "terminal", "notebook" or None (no bar), or a function that says which: asked
    only then, so a call that shows no bar costs no more than making this object.
    """

    def __init__(self, label: str, place: str | None | Callable[[], str | None],
                 delay: float = 0.3) -> None:
        self.label = label
        self._place = place
        self.delay = delay
        self._started = time.monotonic()
        self._handle: Any = None
        self._last = 0.0
        self._shown = False

    @property
    def terminal(self) -> bool:
        return self._place == "terminal"

    def update(self, progress: float, total: float | None, message: str | None) -> None:
        now = time.monotonic()
        if now - self._started < self.delay:
            return
        if now - self._last < 0.1 and not (total and progress >= total):
            return
        if callable(self._place):
            self._place = self._place()
        if self._place is None:
            return
        self._last = now
        text = self._text(progress, total, message)
        if self.terminal:
            sys.stdout.write("\r" + text.ljust(78)[:78])
            sys.stdout.flush()
            self._shown = True
            return
        from IPython.display import display

        bundle = {"text/plain": text, "text/html": self._html(progress, total, message)}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)

    def _text(self, progress: float, total: float | None, message: str | None) -> str:
        suffix = f" {message}" if message else ""
        if total:
            fraction = max(0.0, min(1.0, progress / total))
            bar = "#" * int(fraction * 20)
            return f"{self.label} [{bar:<20}] {fraction:4.0%}{suffix}"
        return f"{self.label} {progress:g}{suffix}"

    def _html(self, progress: float, total: float | None, message: str | None) -> str:
        bar = (
            f"<progress value='{progress:g}' max='{total:g}'></progress>"
            if total
            else f"<progress></progress> {progress:g}"
        )
        note = html.escape(message or "")
        return f"<div class='mcp-magic-progress'>{html.escape(self.label)} {bar} {note}</div>"

    def close(self) -> None:
        if self.terminal and self._shown:
            sys.stdout.write("\r" + " " * 78 + "\r")
            sys.stdout.flush()
        elif self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
