"""The Responses API (`POST {base_url}/responses`) with hosted MCP tools: OpenAI, DashScope.

Besides ordinary function tools, a remote MCP server the provider can reach itself is
passed as `{"type": "mcp", "server_label", "server_url", "headers", ...}`; the provider
lists its tools and runs the calls, and reports them as `mcp_call` output items, which
come back as `Turn.hosted_calls` for display. The caller chooses which servers may be
hosted: the provider's limits are in `ProviderInfo` (DashScope: at most 10 servers, SSE
transport only, so the caller must pass SSE URLs there; `max_hosted_servers` is checked
here, the transport is not, since the URL alone does not tell it).

`Turn.extra` / `Message.extra` convention: every output item that is neither a
`message` nor a `function_call` (`mcp_call`, `mcp_list_tools`, `reasoning`, ...) is kept
as `{"wire": "responses", "index": i, "item": {...}}`, `i` being its position in
`output`. The loop copies `Turn.extra` into the assistant `Message.extra`; the next
request puts each item back into `input` verbatim at its position (so the model sees
what its hosted calls returned, and a reasoning item still precedes its function call).
Drop the entries from `Message.extra` to not send them; `replay_items=False` does that
for every request. Items tagged for another wire are ignored.

DashScope: some versions of its docs say `instructions` is ignored, so for DashScope the
system prompt goes as a first `{"role": "system"}` input message instead
(`system_as_input`); hosted servers carry `server_protocol: "sse"` when the provider
only takes SSE servers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import httpx2

from .base import (
    HostedCall,
    HostedMcpServer,
    Message,
    ProviderError,
    Request,
    TextSink,
    ToolCall,
    ToolSpec,
    Turn,
    Usage,
    interleave,
)
from .http import (
    HttpProvider,
    TransientError,
)

if TYPE_CHECKING:
    from . import ProviderConfig

WIRE = "responses"
# Words in an error code or message that mark a failure worth another try.
TRANSIENT_MARKS = (
    "overload",
    "server_error",
    "rate_limit",
    "internal",
    "throttl",
    "timeout",
    "unavailable",
)


class ResponsesProvider(HttpProvider):
    """One model behind a Responses API; hosted MCP servers ride along as `mcp` tools."""

    path = "/responses"

    def __init__(
        self,
        config: ProviderConfig,
        *,
        system_as_input: bool | None = None,
        replay_items: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(config, **kwargs)
        if system_as_input is None:
            system_as_input = config.provider.startswith("dashscope")
        self.system_as_input = system_as_input
        self.replay_items = replay_items

    def build_body(self, request: Request) -> dict[str, Any]:
        self._check_hosted(request.hosted_servers)
        return build_body(
            self.model,
            request,
            system_as_input=self.system_as_input,
            replay_items=self.replay_items,
            sse_only=tuple(self.config.info.hosted_transports) == ("sse",),
        )

    def secrets(self, request: Request) -> list[str]:
        hosted = [value for server in request.hosted_servers for value in server.headers.values()]
        return self.config.secrets() + hosted

    def _check_hosted(self, servers: list[HostedMcpServer]) -> None:
        limit = self.config.info.max_hosted_servers
        if limit is not None and len(servers) > limit:
            raise ProviderError(
                f"{self.name} accepts at most {limit} hosted MCP servers per request, "
                f"got {len(servers)}: allow fewer servers for this cell"
            )

    def headers(self) -> dict[str, str]:
        headers = {**self.config.info.headers, "content-type": "application/json"}
        if self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def parse(self, data: Any) -> Turn:
        return parse_response(data, self.describe)

    async def read_stream(self, response: httpx2.Response, on_text: TextSink | None) -> Turn:
        return await _StreamReader(self.describe, on_text).read(self.events(response))


# --- neutral → wire -------------------------------------------------------------------


def build_body(
    model: str,
    request: Request,
    *,
    system_as_input: bool = False,
    replay_items: bool = True,
    sse_only: bool = False,
) -> dict[str, Any]:
    """The JSON body of a `/responses` request."""
    items = wire_input(request.messages, replay_items)
    system = system_text(request)
    body: dict[str, Any] = {"model": model, "input": items}
    if system and system_as_input:
        items.insert(0, {"role": "system", "content": system})
    elif system:
        body["instructions"] = system
    tools = [function_tool(tool) for tool in request.tools]
    tools += [mcp_tool(server, sse_only) for server in request.hosted_servers]
    if tools:
        body["tools"] = tools
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens:
        body["max_output_tokens"] = request.max_tokens
    body["stream"] = bool(request.stream)
    return body


def system_text(request: Request) -> str:
    """`Request.system` plus any system messages in the conversation, in order."""
    parts = [request.system or ""] + [m.content for m in request.messages if m.role == "system"]
    return "\n\n".join(p for p in parts if p.strip())


def function_tool(tool: ToolSpec) -> dict[str, Any]:
    # `strict` defaults to true on OpenAI's Responses API, which rejects ordinary
    # JSON Schemas (optional properties, no additionalProperties: false) as MCP has them.
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description or "",
        "parameters": tool.parameters or {"type": "object", "properties": {}},
        "strict": False,
    }


def mcp_tool(server: HostedMcpServer, sse_only: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "mcp", "server_label": server.label}
    if sse_only:
        entry["server_protocol"] = "sse"
    if server.description:
        entry["server_description"] = server.description
    entry["server_url"] = server.url
    if server.headers:
        entry["headers"] = dict(server.headers)
    entry["require_approval"] = "never"
    if server.allowed_tools is not None:
        entry["allowed_tools"] = list(server.allowed_tools)
    return entry


def wire_input(messages: list[Message], replay_items: bool = True) -> list[dict[str, Any]]:
    """Neutral messages → `input` items (system messages go to `system_text`)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "user":
            items.append({"role": "user", "content": message.content})
        elif message.role == "assistant":
            items.extend(assistant_items(message, replay_items))
        elif message.role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id or "",
                    "output": message.content,
                }
            )
    return items


def assistant_items(message: Message, replay_items: bool = True) -> list[dict[str, Any]]:
    known: list[dict[str, Any]] = []
    if message.content:
        known.append({"role": "assistant", "content": message.content})
    for call in message.tool_calls:
        known.append(
            {
                "type": "function_call",
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments,
            }
        )
    kept = []
    if replay_items:
        kept = [
            e for e in message.extra if e.get("wire") == WIRE and isinstance(e.get("item"), dict)
        ]
    return interleave(known, kept, "item")


# --- wire → neutral -------------------------------------------------------------------


def parse_response(data: Any, describe: str, emitted: bool = False) -> Turn:
    """A complete response object (the body, or `response.completed`'s) → Turn."""
    if not isinstance(data, dict):
        raise TransientError(f"malformed response from {describe}")
    if data.get("status") == "failed" or (data.get("error") and not data.get("output")):
        _raise_error(data.get("error") or {}, describe, emitted)
    output = data.get("output")
    if not isinstance(output, list):
        raise TransientError(f"malformed response from {describe} (no output)")
    turn = turn_from_items(output)
    turn.usage = parse_usage(data.get("usage"))
    details = data.get("incomplete_details") or {}
    turn.stop_reason = details.get("reason") or data.get("status")
    turn.model = _model(data)
    return turn


def turn_from_items(output: list[Any]) -> Turn:
    turn = Turn()
    texts: list[str] = []
    for index, item in enumerate(output):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            texts.append(message_text(item))
        elif kind == "function_call":
            call_id = item.get("call_id") or item.get("id") or ""
            turn.tool_calls.append(
                ToolCall(call_id, item.get("name", ""), _arguments(item.get("arguments")))
            )
        else:
            if kind == "mcp_call":
                turn.hosted_calls.append(hosted_call(item))
            turn.extra.append({"wire": WIRE, "index": index, "item": item})
    turn.text = "".join(texts)
    return turn


def message_text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if isinstance(part, dict) and part.get("type") in ("output_text", "text"):
            parts.append(part.get("text") or "")
        elif isinstance(part, dict) and part.get("type") == "refusal":
            parts.append(part.get("refusal") or "")
    return "".join(parts)


def hosted_call(item: dict[str, Any]) -> HostedCall:
    error = item.get("error")
    if isinstance(error, dict):
        error = error.get("message") or json.dumps(error)
    output = item.get("output")
    if output is not None and not isinstance(output, str):
        output = json.dumps(output)
    return HostedCall(
        server=item.get("server_label", ""),
        tool=item.get("name", ""),
        arguments=_arguments(item.get("arguments")),
        output=output,
        error=str(error) if error else None,
    )


def _model(response: dict[str, Any]) -> str | None:
    """The model a response says answered it."""
    model = response.get("model")
    return model[:200] if isinstance(model, str) and model.strip() else None


def parse_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
    )


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value if value is not None else {})


def _raise_error(error: Any, describe: str, emitted: bool) -> NoReturn:
    """`response.failed` / `error` event / failed body: transient ones are retried once
    nothing has been shown yet."""
    if isinstance(error, dict):
        code = str(error.get("code") or error.get("type") or "error")
        message = str(error.get("message") or code)
    else:
        code, message = "error", str(error or "the response failed")
    message = " ".join(message.split())[:300]
    text = f"{code} {message}".lower()
    transient = any(mark in text for mark in TRANSIENT_MARKS)
    if transient and not emitted:
        raise TransientError(f"{code}: {message}")
    suffix = " (the stream broke after text was shown)" if emitted and transient else ""
    raise ProviderError(f"{describe}: {code}: {message}{suffix}")


@dataclass
class _StreamReader:
    """Assembles a Turn from Responses SSE events, passing text deltas to `on_text`."""

    describe: str
    on_text: TextSink | None
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    deltas: list[str] = field(default_factory=list)
    final: dict[str, Any] | None = None
    emitted: bool = False

    async def read(self, events: AsyncGenerator[httpx2.ServerSentEvent, None]) -> Turn:
        try:
            async for event in events:
                self.handle(event.event, event.data)
                if self.final is not None:
                    break
        except httpx2.TransportError as exc:
            if self.emitted:
                raise ProviderError(
                    f"{self.describe}: stream interrupted after text was shown "
                    f"({type(exc).__name__})"
                ) from None
            raise
        finally:
            await events.aclose()
        if self.final is None:
            self.fail("stream ended before response.completed")
        return self.turn()

    def fail(self, reason: str) -> NoReturn:
        if self.emitted:
            raise ProviderError(f"{self.describe}: {reason} (after text was shown)")
        raise TransientError(reason)

    def handle(self, name: str, raw: str) -> None:
        if raw.strip() == "[DONE]":
            return
        try:
            data = json.loads(raw)
        except ValueError:
            # The same request would get the same bytes: not worth another try.
            raise ProviderError(
                f"{self.describe}: could not parse the {name or 'stream'} event as JSON"
            ) from None
        if not isinstance(data, dict):
            return
        kind = str(data.get("type") or name)
        if kind == "response.output_text.delta":
            self.emit(str(data.get("delta") or ""))
        elif kind == "response.output_item.done" and isinstance(data.get("item"), dict):
            self.items[int(data.get("output_index", len(self.items)))] = data["item"]
        elif kind in ("response.completed", "response.incomplete"):
            response = data.get("response")
            self.final = response if isinstance(response, dict) else {}
        elif kind == "response.failed":
            response = data.get("response") or {}
            _raise_error(response.get("error") or data.get("error"), self.describe, self.emitted)
        elif kind == "error":
            _raise_error(data.get("error") or data, self.describe, self.emitted)

    def emit(self, text: str) -> None:
        if text:
            self.emitted = True
            self.deltas.append(text)
            if self.on_text is not None:
                self.on_text(text)

    def turn(self) -> Turn:
        final = self.final or {}
        output = final.get("output")
        if not isinstance(output, list) or not output:
            output = [self.items[i] for i in sorted(self.items)]  # some servers leave it empty
        turn = turn_from_items(output)
        if not turn.text and self.deltas:
            turn.text = "".join(self.deltas)
        turn.usage = parse_usage(final.get("usage"))
        details = final.get("incomplete_details") or {}
        turn.stop_reason = details.get("reason") or final.get("status")
        turn.model = _model(final)
        return turn
