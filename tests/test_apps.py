"""MCP Apps: the host advertises views, reads them, builds their CSP (no browser here).

Against two real servers: the official example published with ext-apps
(`@modelcontextprotocol/server-basic-vanillajs`, Node, protocol 2025-11-25) and a Python
SDK server with `Apps()` (tests/servers/app_server.py, protocol 2026-07-28).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_magic.api import Host
from mcp_magic.apps import (
    APP_MIME_TYPE,
    ViewResource,
    build_csp,
    inject_csp,
    view_uri,
)

from conftest import node_server

APP_SERVER = Path(__file__).resolve().parent / "servers" / "app_server.py"


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with Host() as host:
        host.connect("counter", [sys.executable, str(APP_SERVER)])
        host.connect("clock", [node_server("mcp-server-basic-vanillajs"), "--stdio"])
        yield host


def test_the_server_sees_the_extension_advertised(host: Host) -> None:
    result = host.manager.call_tool("counter", "negotiated", {})
    assert result.content[0].text == "apps"


def test_tools_name_their_views_on_both_protocols(host: Host) -> None:
    counter = host.manager.sessions["counter"]
    clock = host.manager.sessions["clock"]
    assert counter.protocol_version != clock.protocol_version
    assert view_uri(counter.tools["show_counter"]) == "ui://counter/view.html"
    assert view_uri(counter.tools["increment"]) is None
    assert view_uri(clock.tools["get-time"]) == "ui://get-time/mcp-app.html"


def test_views_are_read_through_the_session(host: Host) -> None:
    for server, uri in [("counter", "ui://counter/view.html"),
                        ("clock", "ui://get-time/mcp-app.html")]:
        answer = host.manager.request(server, lambda c, uri=uri: c.read_resource(uri))
        view = ViewResource.from_contents(uri, answer.contents)
        assert "<script" in view.html
        assert answer.contents[0].mime_type == APP_MIME_TYPE
    answer = host.manager.request(
        "counter", lambda c: c.read_resource("ui://counter/view.html"))
    view = ViewResource.from_contents("ui://counter/view.html", answer.contents)
    assert view.csp == {"connectDomains": ["https://api.example.org"]}


def test_view_uri_reads_dicts_and_the_flat_legacy_key() -> None:
    assert view_uri({"_meta": {"ui": {"resourceUri": "ui://a/b"}}}) == "ui://a/b"
    assert view_uri({"_meta": {"ui/resourceUri": "ui://a/c"}}) == "ui://a/c"
    assert view_uri({"_meta": {"ui": {"resourceUri": "https://evil/x"}}}) is None
    assert view_uri({"name": "plain"}) is None


def test_the_default_csp_allows_no_network_and_no_frames() -> None:
    policy = build_csp(None)
    assert "default-src 'none'" in policy
    assert "connect-src 'none'" in policy
    assert "frame-src 'none'" in policy
    assert "script-src 'unsafe-inline'" in policy


def test_declared_domains_open_only_their_directive_and_junk_is_dropped() -> None:
    policy = build_csp({
        "connectDomains": ["https://api.example.org", "https://x.org; script-src *", "*"],
        "resourceDomains": ["https://cdn.example.org", "'unsafe-eval'"],
        "frameDomains": ["https://*.youtube.com"],
    })
    directives = dict(part.split(" ", 1) for part in policy.split("; "))
    assert directives["connect-src"] == "https://api.example.org"
    assert "https://cdn.example.org" in directives["script-src"]
    assert "unsafe-eval" not in policy
    assert directives["frame-src"] == "https://*.youtube.com"
    assert policy.count("script-src") == 1


def test_the_policy_goes_first_in_head() -> None:
    page = inject_csp("<html><head><script>x()</script></head></html>", "default-src 'none'")
    assert page.index("Content-Security-Policy") < page.index("<script")
    assert "default-src &#x27;none&#x27;" in page
    bare = inject_csp("<p>hi</p>", "default-src 'none'")
    assert bare.startswith("<!DOCTYPE html><html><head><meta") and "<p>hi</p>" in bare


def test_a_resource_that_is_not_html_is_refused() -> None:
    class Item:
        text = "{}"
        mime_type = "application/json"
        meta = None

    with pytest.raises(ValueError, match="not text/html"):
        ViewResource.from_contents("ui://x", [Item()])


def test_tools_meant_for_views_alone_are_not_offered_to_the_model(host: Host) -> None:
    from mcp_magic.agent.code_mode import tool_description
    from mcp_magic.agent.loop import Agent, AgentOptions

    counter = host.manager.sessions["counter"]
    assert "view_state" in counter.tools  # the view may call it ...
    agent = Agent(host.manager, provider=None, namespace={})
    offered = {t.tool for t in agent.gather_tools(AgentOptions())[0].values()}
    assert "view_state" not in offered and {"show_counter", "peek"} <= offered  # ... a model not
    described = tool_description(host.manager, {"counter": "counter"}, lambda s, t: True, {})
    assert "counter.peek(" in described and "view_state" not in described
