"""Serving over HTTP: exposed means protected.

Every HTTP request passes two checks before it reaches the MCP transport:

- DNS-rebinding protection: the ``Host`` header must name an allowed host (loopback names,
  the machine's own name, the address bound to, and whatever ``--allowed-hosts`` adds),
  and an ``Origin`` header, when a browser sends one, must be one of those hosts too.
  ``--allowed-hosts '*'`` turns the check off (behind a proxy that rewrites ``Host``).
- A bearer token, required whenever the server listens on anything but loopback. It
  comes from ``MCP_MAGIC_SERVER_TOKEN``, or is generated and printed once to stderr.
  With the variable set, a loopback server requires it too.

A big answer leaves serialized once (see `install_answer_writers`) and goes to the socket
as it is serialized, in slices, so neither the SDK nor the HTTP stack copies it whole.

Idle streamable-HTTP sessions are closed after ``--session-idle-timeout`` seconds and at
most ``--max-sessions`` are open at once, so abandoned clients cannot pile up memory.
"""

import hmac
import ipaddress
import os
import secrets
import socket
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .common import shorten
from .deferred import WRITER_EXPANDS

BODY_SLICE = 1 << 20
"""Response bodies larger than this go to the HTTP server in slices of this size: uvicorn
(h11) joins each body message into new bytes and asyncio buffers what the socket does not
take at once -- two more copies of a whole answer without slicing."""

TOKEN_VARIABLE = "MCP_MAGIC_SERVER_TOKEN"
DEFAULT_SESSION_IDLE_TIMEOUT = 600.0
DEFAULT_MAX_SESSIONS = 1000
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(host: str) -> str:
    """The name in a Host header or host option, lower case, without a port; IPv6 addresses
    in brackets ('[::1]')."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1] or [::1]:8000
        return host[:host.find("]") + 1] if "]" in host else host
    if host.count(":") > 1:
        try:
            return f"[{ipaddress.IPv6Address(host)}]"
        except ValueError:
            return host
    return host.split(":", 1)[0]


@dataclass(frozen=True)
class Exposure:
    """Who may talk to the HTTP server: allowed Host names (None: any) and the token."""

    hosts: tuple[str, ...] | None
    token: str | None = field(default=None, repr=False)

    def host_allowed(self, host: str | None) -> bool:
        if self.hosts is None:
            return True
        return bool(host) and _host_name(host or "") in self.hosts

    def origin_allowed(self, origin: str | None) -> bool:
        if not origin or self.hosts is None:
            return True
        scheme, _, rest = origin.lower().partition("://")
        return scheme in ("http", "https") and self.host_allowed(rest.split("/")[0])

    def token_accepted(self, authorization: str | None) -> bool:
        if self.token is None:
            return True
        scheme, _, given = (authorization or "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token.encode())


def allowed_hosts(bind_host: str, extra: Iterable[str]) -> tuple[str, ...] | None:
    """Loopback names, this machine's names, the bound address and `extra` (None for '*')."""
    extra = [h for item in extra for h in item.split(",") if h.strip()]
    if any(h.strip() == "*" for h in extra):
        return None
    hosts = list(_LOOPBACK_NAMES)
    if not is_loopback(bind_host):
        hosts.append(socket.gethostname())
        if bind_host not in ("0.0.0.0", "::", ""):
            hosts.append(bind_host)
    hosts += extra
    names: list[str] = []
    for host in hosts:
        name = _host_name(host)
        if name and name not in names:
            names.append(name)
    return tuple(names)


def choose_token(bind_host: str) -> tuple[str | None, bool]:
    """The bearer token to require, and whether it was generated here (to be printed)."""
    given = os.environ.get(TOKEN_VARIABLE, "").strip()
    if given:
        return given, False
    if is_loopback(bind_host):
        return None, False
    return secrets.token_urlsafe(32), True


class Guarded:
    """ASGI middleware: Host and Origin checks, then the bearer token, for every request."""

    def __init__(self, app: ASGIApp, exposure: Exposure) -> None:
        self.app = app
        self.exposure = exposure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        refusal = None
        if not self.exposure.host_allowed(host):
            refusal = PlainTextResponse(
                f"Host {shorten(host or '')} is not allowed; start the server with "
                "--allowed-hosts NAME to accept it", status_code=421)
        elif not self.exposure.origin_allowed(headers.get("origin")):
            refusal = PlainTextResponse("Origin not allowed (DNS-rebinding protection)",
                                        status_code=403)
        elif not self.exposure.token_accepted(headers.get("authorization")):
            refusal = PlainTextResponse(
                "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                status_code=401, headers={"WWW-Authenticate": 'Bearer realm="mcp_magic"'})
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, _sliced(send))


class ChunkedBody:
    """A response body given as chunks (an SSE event with a big answer in it): `_sliced`
    sends them one by one, so the event never exists whole."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks


def _sliced(send: Send) -> Send:
    """`send`, with a large response body passed on in `BODY_SLICE` pieces (each awaited,
    so uvicorn's flow control holds the next one back while the socket is full), and a
    `ChunkedBody` passed on chunk by chunk."""

    async def send_sliced(message: dict) -> None:  # type: ignore[type-arg]
        body = message.get("body") if message.get("type") == "http.response.body" else None
        more = message.get("more_body", False)
        if isinstance(body, ChunkedBody):
            for piece in _gathered(body.chunks):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": more})
            return
        if body is None or len(body) <= BODY_SLICE:
            await send(message)
            return
        view = memoryview(body).cast("B")
        for start in range(0, len(view), BODY_SLICE):
            last = start + BODY_SLICE >= len(view)
            await send({"type": "http.response.body", "body": view[start:start + BODY_SLICE],
                        "more_body": more or not last})

    return send_sliced


def _gathered(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks regrouped into pieces of about `BODY_SLICE` bytes (small ones joined)."""
    pending = bytearray()
    for chunk in chunks:
        if len(pending) + len(chunk) <= BODY_SLICE:
            pending += chunk
            continue
        if pending:
            yield bytes(pending)
            pending = bytearray()
        if len(chunk) >= BODY_SLICE:
            yield chunk
        else:
            pending += chunk
    if pending:
        yield bytes(pending)


def install_answer_writers() -> bool:
    """Serialize JSON-RPC answers once on the streamable-HTTP (2026-07-28) path.

    The SDK's per-request entry (`mcp.server._streamable_http_modern`) writes a reply as
    `json.dumps(msg.model_dump(mode="json"))` wrapped in an f-string and encoded: the
    answer as a str, again with its frame, and again as bytes. Its two writers are
    replaced here for results (errors keep the SDK's, they are small) by one
    serialization (`message_chunks`, bytes, big parts in chunks) that goes to the socket
    as it is made: a big answer is never whole in memory, and its deferred parts
    (server/deferred.py) are written straight from their bytes. Requests the entry serves
    run with `WRITER_EXPANDS` set, so tools may defer. The SSE writer returns a
    `ChunkedBody` that only `Guarded` (`_sliced`) knows how to send: install this only
    under `Guarded`, as `serve_http` does.
    The SDK gives no hook for this, so the module's functions are swapped; when they are
    not there (another SDK version) nothing changes. Where the SDK still copies: the
    handshake-era session transport (`mcp.server.streamable_http`, older clients) keeps
    `model_dump_json` and sse-starlette's framing (about four copies), and SSE (`--transport
    sse`) is the SDK's as is.
    """
    try:
        from mcp.server import _streamable_http_modern as modern
        from mcp.server import streamable_http_manager as manager
        from mcp_types import JSONRPCResponse
        from starlette.responses import Response
    except ImportError:
        return False
    write, sse_event = getattr(modern, "_write", None), getattr(modern, "_sse_event", None)
    entry = getattr(manager, "handle_modern_request", None)
    if write is None or sse_event is None or getattr(write, "_mcp_magic", False):
        return False
    from .stdio import message_chunks

    async def write_once(msg: Any, scope: Scope, receive: Receive, send: Send) -> None:
        if not isinstance(msg, JSONRPCResponse):
            await write(msg, scope, receive, send)
            return
        chunks = message_chunks(msg, end=b"")
        body = bytearray()
        for chunk in chunks:
            body += chunk
            if len(body) > BODY_SLICE:
                break
        else:  # small: one body with its length, as before
            await Response(memoryview(body), status_code=200,
                           media_type="application/json")(scope, receive, send)
            return
        # Big: streamed as it is serialized (chunked transfer encoding, no length known).
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": bytes(body), "more_body": True})
        del body
        for piece in _gathered(chunks):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def sse_event_once(msg: Any) -> Any:
        if not isinstance(msg, JSONRPCResponse):
            return sse_event(msg)

        def event() -> Iterator[bytes]:
            yield b"event: message\r\ndata: "
            yield from message_chunks(msg, end=b"\r\n\r\n")

        return ChunkedBody(event())

    write_once._mcp_magic = True  # type: ignore[attr-defined]
    modern._write = write_once
    modern._sse_event = sse_event_once
    if entry is not None:
        async def expanding_entry(*args: Any, **kwargs: Any) -> Any:
            expands = WRITER_EXPANDS.set(True)  # the request's tasks inherit it
            try:
                return await entry(*args, **kwargs)
            finally:
                WRITER_EXPANDS.reset(expands)

        manager.handle_modern_request = expanding_entry
    return True


def serve_http(server: MCPServer, transport: str, host: str, port: int,
               extra_hosts: Sequence[str], session_idle_timeout: float,
               max_sessions: int) -> None:
    """Run `server` over streamable HTTP (at /mcp) or SSE (at /sse) until interrupted."""
    import anyio
    import uvicorn

    install_answer_writers()
    token, generated = choose_token(host)
    exposure = Exposure(hosts=allowed_hosts(host, extra_hosts), token=token)
    # `Guarded` checks Host and Origin for every path (case-insensitively, with a message
    # that says what to do); the SDK's own check would only repeat it.
    checked = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    if transport == "http":
        app = server.streamable_http_app(
            streamable_http_path="/mcp", session_idle_timeout=session_idle_timeout,
            max_sessions=max_sessions, transport_security=checked,
            host=host)
        path = "/mcp"
    else:
        app = server.sse_app(sse_path="/sse", transport_security=checked,
                             host=host)
        path = "/sse"
    shown = _host_name(host)
    say = f"mcp_magic data server: http://{shown}:{port}{path}"
    if exposure.hosts is None:
        say += "; any Host header is accepted (--allowed-hosts '*')"
    else:
        say += f"; accepted Host names: {', '.join(exposure.hosts)} (more: --allowed-hosts)"
    print(say, file=sys.stderr, flush=True)
    if generated:
        # The one place a secret is shown: the person starting the server needs it.
        print(f"mcp_magic data server: listening beyond loopback, so clients must send "
              f"'Authorization: Bearer {token}' (generated now; set {TOKEN_VARIABLE} to "
              "choose the token)", file=sys.stderr, flush=True)
    elif token:
        print(f"mcp_magic data server: clients must send the bearer token from "
              f"{TOKEN_VARIABLE}", file=sys.stderr, flush=True)
    config = uvicorn.Config(Guarded(app, exposure), host=host, port=port, log_level="info")
    anyio.run(uvicorn.Server(config).serve)
