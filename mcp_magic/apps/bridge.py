"""The kernel's side of a view's bridge: what a view asks of the MCP session.

In the page, the official ext-apps ``AppBridge`` speaks the MCP Apps protocol with the
sandboxed view; what needs the server (``tools/call``, ``resources/read``) it forwards to
the kernel as a widget message, and `ViewBridge.handle` answers it through the
`SessionManager`, under the same approval rule as the model's calls: a tool that does not
say it only reads (``readOnlyHint``) runs only after the user allows it in the cell.

Messages from the page::

    {"type": "request", "id": ID, "method": "tools/call", "params": {"name", "arguments"}}
    {"type": "request", "id": ID, "method": "resources/read", "params": {"uri"}}
    {"type": "approval", "id": ID, "allow": true|false}
    {"type": "note", "text": "..."}            # something the page noticed (flood, size)

Messages to the page::

    {"type": "response", "id": ID, "result": {...}} | {..., "error": {"code", "message"}}
    {"type": "ask", "id": ID, "text": "..."}  # show Allow / Deny

Nothing a view sends may break the kernel: every problem becomes a JSON-RPC error for the
view and one line in the cell (`note`). Pure: no IPython, no widgets.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from . import read_only, visible_to_app

Approval = Literal["never", "writes", "always"]

MESSAGE_LIMIT = 1_000_000  # characters of one request's params
RESULT_LIMIT = 5_000_000  # characters of a result sent back to a view
RATE_WINDOW = 10.0  # seconds
RATE_LIMIT = 60  # requests per window
PENDING_LIMIT = 5  # questions waiting for the user at once
NOTE_LIMIT = 300  # characters of one note line

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
DECLINED = -32000


class _Refusal(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dump_result(result: Any) -> dict[str, Any]:
    """An SDK `CallToolResult` (or a dict) as the JSON a view expects (camelCase)."""
    if isinstance(result, dict):
        return result
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


class ViewBridge:
    """Answers one view's requests through the session of the server that owns the view."""

    def __init__(
        self,
        manager: Any,
        server: str,
        send: Callable[[dict[str, Any]], None],
        note: Callable[[str], None],
        approval: Approval = "writes",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.manager = manager
        self.server = server
        self.send = send
        self._note = note
        self.approval = approval
        self.clock = clock
        self.pending: dict[Any, tuple[str, dict[str, Any]]] = {}
        self._recent: deque[float] = deque()
        self._flooded = False
        self.closed = False

    # -- entry point -------------------------------------------------------

    def handle(self, message: Any) -> None:
        """One message from the page; never raises."""
        try:
            self._handle(message)
        except Exception as exc:  # a bug here must not reach the kernel's comm handler
            self.note(f"the view's request failed: {type(exc).__name__}: {exc}")

    def note(self, text: str) -> None:
        text = " ".join(str(text).split())
        self._note(text if len(text) <= NOTE_LIMIT else text[: NOTE_LIMIT - 1] + "…")

    def _handle(self, message: Any) -> None:
        if self.closed or not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "note":
            self.note(f"view: {_short(message.get('text', ''), NOTE_LIMIT)}")
        elif kind == "approval":
            self._answer(message.get("id"), message.get("allow") is True)
        elif kind == "request":
            self._request(message.get("id"), message.get("method"), message.get("params"))

    # -- requests ------------------------------------------------------------

    def _request(self, request_id: Any, method: Any, params: Any) -> None:
        if not isinstance(request_id, (str, int)) or isinstance(request_id, bool):
            return  # nothing to answer to
        try:
            self._check_rate()
            if not isinstance(params, dict):
                raise _Refusal(INVALID_PARAMS, f"{method}: params must be an object")
            if len(json.dumps(params, default=str)) > MESSAGE_LIMIT:
                raise _Refusal(INVALID_REQUEST, f"request over {MESSAGE_LIMIT:,} characters")
            if method == "tools/call":
                self._call(request_id, params)
            elif method == "resources/read":
                self._reply(request_id, self._read(params))
            else:
                raise _Refusal(METHOD_NOT_FOUND, f"the host does not answer {_short(method, 60)}")
        except _Refusal as refusal:
            self._fail(request_id, refusal.code, str(refusal))

    def _check_rate(self) -> None:
        now = self.clock()
        while self._recent and now - self._recent[0] > RATE_WINDOW:
            self._recent.popleft()
        if len(self._recent) >= RATE_LIMIT:
            if not self._flooded:
                self._flooded = True
                self.note(f"the view sent over {RATE_LIMIT} requests in {RATE_WINDOW:g} s;"
                          " the rest are refused")
            raise _Refusal(INVALID_REQUEST, "too many requests")
        self._flooded = False
        self._recent.append(now)

    def _call(self, request_id: Any, params: dict[str, Any]) -> None:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise _Refusal(INVALID_PARAMS, "tools/call needs a tool name and an arguments object")
        tool = self._tool(name)
        if self.approval == "always" or (self.approval == "writes" and not read_only(tool)):
            if len(self.pending) >= PENDING_LIMIT:
                raise _Refusal(DECLINED, "too many calls are waiting for the user")
            self.pending[request_id] = (name, arguments)
            why = "" if read_only(tool) else ", which may change data"
            self.send({
                "type": "ask",
                "id": request_id,
                "text": f"The view wants to call {self.server}.{name} "
                        f"{_short(arguments)}{why}. Allow?",
            })
            return
        self._run(request_id, name, arguments)

    def _tool(self, name: str) -> Any:
        from ..host.sessions import McpError

        try:
            tool = self.manager.tool(self.server, name)
        except McpError:
            self.note(f"the view asked for {self.server}.{_short(name, 60)}, "
                      f"which server {self.server!r} does not have")
            raise _Refusal(INVALID_PARAMS, f"unknown tool {_short(name, 60)}") from None
        if not visible_to_app(tool):
            raise _Refusal(INVALID_PARAMS, f"{name} is not offered to views")
        return tool

    def _answer(self, request_id: Any, allow: bool) -> None:
        try:
            name, arguments = self.pending.pop(request_id)
        except (KeyError, TypeError):
            return  # answered already, or never asked
        if not allow:
            self._fail(request_id, DECLINED, f"the user declined the call to {name}")
            return
        self._run(request_id, name, arguments)

    def _run(self, request_id: Any, name: str, arguments: dict[str, Any]) -> None:
        from ..host.sessions import McpError

        try:
            result = self.manager.call_tool(self.server, name, arguments)
        except McpError as exc:
            self.note(f"{self.server}.{name} from the view: {exc}")
            self._fail(request_id, INTERNAL_ERROR, str(exc))
            return
        except KeyboardInterrupt:
            self._fail(request_id, INTERNAL_ERROR, "interrupted")
            return
        self._reply(request_id, dump_result(result))

    def _read(self, params: dict[str, Any]) -> dict[str, Any]:
        from ..host.sessions import McpError

        uri = params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise _Refusal(INVALID_PARAMS, "resources/read needs a uri")
        try:
            answer = self.manager.request(self.server, lambda client: client.read_resource(uri))
        except McpError as exc:
            raise _Refusal(INTERNAL_ERROR, f"reading {_short(uri, 80)}: {exc}") from None
        except KeyboardInterrupt:
            raise _Refusal(INTERNAL_ERROR, "interrupted") from None
        return dump_result(answer)

    # -- answers -------------------------------------------------------------

    def _reply(self, request_id: Any, result: dict[str, Any]) -> None:
        size = len(json.dumps(result, default=str))
        if size > RESULT_LIMIT:
            self.note(f"an answer for the view was {size:,} characters; not sent")
            self._fail(request_id, INTERNAL_ERROR, f"answer over {RESULT_LIMIT:,} characters")
            return
        self.send({"type": "response", "id": request_id, "result": result})

    def _fail(self, request_id: Any, code: int, message: str) -> None:
        self.send({"type": "response", "id": request_id,
                   "error": {"code": code, "message": message}})

    def close(self) -> None:
        """The view is gone: questions still open are declined, later messages ignored."""
        for request_id in list(self.pending):
            self._answer(request_id, False)
        self.closed = True
