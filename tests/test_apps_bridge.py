"""The kernel's side of a view's bridge, against a real server with an app (no browser).

What a view asks (`tools/call`, `resources/read`) goes through the session manager; a
write tool waits for the user's answer; bad requests become errors and one note line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_magic.apps import ViewResource, view_uri
from mcp_magic.apps.bridge import (
    DECLINED,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    RATE_LIMIT,
    ViewBridge,
)
from mcp_magic.host.config import stdio_spec
from mcp_magic.host.sessions import SessionManager

APP_SERVER = Path(__file__).resolve().parent / "servers" / "app_server.py"


@pytest.fixture()
def manager() -> Iterator[SessionManager]:
    """A fresh server per test: the counter starts at 0."""
    manager = SessionManager()
    manager.connect("counter", stdio_spec([sys.executable, str(APP_SERVER)], [], None))
    yield manager
    manager.close()


class Page:
    """Stands in for the page: collects what the kernel sends and the note lines."""

    def __init__(self, manager: SessionManager, **kwargs: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.bridge = ViewBridge(manager, "counter", self.sent.append, self.notes.append,
                                 **kwargs)

    def request(self, request_id: Any, method: str, params: Any) -> dict[str, Any]:
        self.bridge.handle({"type": "request", "id": request_id, "method": method,
                            "params": params})
        return self.sent[-1]

    def call(self, request_id: Any, name: str, **arguments: Any) -> dict[str, Any]:
        return self.request(request_id, "tools/call", {"name": name, "arguments": arguments})


def text(reply: dict[str, Any]) -> str:
    return reply["result"]["content"][0]["text"]


def test_a_read_only_tool_runs_at_once(manager: SessionManager) -> None:
    page = Page(manager)
    reply = page.call("v:1", "peek")
    assert reply == {"type": "response", "id": "v:1", "result": reply["result"]}
    assert text(reply) == "counter is 0"
    assert page.notes == []


def test_a_write_tool_waits_for_the_user_and_runs_when_allowed(manager: SessionManager) -> None:
    page = Page(manager)
    question = page.call("v:1", "increment", by=2)
    assert question["type"] == "ask" and question["id"] == "v:1"
    assert "counter.increment" in question["text"] and "may change data" in question["text"]
    assert text(page.call("v:2", "peek")) == "counter is 0"  # nothing ran yet
    page.bridge.handle({"type": "approval", "id": "v:1", "allow": True})
    assert text(page.sent[-1]) == "counter is 2"
    assert page.sent[-1]["id"] == "v:1"
    page.bridge.handle({"type": "approval", "id": "v:1", "allow": True})  # answered already
    assert text(page.call("v:3", "peek")) == "counter is 2"


def test_a_declined_write_does_not_run(manager: SessionManager) -> None:
    page = Page(manager)
    page.call("v:1", "increment")
    page.bridge.handle({"type": "approval", "id": "v:1", "allow": False})
    assert page.sent[-1]["error"]["code"] == DECLINED
    assert text(page.call("v:2", "peek")) == "counter is 0"


def test_approval_never_runs_writes_and_always_asks_for_reads(manager: SessionManager) -> None:
    assert text(Page(manager, approval="never").call("v:1", "increment")) == "counter is 1"
    assert Page(manager, approval="always").call("v:2", "peek")["type"] == "ask"


def test_closing_declines_open_questions(manager: SessionManager) -> None:
    page = Page(manager)
    page.call("v:1", "increment")
    page.bridge.close()
    assert page.sent[-1]["error"]["code"] == DECLINED
    count = len(page.sent)
    page.call("v:2", "peek")
    assert len(page.sent) == count  # a closed bridge answers nothing
    assert text(Page(manager).call("v:3", "peek")) == "counter is 0"


def test_an_unknown_tool_is_an_error_and_one_note(manager: SessionManager) -> None:
    page = Page(manager)
    reply = page.call("v:1", "no_such_tool")
    assert reply["error"]["code"] == INVALID_PARAMS
    assert len(page.notes) == 1 and "no_such_tool" in page.notes[0]
    assert text(page.call("v:2", "peek")) == "counter is 0"  # the session is fine


def test_resources_are_read_through_the_session(manager: SessionManager) -> None:
    page = Page(manager)
    reply = page.request(7, "resources/read", {"uri": "note://readme"})
    assert reply["result"]["contents"][0]["text"] == "hello from the server"
    missing = page.request(8, "resources/read", {"uri": "note://nope"})
    assert "error" in missing and missing["id"] == 8


def test_bad_requests_never_raise(manager: SessionManager) -> None:
    page = Page(manager)
    for junk in [None, [], "x", {"type": "request"}, {"type": "request", "id": True},
                 {"type": "approval", "id": ["x"]}, {"type": "bogus"}]:
        page.bridge.handle(junk)
    assert page.sent == []
    assert page.request(1, "tools/call", "not an object")["error"]["code"] == INVALID_PARAMS
    assert page.request(2, "tools/call", {"name": 5})["error"]["code"] == INVALID_PARAMS
    assert page.request(3, "sampling/createMessage", {})["error"]["code"] == METHOD_NOT_FOUND
    huge = page.request(4, "tools/call", {"name": "peek", "arguments": {"x": "y" * 2_000_000}})
    assert "over" in huge["error"]["message"]
    page.bridge.handle({"type": "note", "text": "z" * 10_000})
    assert len(page.notes[-1]) <= 300


def test_a_flood_is_refused_with_one_note(manager: SessionManager) -> None:
    now = [0.0]
    page = Page(manager, clock=lambda: now[0])
    for i in range(RATE_LIMIT):
        page.request(i, "tools/call", {"name": "no_such_tool"})
    page.notes.clear()
    for i in range(RATE_LIMIT, RATE_LIMIT + 20):
        assert page.request(i, "tools/call", {"name": "peek"})["error"]["message"] == (
            "too many requests")
    assert len(page.notes) == 1 and "requests" in page.notes[0]
    now[0] = 60.0
    assert text(page.call("later", "peek")) == "counter is 0"


def test_the_widget_carries_the_call_and_hands_out_the_view_on_request(
        manager: SessionManager) -> None:
    pytest.importorskip("anywidget")
    from mcp_magic.apps.widget import WIDGET_VIEW, make_view, read_view

    tool = manager.sessions["counter"].tools["show_counter"]
    view = read_view(manager, "counter", view_uri(tool))
    assert isinstance(view, ViewResource)
    result = manager.call_tool("counter", "show_counter", {"label": "taps"})
    widget = make_view(manager, "counter", tool, {"label": "taps"}, result, view)
    sent: list[tuple[Any, Any]] = []
    widget.send = lambda content, buffers=None: sent.append((content, buffers))
    assert widget.tool_input == {"label": "taps"}
    assert widget.tool_result["content"][0]["text"] == "taps: counter is 0"
    assert widget.tool_info["name"] == "show_counter"
    # Saved widget state holds neither the view's HTML nor the bridge bundle.
    state = widget.get_state()
    assert "<script" not in str(state) and len(str(state)) < 10_000
    assert WIDGET_VIEW in widget._repr_mimebundle_()
    # The page asks for them.
    widget._handle_custom_msg({"type": "load", "html": True, "bundle": True}, [])
    kinds = {content["type"]: (content, buffers) for content, buffers in sent}
    page = kinds["html"][0]["html"]
    assert page.index("Content-Security-Policy") < page.index("<script")
    assert "connect-src https://api.example.org" in page
    assert b"AppBridge" in bytes(kinds["bundle"][1][0]) or len(kinds["bundle"][1][0]) > 100_000
    # Requests go to the bridge; a bad one is a note on the widget.
    widget._handle_custom_msg({"type": "request", "id": "w:1", "method": "tools/call",
                               "params": {"name": "nope"}}, [])
    assert "nope" in widget.note
    assert sent[-1][0]["error"]["code"] == INVALID_PARAMS
    widget.close()
    assert widget.bridge.closed


def test_an_agent_tool_call_with_a_view_shows_it(manager: SessionManager, capsys) -> None:
    from mcp_magic.agent.events import ToolCallFinished, ToolCallStarted
    from mcp_magic.display.agent_view import AgentView

    result = manager.call_tool("counter", "show_counter", {"label": "taps"})
    view = AgentView(live=False, terminal=True, manager=manager)
    view.handle(ToolCallStarted("c1", "counter", "show_counter", {"label": "taps"}))
    view.handle(ToolCallFinished("c1", "ok", 0.1, result="taps: counter is 0", raw=result))
    view.handle(ToolCallStarted("c2", "counter", "show_counter", {}))
    view.handle(ToolCallFinished("c2", "denied", 0.1, error="denied by the user"))
    view.handle(ToolCallStarted("c3", "counter", "peek", {}))
    view.handle(ToolCallFinished("c3", "ok", 0.1, result="counter is 0", raw=result))
    out = capsys.readouterr().out
    assert out.count("▣ counter.show_counter has a view (ui://counter/view.html)") == 1
    assert out.index("counter.show_counter — ok") < out.index("▣ counter.show_counter")
