"""A tool's view in the cell: an anywidget holding the sandboxed iframe, plus fallbacks.

`show_view` is what ``%mcp call`` and ``%%agent`` use after a tool that has a view answered:
it reads the view through the session and displays it. Where no live view can be shown
(terminal IPython, no anywidget) it displays one line saying the view exists; the tool's
text or table result is shown by the caller as always, so saved notebooks, HTML exports
and GitHub show the result plus that line.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
from pathlib import Path
from typing import Any

from . import ViewResource, build_csp, inject_csp, view_uri
from .bridge import Approval, ViewBridge, dump_result

STATIC = Path(__file__).resolve().parent / "static"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
INPUT_LIMIT = 1_000_000  # characters of tool input/result handed to a view


def view_line(server: str, tool: str, uri: str) -> str:
    """The one line that says a tool has a view; it stays in saved notebooks and exports."""
    return (f"▣ {server}.{tool} has a view ({uri}), live in JupyterLab or Notebook 7"
            " while the kernel runs")


class ViewLine:
    """That line as an output: text/plain and text/html."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        return {
            "text/plain": self.text,
            "text/html": f"<div class='mcp-magic-view-line' style='font-size:12px;color:#777'>"
                         f"{html.escape(self.text)}</div>",
        }


def _bounded(value: dict[str, Any], what: str) -> tuple[dict[str, Any], str]:
    size = len(json.dumps(value, default=str))
    if size <= INPUT_LIMIT:
        return value, ""
    return {}, f"the tool {what} ({size:,} characters) is too big to hand to the view"


@functools.cache
def _bundle() -> tuple[bytes, str]:
    """The page side (AppBridge and the glue) and the loader that fetches it, keyed by hash."""
    code = (STATIC / "view.js").read_bytes()
    digest = hashlib.sha256(code).hexdigest()[:16]
    loader = (STATIC / "loader.js").read_text(encoding="utf-8").replace("_BUNDLE_HASH_", digest)
    return code, loader


@functools.cache
def _widget_class() -> Any:
    import anywidget
    import traitlets

    class AppView(anywidget.AnyWidget):
        """The view: the tool call it belongs to and a note line; its HTML (CSP injected)
        and the bridge bundle go to the page on request, so saved widget state stays small."""

        _esm = traitlets.Unicode("").tag(sync=True)
        server = traitlets.Unicode("").tag(sync=True)
        tool = traitlets.Unicode("").tag(sync=True)
        uri = traitlets.Unicode("").tag(sync=True)
        tool_info = traitlets.Dict().tag(sync=True)
        tool_input = traitlets.Dict().tag(sync=True)
        tool_result = traitlets.Dict().tag(sync=True)
        prefers_border = traitlets.Bool(True).tag(sync=True)
        note = traitlets.Unicode("").tag(sync=True)

        def __init__(self, page: str = "", **kwargs: Any) -> None:
            super().__init__(_esm=_bundle()[1], **kwargs)
            self.page = page

        def answer_load(self, message: dict[str, Any]) -> None:
            if message.get("bundle"):
                self.send({"type": "bundle"}, buffers=[_bundle()[0]])
            if message.get("html"):
                self.send({"type": "html", "html": self.page})

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            data = super()._repr_mimebundle_(**kwargs)
            if isinstance(data, tuple):
                data = data[0]
            # No text of its own: the line beside it is what a static rendering shows.
            return {WIDGET_VIEW: dict(data or {})[WIDGET_VIEW], "text/plain": ""}

    return AppView


def make_view(
    manager: Any,
    server: str,
    tool: Any,
    arguments: dict[str, Any],
    result: Any,
    view: ViewResource,
    approval: Approval = "writes",
) -> Any:
    """The widget for one answered call, wired to a `ViewBridge` on the kernel side."""
    AppView = _widget_class()
    tool_input, input_note = _bounded(arguments or {}, "input")
    tool_result, result_note = _bounded(dump_result(result), "result")
    info = {"name": tool.name, "inputSchema": getattr(tool, "input_schema", None) or {}}
    if getattr(tool, "description", None):
        info["description"] = tool.description
    widget = AppView(
        page=inject_csp(view.html, build_csp(view.csp)),
        server=server,
        tool=tool.name,
        uri=view.uri,
        tool_info=info,
        tool_input=tool_input,
        tool_result=tool_result,
        prefers_border=view.prefers_border is not False,
        note=input_note or result_note,
    )

    def note(text: str) -> None:
        widget.note = text

    bridge = ViewBridge(manager, server, lambda message: widget.send(message), note,
                        approval=approval)

    def on_message(_widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "load":
            widget.answer_load(content)
        else:
            bridge.handle(content)

    widget.on_msg(on_message)
    widget.observe(lambda _change: bridge.close(), names="comm")  # closed with the widget
    widget.bridge = bridge
    return widget


def read_view(manager: Any, server: str, uri: str) -> ViewResource:
    """The view's resource, read through the session (ValueError/McpError say why not)."""
    answer = manager.request(server, lambda client: client.read_resource(uri))
    return ViewResource.from_contents(uri, answer.contents)


def _live_frontend() -> bool:
    """Whether the output goes to a frontend that can show widgets (not terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or type(shell).__name__ == "TerminalInteractiveShell":
        return False
    return getattr(shell, "kernel", None) is not None


def show_view(
    manager: Any,
    server: str,
    tool_name: str,
    arguments: dict[str, Any],
    result: Any,
    approval: Approval = "writes",
) -> Any:
    """Display the view of an answered call if the tool has one; returns the widget, if any.

    Never raises: a view that cannot be read or shown becomes one line in the cell.
    """
    from IPython.display import display

    tool = manager.sessions[server].tools.get(tool_name)
    uri = view_uri(tool) if tool is not None else None
    if uri is None:
        return None
    from ..tables.big_json import plain_rows

    result = plain_rows(result)  # the view gets the result as JSON
    line = view_line(server, tool_name, uri)
    if not _live_frontend():
        display(ViewLine(line))
        return None
    try:
        import anywidget  # noqa: F401
    except ImportError:
        display(ViewLine(f"{line} (install anywidget to see it)"))
        return None
    try:
        view = read_view(manager, server, uri)
        widget = make_view(manager, server, tool, arguments, result, view, approval)
    except Exception as exc:  # McpError, ValueError: say it in one line, keep the result
        reason = " ".join(str(exc).split())[:200]
        display(ViewLine(f"▣ {server}.{tool_name} has a view ({uri}) that could not be shown:"
                         f" {reason}"))
        return None
    # Two outputs: the line is what a saved notebook, an export or GitHub shows; the
    # widget is the live view (its state holds neither the HTML nor the bridge code).
    display(ViewLine(line))
    display(widget)
    return widget
