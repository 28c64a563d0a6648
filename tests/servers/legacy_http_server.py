"""A streamable HTTP MCP server that speaks only the 2025 handshake, as 1.x SDK servers do.

`python legacy_http_server.py PORT`. It refuses `server/discover`, so a client falls
back to `initialize`, and then answers each request as a server-sent event -- the case
where the SDK client's default limit of 1 MiB per event used to fail big answers.
"""

from __future__ import annotations

import json
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer(name="legacy-http-server")


@server.tool()
def blob(size: int) -> str:
    """A string of `size` characters."""
    return "x" * size


class LegacyOnly:
    """ASGI wrapper answering `server/discover` with "method not found"."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(parts)
        if b'"server/discover"' in body:
            reply = {"jsonrpc": "2.0", "id": json.loads(body).get("id"),
                     "error": {"code": -32601, "message": "Method not found"}}
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": json.dumps(reply).encode()})
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


if __name__ == "__main__":
    app = LegacyOnly(server.streamable_http_app(streamable_http_path="/mcp"))
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
