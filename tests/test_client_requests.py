"""Requests servers make of the client (elicitation, sampling, roots), through Host.

Both request styles, against real servers: a 2026 server that answers
`InputRequiredResult` and gets the call retried with the answers (multi-round-trip),
and the npm reference server-everything, which sends 2025-style requests.
"""

from __future__ import annotations

import sys

import pytest

from mcp_magic import Host
from mcp_magic.api import ToolError
from mcp_magic.client_requests import Answer, Elicitation, accept_defaults
from mcp_magic.sessions import McpError

from conftest import node_server

ASKING_SERVER = '''
import mcp_types as t
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer(name="asking")
SCHEMA = {"type": "object", "properties": {
    "city": {"type": "string", "default": "Paris"},
    "nights": {"type": "integer", "default": 2}}}


def first_round(ctx, request):
    if ctx.input_responses is None:
        return t.InputRequiredResult(input_requests={"q": request})
    return None


@server.tool()
async def ask(ctx: Context) -> object:
    request = t.ElicitRequest(params=t.ElicitRequestFormParams(
        message="Where to?", requested_schema=SCHEMA))
    if (first := first_round(ctx, request)) is not None:
        return first
    answer = ctx.input_responses["q"]
    if answer.action == "accept":
        return f"accepted {answer.content['city']} {answer.content['nights']}"
    return f"answer: {answer.action}"


@server.tool()
async def roots(ctx: Context) -> object:
    if (first := first_round(ctx, t.ListRootsRequest())) is not None:
        return first
    return " ".join(str(r.uri) for r in ctx.input_responses["q"].roots)


@server.tool()
async def sample(ctx: Context) -> object:
    request = t.CreateMessageRequest(params=t.CreateMessageRequestParams(
        messages=[t.SamplingMessage(role="user", content=t.TextContent(type="text", text="hi"))],
        max_tokens=10))
    if (first := first_round(ctx, request)) is not None:
        return first
    return f"model said {ctx.input_responses['q'].content.text}"


server.run()
'''


@pytest.fixture(scope="module")
def asking_server(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    path = tmp_path_factory.mktemp("asking") / "asking.py"
    path.write_text(ASKING_SERVER)
    return [sys.executable, str(path)]


def test_a_2026_server_gets_the_users_answers_and_roots(asking_server, tmp_path):
    asked: list[Elicitation] = []

    def elicit(request: Elicitation) -> dict:
        asked.append(request)
        return {"city": "Rome", "nights": 3}

    with Host(connect_timeout=30, elicit=elicit, roots=[str(tmp_path)]) as host:
        host.connect("a", asking_server)
        assert host.manager.get("a").protocol_version == "2026-07-28"
        assert host.call("a.ask") == "accepted Rome 3"
        assert asked[0].server == "a" and asked[0].message == "Where to?"
        assert asked[0].defaults == {"city": "Paris", "nights": 2}
        assert host.call("a.roots") == tmp_path.resolve().as_uri()


def test_defaults_decline_and_cancel_reach_the_server(asking_server):
    for handler, expected in [
        (accept_defaults, "accepted Paris 2"),
        (lambda request: None, "answer: decline"),
        (lambda request: Answer("cancel"), "answer: cancel"),
    ]:
        with Host(connect_timeout=30, elicit=handler) as host:
            host.connect("a", asking_server)
            assert host.call("a.ask") == expected


def test_with_no_one_to_ask_the_answer_is_decline_and_it_says_so(asking_server, capfd):
    with Host(connect_timeout=30) as host:
        host.connect("a", asking_server)
        assert host.call("a.ask") == "answer: decline"
    err = capfd.readouterr().err
    assert "a asked for input ('Where to?'): declined, no one to answer" in err


def test_a_failing_handler_raises_instead_of_returning_text(asking_server):
    def broken(request: Elicitation) -> dict:
        raise RuntimeError("the form broke")

    with Host(connect_timeout=30, elicit=broken) as host:
        host.connect("a", asking_server)
        with pytest.raises(McpError, match="elicitation failed: RuntimeError: the form broke"):
            host.call("a.ask")
        assert host.manager.get("a").state == "connected"


def test_sampling_without_a_model_is_declined_with_a_clear_error(asking_server):
    with Host(connect_timeout=30) as host:
        host.connect("a", asking_server)
        with pytest.raises(McpError, match="asked for a model completion: declined, no model"):
            host.call("a.sample")


def test_roots_are_not_offered_unless_configured(asking_server):
    # A server told of roots may replace its own allowed directories with them.
    with Host(connect_timeout=30) as host:
        host.connect("a", asking_server)
        with pytest.raises(McpError):
            host.call("a.roots")


def test_2025_requests_from_server_everything():
    with Host(connect_timeout=60, elicit=accept_defaults, roots=["/tmp"]) as host:
        host.connect("ev", node_server("mcp-server-everything"))
        assert host.manager.get("ev").protocol_version.startswith("2025")
        answer = host.call("ev.trigger-elicitation-request")
        assert '"action": "accept"' in answer and "It was a dark and stormy night." in answer
        assert "file:///tmp" in host.call("ev.get-roots-list")
        with pytest.raises(ToolError, match="declined, no model set up"):
            host.call("ev.trigger-sampling-request", prompt="hi")
