"""A server with an MCP App (the Python SDK's `Apps` extension), for tests.

`show_counter` has a view (``ui://counter/view.html``). The view speaks the MCP Apps
protocol by hand (JSON-RPC over ``postMessage``, no SDK), so it checks the host's bridge
against a second implementation besides the official example server. Its buttons:

- ``#increment``: ``tools/call increment`` (a write tool: the host must ask first);
- ``#peek``: ``tools/call peek`` (read-only: no question);
- ``#read``: ``resources/read note://readme``;
- ``#open``: ``ui/open-link``;
- ``#unknown``: ``tools/call no_such_tool``;
- ``#parent``: tries ``parent.document`` and shows what happened;
- ``#grow``: asks for a height of 100,000 px; ``#flood``: 5,000 messages at once;
- ``#throw``: its message handler throws from then on.

Each answer is written into ``#out`` (the last one) and ``#log`` (all of them). Run over
stdio; ``negotiated`` says whether the client advertised the extension.
"""

from __future__ import annotations

from mcp.server.apps import Apps, ResourceCsp, client_supports_apps
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

VIEW = "ui://counter/view.html"
COUNTER = {"value": 0}

HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>counter</title>
<style>
  body { font-family: sans-serif; margin: 8px; background: #fff; color: #111; }
  body[data-theme=dark] { background: #111; color: #eee; }
  button { margin: 2px; }
  #log { font-size: 11px; white-space: pre-wrap; }
</style></head>
<body>
<div>theme: <span id="theme">?</span> · input: <code id="input">?</code></div>
<div>result: <b id="result">?</b></div>
<div>
  <button id="increment">Increment</button><button id="peek">Peek</button>
  <button id="read">Read</button><button id="open">Open link</button>
  <button id="unknown">Unknown tool</button><button id="parent">Parent</button>
  <button id="grow">Grow</button><button id="flood">Flood</button>
  <button id="throw">Throw</button>
</div>
<div>last: <span id="out">-</span></div>
<div id="log"></div>
<script>
(function () {
  let next = 1, throwing = false;
  const pending = new Map();
  const $ = (id) => document.getElementById(id);
  const say = (text) => { $("out").textContent = text; $("log").textContent += text + "\\n"; };
  const post = (msg) => window.parent.postMessage(Object.assign({jsonrpc: "2.0"}, msg), "*");
  const request = (method, params) => new Promise((resolve) => {
    const id = next++;
    pending.set(id, resolve);
    post({id, method, params});
  });
  const notify = (method, params) => post({method, params: params || {}});
  const theme = (ctx) => {
    if (!ctx || !ctx.theme) return;
    document.body.dataset.theme = ctx.theme; $("theme").textContent = ctx.theme;
  };
  const text = (result) => ((result && result.content) || []).map((c) => c.text || "").join(" ");
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;
    if (throwing) throw new Error("the view's handler is broken");
    const msg = event.data || {};
    if (msg.id !== undefined && pending.has(msg.id)) {
      const resolve = pending.get(msg.id); pending.delete(msg.id); resolve(msg); return;
    }
    const m = msg.method;
    const params = msg.params || {};
    const shown = JSON.stringify(params.arguments);
    if (m === "ui/notifications/tool-input") $("input").textContent = shown;
    else if (m === "ui/notifications/tool-result") $("result").textContent = text(params);
    else if (m === "ui/notifications/host-context-changed") theme(params);
    else if (m === "ui/resource-teardown") post({id: msg.id, result: {}});
    else if (msg.id !== undefined && m) post({id: msg.id, result: {}});
  });
  const call = async (name, args) => {
    const reply = await request("tools/call", {name, arguments: args || {}});
    say(reply.error ? "error: " + reply.error.message : name + ": " + text(reply.result));
  };
  $("increment").onclick = () => call("increment", {by: 1});
  $("peek").onclick = () => call("peek");
  $("unknown").onclick = () => call("no_such_tool");
  $("read").onclick = async () => {
    const reply = await request("resources/read", {uri: "note://readme"});
    say(reply.error ? "error: " + reply.error.message : "read: " + reply.result.contents[0].text);
  };
  $("open").onclick = async () => {
    const reply = await request("ui/open-link", {url: "https://example.org/"});
    say(reply.error ? "error: " + reply.error.message : "open: " + JSON.stringify(reply.result));
  };
  $("parent").onclick = () => {
    try { say("parent: reached " + window.parent.document.title); }
    catch (e) { say("parent: blocked " + e.name); }
  };
  $("grow").onclick = () => notify("ui/notifications/size-changed", {height: 100000});
  $("flood").onclick = () => {
    for (let i = 0; i < 5000; i++) notify("notifications/message", {level: "info", data: "x"});
  };
  $("throw").onclick = () => { throwing = true; say("throwing"); };
  request("ui/initialize", {
    appInfo: {name: "counter-view", version: "1.0"}, appCapabilities: {},
    protocolVersion: "2026-01-26",
  }).then((reply) => {
    theme(reply.result && reply.result.hostContext);
    notify("ui/notifications/initialized");
    notify("ui/notifications/size-changed", {height: document.documentElement.scrollHeight});
    say("initialized");
  });
})();
</script>
</body></html>
"""

apps = Apps()


@apps.tool(
    resource_uri=VIEW,
    description="Show the counter in its view.",
    annotations=ToolAnnotations(read_only_hint=True),
)
def show_counter(label: str = "clicks") -> str:
    return f"{label}: counter is {COUNTER['value']}"


apps.add_html_resource(
    VIEW, HTML, name="counter view", csp=ResourceCsp(connect_domains=["https://api.example.org"])
)

server = MCPServer(name="app-server", extensions=[apps])


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))
def increment(by: int = 1) -> str:
    """Add to the counter (it writes, so a host asks before a view may call it)."""
    COUNTER["value"] += by
    return f"counter is {COUNTER['value']}"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def peek() -> str:
    """The counter, read only."""
    return f"counter is {COUNTER['value']}"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def negotiated(ctx: Context) -> str:
    """Whether the client advertised MCP Apps."""
    return "apps" if client_supports_apps(ctx) else "no apps"


@server.tool(
    meta={"ui": {"visibility": ["app"]}}, annotations=ToolAnnotations(read_only_hint=True)
)
def view_state() -> str:
    """For the view alone (visibility "app"): never offered to a model."""
    return f"counter is {COUNTER['value']}"


@server.resource("note://readme", mime_type="text/plain")
def readme() -> str:
    return "hello from the server"


if __name__ == "__main__":
    server.run("stdio")
