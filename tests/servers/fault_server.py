"""A small MCP server for tests: slow calls, progress, crashes, header checks.

Run over stdio (default) or streamable HTTP: `python fault_server.py --http PORT`.
`FAULT_SERVER_EVENTS` names a file where the server appends what happened
(`start sleep`, `cancelled sleep`, ...), so tests can see server-side cancellation.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

server = MCPServer(
    name="fault-server",
    instructions="Test server: sleeps, echoes, reports progress and crashes on demand.",
)


def record(event: str) -> None:
    path = os.environ.get("FAULT_SERVER_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(f"{event}\n")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
async def sleep(seconds: float) -> str:
    """Sleep for a number of seconds, then say so."""
    record("start sleep")
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        record("cancelled sleep")
        raise
    record("finished sleep")
    return f"slept {seconds}"


@server.tool()
async def progress(steps: int, ctx: Context) -> str:
    """Report progress `steps` times, 0.05 s apart."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await anyio.sleep(0.05)
    return f"done {steps}"


@server.tool(annotations=ToolAnnotations(destructiveHint=True, readOnlyHint=False))
async def crash(after: float = 0.2) -> str:
    """Exit the server process abruptly after a delay, mid-call."""
    print("fault-server: crashing on purpose", file=sys.stderr, flush=True)
    await anyio.sleep(after)
    os._exit(3)


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def whoami(ctx: Context) -> str:
    """The Authorization header of the HTTP request (HTTP only), for header tests."""
    request = getattr(ctx.request_context, "request", None)
    headers = getattr(request, "headers", None) or {}
    return headers.get("authorization", "<none>")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def rows(count: int = 3) -> list[dict]:
    """Return `count` records (a table as structured content)."""
    return [{"id": i, "name": f"row {i}", "value": i * 1.5} for i in range(count)]


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def getenv(name: str) -> str:
    """The value of an environment variable in the server process."""
    return os.environ.get(name, "<unset>")


@server.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Register a new tool `name` that answers its own name (tools change at run time)."""

    def answer() -> str:
        return f"I am {name}"

    server.add_tool(answer, name=name, description=f"Added at run time: {name}")
    await ctx.notify_tools_changed()
    return f"added {name}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, help="serve streamable HTTP on this port")
    parser.add_argument("--sse", type=int, help="serve SSE on this port")
    args = parser.parse_args()
    print(f"fault-server starting at {time.time():.0f}", file=sys.stderr, flush=True)
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    elif args.sse:
        server.run("sse", host="127.0.0.1", port=args.sse)
    else:
        server.run()


if __name__ == "__main__":
    main()
