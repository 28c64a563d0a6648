"""A scripted HTTP server on 127.0.0.1 for provider tests.

Tests push the replies a model endpoint should give (JSON bodies, SSE streams, error
statuses, stalls, dropped connections); the server answers each POST with the next
one and records what it was sent, so tests can assert on the requests themselves.
Wire-format helpers (OpenAI, Anthropic, Responses) build `Reply` objects.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer.

    `chunks` are written one by one with `delay` seconds between them (streaming);
    `hold` keeps the connection open that long after the last chunk (a server that
    never closes its stream); `stall` waits before answering at all; `drop` closes the
    connection without a reply.
    """

    status: int = 200
    body: bytes | str | dict | list | None = None
    chunks: Iterable[bytes | str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stall: float = 0.0
    drop: bool = False
    content_type: str | None = None
    hold: float = 0.0


def json_reply(body: Any, status: int = 200, **kwargs: Any) -> Reply:
    return Reply(status=status, body=body, **kwargs)


def sse_reply(events: Iterable[Any], done: bool = False, delay: float = 0.0, **kw: Any) -> Reply:
    """An SSE stream; each event is a dict (sent as `data: json`) or (event, dict)."""

    def frames() -> Iterable[str]:
        for event in events:
            if isinstance(event, tuple):
                name, data = event
                yield f"event: {name}\ndata: {json.dumps(data)}\n\n"
            elif isinstance(event, str):
                yield f"data: {event}\n\n"
            else:
                yield f"data: {json.dumps(event)}\n\n"
        if done:
            yield "data: [DONE]\n\n"

    return Reply(chunks=frames(), delay=delay, content_type="text/event-stream", **kw)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class ScriptedServer:
    """Start with `with ScriptedServer() as server:`; `server.url` is its base URL.

    With a `responder`, requests left without a scripted reply are answered by it: a
    server whose behaviour depends on what it is sent.
    """

    def __init__(self, responder: Callable[[Recorded], Reply] | None = None) -> None:
        self.responder = responder
        self.replies: list[Reply] = []
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            if not self.replies and self.responder is not None:
                return self.responder(recorded)
            if not self.replies:
                return json_reply({"error": {"message": "test script exhausted"}}, status=500)
            return self.replies.pop(0)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out without a 40 ms wait

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._answer()

            def do_POST(self) -> None:  # noqa: N802
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                reply = server._next(
                    Recorded(self.command, self.path, dict(self.headers.items()), body)
                )
                if reply.stall:
                    time.sleep(reply.stall)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._write(reply)

            def _write(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if reply.chunks is not None:
                    self.send_header("Content-Type", reply.content_type or "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for chunk in reply.chunks:
                        data = chunk.encode() if isinstance(chunk, str) else chunk
                        self.wfile.write(data)
                        self.wfile.flush()
                        if reply.delay:
                            time.sleep(reply.delay)
                    if reply.hold:
                        time.sleep(reply.hold)
                    self.close_connection = True
                    return
                if isinstance(reply.body, (dict, list)):
                    data = json.dumps(reply.body).encode()
                    content_type = reply.content_type or "application/json"
                elif isinstance(reply.body, str):
                    data = reply.body.encode()
                    content_type = reply.content_type or "application/json"
                else:
                    data = reply.body or b""
                    content_type = reply.content_type or "application/octet-stream"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
