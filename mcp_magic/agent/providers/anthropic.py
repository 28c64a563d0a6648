"""Anthropic Messages API (`POST {base_url}/messages`): `tool_use` / `tool_result` blocks.

Neutral → wire: the system prompt is top-level; tool results become `tool_result`
blocks in a *user* message (consecutive ones merged, since Anthropic wants user and
assistant to alternate); a tool call whose arguments were not a JSON object goes back
with `input: {}` (its tool result already told the model what was wrong).

`Turn.extra` / `Message.extra` convention: every content block of a reply that is not
`text` or `tool_use` (e.g. `thinking`, `redacted_thinking`, server tool blocks) is kept
as `{"wire": "anthropic", "index": i, "block": {...}}`, `i` being its position in the
reply. The loop copies `Turn.extra` into the assistant `Message.extra`; the next request
re-inserts each block verbatim at its position (thinking blocks must come back unchanged
before the `tool_use` they led to). Items tagged for another wire are ignored, so a
conversation can switch provider.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import httpx2

from .base import (
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

WIRE = "anthropic"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
# Anthropic error types worth another try (HTTP 529, 500, 429 and the like).
TRANSIENT_ERRORS = ("overloaded_error", "api_error", "rate_limit_error", "timeout_error")


class AnthropicProvider(HttpProvider):
    """One Anthropic model; `complete()` sends one Messages request (with retries)."""

    path = "/messages"

    def __init__(
        self, config: ProviderConfig, *, max_tokens: int = DEFAULT_MAX_TOKENS, **kwargs: Any
    ) -> None:
        super().__init__(config, **kwargs)
        self.max_tokens = max_tokens

    def build_body(self, request: Request) -> dict[str, Any]:
        return build_body(self.model, request, self.max_tokens)

    def headers(self) -> dict[str, str]:
        headers = {
            **self.config.info.headers,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
        }
        if self.config.api_key:
            headers["x-api-key"] = self.config.api_key
        return headers

    def parse(self, data: Any) -> Turn:
        return parse_message(data, self.describe)

    async def read_stream(self, response: httpx2.Response, on_text: TextSink | None) -> Turn:
        return await _StreamReader(self.describe, on_text).read(self.events(response))


# --- neutral → wire -------------------------------------------------------------------


def build_body(model: str, request: Request, max_tokens: int = DEFAULT_MAX_TOKENS) -> dict:
    """The JSON body of a Messages request."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens or max_tokens,
        "messages": wire_messages(request.messages),
    }
    system = system_text(request)
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = [wire_tool(tool) for tool in request.tools]
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.stream:
        body["stream"] = True
    return body


def system_text(request: Request) -> str:
    """`Request.system` plus any system messages in the conversation, in order."""
    parts = [request.system or ""] + [m.content for m in request.messages if m.role == "system"]
    return "\n\n".join(p for p in parts if p.strip())


def wire_tool(tool: ToolSpec) -> dict[str, Any]:
    schema = dict(tool.parameters or {})
    schema.setdefault("type", "object")
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    return {"name": tool.name, "description": tool.description or "", "input_schema": schema}


def wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Neutral messages → alternating user/assistant messages of content blocks."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "user":
            blocks = [{"type": "text", "text": message.content}] if message.content.strip() else []
            _append(out, "user", blocks)
        elif message.role == "assistant":
            _append(out, "assistant", assistant_blocks(message))
        elif message.role == "tool":
            _append(out, "user", [tool_result_block(message)])
    return out


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add blocks, merging into the previous message when it has the same role."""
    if not blocks:
        return  # Anthropic rejects empty content; skipping keeps alternation via merging
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": list(blocks)})


def assistant_blocks(message: Message) -> list[dict[str, Any]]:
    known: list[dict[str, Any]] = []
    if message.content.strip():
        known.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        known.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call.arguments)}
        )
    kept = [e for e in message.extra if e.get("wire") == WIRE and isinstance(e.get("block"), dict)]
    return interleave(known, kept, "block")


def tool_result_block(message: Message) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id or ""}
    if message.content:
        block["content"] = message.content
    if message.content.startswith("Error"):
        block["is_error"] = True  # the loop words its failures "Error ..."
    return block


def _input(arguments: str) -> dict[str, Any]:
    """The arguments object, or `{}` when the model sent something else."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- wire → neutral -------------------------------------------------------------------


def parse_message(data: Any, describe: str) -> Turn:
    """A complete (non-streamed) Messages response → Turn."""
    if not isinstance(data, dict):
        raise TransientError(f"malformed response from {describe}")
    if data.get("type") == "error":
        _raise_error(data, describe, emitted=False)
    blocks = data.get("content")
    if not isinstance(blocks, list):
        raise TransientError(f"malformed response from {describe} (no content)")
    turn = turn_from_blocks(blocks)
    turn.usage = _usage(data.get("usage") or {}, Usage())
    turn.stop_reason = data.get("stop_reason")
    turn.model = _model(data)
    return turn


def _model(message: dict[str, Any]) -> str | None:
    """The model a message says answered it."""
    model = message.get("model")
    return model[:200] if isinstance(model, str) and model.strip() else None


def turn_from_blocks(blocks: list[dict[str, Any]]) -> Turn:
    turn = Turn()
    texts: list[str] = []
    for index, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            arguments = block.get("_raw")
            if arguments is None:
                arguments = json.dumps(block.get("input") or {})
            turn.tool_calls.append(ToolCall(block.get("id", ""), block.get("name", ""), arguments))
        else:
            turn.extra.append({"wire": WIRE, "index": index, "block": block})
    turn.text = "".join(texts)
    return turn


def _usage(raw: dict[str, Any], usage: Usage) -> Usage:
    """Fold Anthropic usage counters (cumulative) into `usage`; cache reads count as input."""
    inputs = [
        raw.get(k)
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    ]
    if any(isinstance(v, int) for v in inputs):
        usage.input_tokens = sum(v for v in inputs if isinstance(v, int))
    if isinstance(raw.get("output_tokens"), int):
        usage.output_tokens = raw["output_tokens"]
    return usage


def _raise_error(data: dict[str, Any], describe: str, emitted: bool) -> NoReturn:
    """An `error` event or body: transient ones are retried unless text was already shown."""
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    kind = str(error.get("type") or "error")
    message = " ".join(str(error.get("message") or kind).split())[:300]
    transient = kind in TRANSIENT_ERRORS or "overloaded" in message.lower()
    if transient and not emitted:
        raise TransientError(f"{kind}: {message}")
    suffix = " (the stream broke after text was shown)" if emitted and transient else ""
    raise ProviderError(f"{describe}: {kind}: {message}{suffix}")


@dataclass
class _StreamReader:
    """Assembles a Turn from Messages SSE events, passing text deltas to `on_text`."""

    describe: str
    on_text: TextSink | None
    blocks: dict[int, dict[str, Any]] = field(default_factory=dict)
    partial: dict[int, list[str]] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    stop_reason: str | None = None
    emitted: bool = False
    done: bool = False

    async def read(self, events: AsyncGenerator[httpx2.ServerSentEvent, None]) -> Turn:
        try:
            async for event in events:
                self.handle(event.event, event.data)
                if self.done:
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
        if not self.done:
            self.fail("stream ended before message_stop")
        return self.turn()

    def fail(self, reason: str) -> NoReturn:
        if self.emitted:
            raise ProviderError(f"{self.describe}: {reason} (after text was shown)")
        raise TransientError(reason)

    def handle(self, name: str, raw: str) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            # The same request would get the same bytes: not worth another try.
            raise ProviderError(
                f"{self.describe}: could not parse the {name or 'stream'} event as JSON"
            ) from None
        if not isinstance(data, dict):
            return
        kind = data.get("type") or name
        handler = getattr(self, "on_" + str(kind), None)
        if handler is not None:
            handler(data)

    def on_error(self, data: dict[str, Any]) -> None:
        _raise_error(data, self.describe, self.emitted)

    def on_message_start(self, data: dict[str, Any]) -> None:
        message = data.get("message") or {}
        _usage(message.get("usage") or {}, self.usage)
        self.model = _model(message) if isinstance(message, dict) else None

    def on_content_block_start(self, data: dict[str, Any]) -> None:
        block = dict(data.get("content_block") or {})
        self.blocks[int(data.get("index", len(self.blocks)))] = block
        if block.get("type") == "text" and block.get("text"):
            self.emit(block["text"])

    def on_content_block_delta(self, data: dict[str, Any]) -> None:
        index = int(data.get("index", 0))
        block = self.blocks.setdefault(index, {"type": "text", "text": ""})
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = (block.get("text") or "") + delta.get("text", "")
            self.emit(delta.get("text", ""))
        elif kind == "input_json_delta":
            self.partial.setdefault(index, []).append(delta.get("partial_json", ""))
        else:  # thinking_delta, signature_delta, ...: grow the block's string fields
            for key, value in delta.items():
                if key != "type" and isinstance(value, str):
                    block[key] = (block.get(key) or "") + value

    def on_content_block_stop(self, data: dict[str, Any]) -> None:
        index = int(data.get("index", 0))
        block = self.blocks.get(index)
        if block is None or block.get("type") != "tool_use" or index not in self.partial:
            return
        raw = "".join(self.partial.pop(index))
        block["input"] = _input(raw)
        if raw.strip():
            block["_raw"] = raw  # the model's own text (maybe invalid JSON) for ToolCall

    def on_message_delta(self, data: dict[str, Any]) -> None:
        delta = data.get("delta") or {}
        if delta.get("stop_reason"):
            self.stop_reason = delta["stop_reason"]
        _usage(data.get("usage") or {}, self.usage)

    def on_message_stop(self, data: dict[str, Any]) -> None:
        self.done = True

    def emit(self, text: str) -> None:
        if text:
            self.emitted = True
            if self.on_text is not None:
                self.on_text(text)

    def turn(self) -> Turn:
        for index in list(self.partial):  # a tool_use block that never got its stop
            self.on_content_block_stop({"index": index})
        blocks = [self.blocks[i] for i in sorted(self.blocks)]
        turn = turn_from_blocks(blocks)
        for block in blocks:
            block.pop("_raw", None)
        turn.usage = self.usage
        turn.stop_reason = self.stop_reason
        turn.model = self.model
        return turn
