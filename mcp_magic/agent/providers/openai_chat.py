"""OpenAI chat completions (`POST {base_url}/chat/completions`), the common wire format.

One implementation serves OpenRouter, OpenAI, Ollama (`/v1`), Gemini's and DashScope's
OpenAI-compatible endpoints, vLLM, LM Studio and llama.cpp's server. Servers differ in
small ways (tool-call fragments without `index`, ids only on the first fragment,
errors inside a 200 stream, JSON answers to streaming requests); the parsing here
accepts all of them.

What local servers need, sent to every endpoint since it costs nothing elsewhere:
`tool_choice: "auto"` whenever tools are offered (llama-cpp-python ignores the tools
without it; "auto" is OpenAI's default then anyway), and `""` rather than `null` as the
content of an assistant message that called tools (llama-cpp-python answers 500 to
`null`). A stream that ends with no text, no tool call and no finish reason (what
llama-cpp-python sends when streaming with `tool_choice`) is a failed stream: the
request is sent again without streaming, once, and later requests of the same provider
do not stream either.

A choice carrying `finish_reason` ends the reply: the usage chunk that follows is
awaited briefly, `[DONE]` is not (some servers keep the connection open).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import httpx2

from . import env_name
from .base import Message, ProviderError, Request, TextSink, ToolCall, ToolSpec, Turn, Usage
from .http import (
    DEFAULT_IDLE_TIMEOUT,
    USAGE_GRACE,
    RetryPolicy,
    TransientError,
    check_response,
    html_error,
    is_html,
    is_local,
    is_refused,
    is_transient,
    make_client,
    parse_json,
    refused_error,
    request_timeout,
    sse_events,
    with_retries,
)

if TYPE_CHECKING:
    from . import ProviderConfig

TOOL_CALL_EXTRA = "openai-chat:tool_call_extra"
"""`Turn.extra` kind carrying a tool call's `extra_content` (Gemini's thought signature),
which must go back verbatim on the assistant message that made the call."""

TRANSIENT_CODES = {
    "server_error",
    "internal_error",
    "rate_limit",
    "rate_limit_exceeded",
    "overloaded",
    "overloaded_error",
    "service_unavailable",
    "unavailable",
    "timeout",
}
"""String error codes inside a stream that are worth another try."""


class EmptyStream(Exception):
    """A stream that said nothing: no text, no tool call, no finish reason."""


class OpenAIChatProvider:
    """The Provider protocol over `/chat/completions`, streaming or not, with retries.

    `retry_policy`, `sleep`, `timeout` and `on_retry` are plain attributes so that the
    caller (or a test) can tune them after `make_provider`.
    """

    def __init__(
        self,
        config: ProviderConfig,
        *,
        retry_policy: RetryPolicy | None = None,
        timeout: float = DEFAULT_IDLE_TIMEOUT,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_retry: Callable[[str, float], None] | None = None,
    ) -> None:
        self.name = config.provider
        self.model = config.model
        self.base_url = config.base_url.rstrip("/")
        self.retry_policy = retry_policy or RetryPolicy()
        self.timeout = timeout  # idle limit per read when the request sets none
        self.sleep = sleep
        self.on_retry = on_retry
        self.on_notice: Callable[[str], None] | None = None
        self.stream_fails = False  # an empty stream was seen: ask without streaming
        self.config = config
        self._key_env = config.info.key_env or f"{env_name(config.provider)}_API_KEY"
        self._check_key(config.api_key)
        self._client: httpx2.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"OpenAIChatProvider(name={self.name!r}, model={self.model!r}, url={self.url!r})"

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    async def complete(self, request: Request, on_text: TextSink | None = None) -> Turn:
        """One model reply. Text reaches `on_text` as it arrives (in one piece when not
        streaming); transient failures are retried; the rest is a one-line ProviderError."""
        if self.stream_fails and request.stream:
            request = replace(request, stream=False)
        try:
            return await self._complete(request, on_text)
        except EmptyStream:
            self.stream_fails = True
            if self.on_notice is not None:
                self.on_notice(
                    f"{self.name}: the stream ended empty (no text, no tool call, no finish "
                    "reason); asking again without streaming"
                )
            return await self._complete(replace(request, stream=False), on_text)

    async def _complete(self, request: Request, on_text: TextSink | None) -> Turn:
        body = build_body(self.model, request)
        idle = request.idle_timeout or self.timeout
        try:
            return await with_retries(
                lambda: self._attempt(body, on_text, idle, request.deadline),
                self.retry_policy,
                self.name,
                on_retry=self._report_retry,
                sleep=self.sleep,
                url=self.url,
            )
        except ProviderError as exc:
            raise ProviderError(self._redact(str(exc))) from None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is _running_loop():
            await client.aclose()
        self._client_loop = None

    # -- one attempt -------------------------------------------------------------

    async def _attempt(
        self,
        body: dict[str, Any],
        on_text: TextSink | None,
        idle: float,
        deadline: float | None = None,
    ) -> Turn:
        """Send once; `async with` closes the connection on cancellation (stop button)."""
        stream = bool(body.get("stream"))
        try:
            async with self._http().stream(
                "POST",
                self.url,
                json=body,
                headers=self._headers(stream=stream),
                timeout=request_timeout(idle, stream, deadline),
            ) as response:
                if response.status_code == 408:
                    raise TransientError("HTTP 408: request timeout")
                if is_html(response):
                    raise html_error(response, self.url, self.name)
                await check_response(response, self.name)
                kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
                if not stream or kind.endswith("json"):
                    turn = self._parse_json(await response.aread())
                    if on_text is not None and turn.text:
                        on_text(turn.text)
                    return turn
                if kind != "text/event-stream":
                    raise TransientError(f"expected an event stream, got {kind or 'no type'}")
                return await self._read_stream(response, on_text, idle, body)
        except ProviderError as exc:
            raise ProviderError(self._hint(str(exc))) from None
        except (httpx2.UnsupportedProtocol, httpx2.InvalidURL):
            raise ProviderError(f"{self.name}: cannot use base URL {self.base_url!r}") from None
        except httpx2.DecodingError:
            message = f"{self.name}: could not decode the reply from {self.url}"
            raise ProviderError(message) from None
        except httpx2.ConnectError as exc:
            if is_refused(exc) and is_local(self.url):
                raise refused_error(self.url, self.name, self.name) from None
            raise

    def _parse_json(self, raw: bytes) -> Turn:
        data = parse_json(raw.decode("utf-8", "replace"), self.name)
        if not isinstance(data, dict):
            raise TransientError(f"malformed reply from {self.name}")
        if data.get("error") and not data.get("choices"):
            raise self._error_object(data["error"])
        return parse_completion(data)

    async def _read_stream(
        self,
        response: httpx2.Response,
        on_text: TextSink | None,
        idle: float,
        body: dict[str, Any],
    ) -> Turn:
        """Feed SSE chunks to a `StreamState` until `[DONE]` or a finish reason; a broken
        stream is retried only if no text was shown yet, since a retry would show it twice.
        """
        state = StreamState()
        events = sse_events(response, idle, self.name)
        try:
            async for event in events:
                if self._take(state, event.data.strip(), on_text):
                    break
            if state.finish_reason is not None and not state.done and state.usage is None:
                await self._await_usage(events, state, body, on_text)
            if state.empty:
                raise EmptyStream()
            if not state.finished:
                raise TransientError("the stream ended before the reply was complete")
        except (TransientError, httpx2.TransportError) as exc:
            if state.text_parts:
                raise ProviderError(
                    f"{self.name}: the stream broke off after text was shown "
                    f"({_reason(exc)}); not retried, to avoid repeating it"
                ) from None
            raise
        finally:
            await events.aclose()
        return state.turn()

    def _take(self, state: StreamState, data: str, on_text: TextSink | None) -> bool:
        """Feed one event's data; True when the reply is complete."""
        if data == "[DONE]":
            state.done = True
            return True
        chunk = parse_json(data, self.name)
        if isinstance(chunk, dict) and chunk.get("error"):
            raise self._error_object(chunk["error"])
        text = state.feed(chunk)
        if text and on_text is not None:
            on_text(text)
        return state.finish_reason is not None

    async def _await_usage(
        self, events: Any, state: StreamState, body: dict[str, Any], on_text: TextSink | None
    ) -> None:
        """The usage chunk follows the finish reason; wait for it briefly, not forever."""
        if not (body.get("stream_options") or {}).get("include_usage"):
            return
        try:
            while state.usage is None and not state.done:
                event = await asyncio.wait_for(events.__anext__(), USAGE_GRACE)
                self._take(state, event.data.strip(), on_text)
        except (StopAsyncIteration, asyncio.TimeoutError, ProviderError, httpx2.TransportError):
            pass  # the reply itself is complete

    # -- helpers -----------------------------------------------------------------

    def _http(self) -> httpx2.AsyncClient:
        """The client for the running loop (a client cannot move between loops)."""
        loop = _running_loop()
        if self._client is None or self._client.is_closed or self._client_loop is not loop:
            self._client = make_client(self.timeout)
            self._client_loop = loop
        return self._client

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = dict(self.config.info.headers)
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        if stream:
            headers["Accept"] = "text/event-stream"
        return headers

    def _error_object(self, error: Any) -> Exception:
        """An `{"error": ...}` inside a 200 reply: transient → retry, else one line."""
        code: Any = error.get("code") if isinstance(error, dict) else None
        if isinstance(error, dict):
            message = error.get("message") or error.get("type") or json.dumps(error)
        else:
            message = str(error)
        message = " ".join(str(message).split())[:300]
        label = f"error {code}: {message}" if code not in (None, "") else f"error: {message}"
        status = code if isinstance(code, int) else int(code) if str(code).isdigit() else 0
        if is_transient(status, message) or str(code).lower() in TRANSIENT_CODES:
            return TransientError(label)
        hint = " (check the API key)" if status in (401, 403) else ""
        return ProviderError(self._hint(f"{self.name}: {label}{hint}"))

    def _hint(self, message: str) -> str:
        """Name the variable to check when the key is refused."""
        return message.replace("(check the API key)", f"(check the API key in {self._key_env})")

    def _redact(self, text: str) -> str:
        for secret in self.config.secrets():
            text = text.replace(secret, "***")
        return text

    def _report_retry(self, reason: str, wait: float) -> None:
        if self.on_retry is not None:
            self.on_retry(self._redact(reason), wait)

    def _check_key(self, key: str | None) -> None:
        if key and any(not 33 <= ord(c) <= 126 for c in key):
            raise ProviderError(
                f"{self.name}: the API key in {self._key_env} contains spaces or "
                "characters that cannot go in an HTTP header"
            )


# -- neutral → wire ------------------------------------------------------------------


def build_body(model: str, request: Request) -> dict[str, Any]:
    """The JSON body of a `/chat/completions` request."""
    body: dict[str, Any] = {"model": model, "messages": wire_messages(request)}
    if request.tools:
        body["tools"] = [wire_tool(tool) for tool in request.tools]
        body["tool_choice"] = "auto"
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def wire_messages(request: Request) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend(wire_message(message) for message in request.messages)
    return messages


def wire_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
    if message.role != "assistant" or not message.tool_calls:
        return {"role": message.role, "content": message.content}
    extras = {
        item.get("id"): item.get("extra_content")
        for item in message.extra
        if item.get("kind") == TOOL_CALL_EXTRA
    }
    calls = []
    for call in message.tool_calls:
        wire: dict[str, Any] = {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        if extras.get(call.id) is not None:
            wire["extra_content"] = extras[call.id]
        calls.append(wire)
    return {"role": "assistant", "content": message.content or "", "tool_calls": calls}


def wire_tool(tool: ToolSpec) -> dict[str, Any]:
    # Some servers refuse a tool without a schema; an empty object schema means "no args".
    parameters = tool.parameters or {"type": "object", "properties": {}}
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": parameters,
        },
    }


# -- wire → neutral ------------------------------------------------------------------


def parse_completion(data: dict[str, Any]) -> Turn:
    """A non-streaming reply: `choices[0].message`, `usage`, `finish_reason`."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise TransientError("the reply had no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    text = _text(message.get("content")) or _text(message.get("refusal"))
    calls: list[ToolCall] = []
    extra: list[dict[str, Any]] = []
    for raw in message.get("tool_calls") or []:
        function = raw.get("function") or {}
        call = ToolCall(
            id=raw.get("id") or _new_id(),
            name=function.get("name") or "",
            arguments=_arguments(function.get("arguments")),
        )
        calls.append(call)
        if raw.get("extra_content") is not None:
            extra.append(_call_extra(call.id, raw["extra_content"]))
    return Turn(
        text=text,
        tool_calls=calls,
        usage=parse_usage(data.get("usage")),
        extra=extra,
        stop_reason=choice.get("finish_reason"),
        model=_model(data),
    )


def parse_usage(data: Any) -> Usage | None:
    """`prompt_tokens` / `completion_tokens`, plus OpenRouter's `cost` in USD."""
    if not isinstance(data, dict):
        return None
    cost = data.get("cost")
    return Usage(
        input_tokens=_int(data.get("prompt_tokens")),
        output_tokens=_int(data.get("completion_tokens")),
        cost=float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
    )


@dataclass
class PendingCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    extra_content: Any = None


@dataclass
class StreamState:
    """What the chunks of one stream have said so far."""

    text_parts: list[str] = field(default_factory=list)
    calls: list[PendingCall] = field(default_factory=list)
    by_index: dict[int, int] = field(default_factory=dict)
    usage: Usage | None = None
    finish_reason: str | None = None
    done: bool = False
    model: str | None = None

    @property
    def finished(self) -> bool:
        """`[DONE]`, or at least a finish_reason (some servers omit `[DONE]`)."""
        return self.done or self.finish_reason is not None

    @property
    def empty(self) -> bool:
        """Nothing said at all: no text, no tool call, no finish reason."""
        return not self.text_parts and not self.calls and self.finish_reason is None

    def feed(self, chunk: Any) -> str:
        """Take one chunk; return its text delta (may be empty)."""
        if not isinstance(chunk, dict):
            raise TransientError("malformed stream chunk")
        usage = parse_usage(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        self.model = self.model or _model(chunk)
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return ""
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or {}
        for fragment in delta.get("tool_calls") or []:
            if isinstance(fragment, dict):
                self.add_fragment(fragment)
        text = _text(delta.get("content")) or _text(delta.get("refusal"))
        if text:
            self.text_parts.append(text)
        return text

    def add_fragment(self, fragment: dict[str, Any]) -> None:
        """Merge one `delta.tool_calls` entry into the call it belongs to."""
        function = fragment.get("function") or {}
        call = self.calls[self._position(fragment, function)]
        if fragment.get("id") and not call.id:
            call.id = fragment["id"]
        if function.get("name") and not call.name:
            call.name = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call.arguments.append(arguments)
        elif arguments is not None:
            call.arguments = [json.dumps(arguments)]
        if fragment.get("extra_content") is not None:
            call.extra_content = fragment["extra_content"]

    def _position(self, fragment: dict[str, Any], function: dict[str, Any]) -> int:
        """Keyed by `index`; without one, a new id or a new name starts a new call."""
        call_id = fragment.get("id") or ""
        index = fragment.get("index")
        if isinstance(index, int):
            position = self.by_index.get(index)
            if position is not None:
                known = self.calls[position].id
                if not (call_id and known and call_id != known):
                    return position
            self.by_index[index] = self._new()
            return self.by_index[index]
        if self.calls:
            last = self.calls[-1]
            same = call_id == last.id if call_id else not (function.get("name") and last.name)
            if same:
                return len(self.calls) - 1
        return self._new()

    def _new(self) -> int:
        self.calls.append(PendingCall())
        return len(self.calls) - 1

    def turn(self) -> Turn:
        calls: list[ToolCall] = []
        extra: list[dict[str, Any]] = []
        for pending in self.calls:
            call = ToolCall(
                id=pending.id or _new_id(),
                name=pending.name,
                arguments="".join(pending.arguments).strip() or "{}",
            )
            calls.append(call)
            if pending.extra_content is not None:
                extra.append(_call_extra(call.id, pending.extra_content))
        return Turn(
            text="".join(self.text_parts),
            tool_calls=calls,
            usage=self.usage,
            extra=extra,
            stop_reason=self.finish_reason,
            model=self.model,
        )


# -- small helpers -------------------------------------------------------------------


def _model(data: dict[str, Any]) -> str | None:
    """The `model` a reply says answered it (a short string), if any."""
    model = data.get("model")
    return model[:200] if isinstance(model, str) and model.strip() else None


def _text(content: Any) -> str:
    """Content as text: a string, or a list of `{"type": "text", "text": ...}` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text") or ""
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "output_text")
        )
    return ""


def _arguments(value: Any) -> str:
    """Raw JSON text; some servers send an object, some an empty string for no args."""
    if value is None:
        return "{}"
    if not isinstance(value, str):
        return json.dumps(value)
    return value.strip() or "{}"


def _call_extra(call_id: str, extra_content: Any) -> dict[str, Any]:
    return {"kind": TOOL_CALL_EXTRA, "id": call_id, "extra_content": extra_content}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _new_id() -> str:
    """For servers that send tool calls without ids: the loop needs one to answer."""
    return f"call_{uuid.uuid4().hex[:24]}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, httpx2.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx2.TransportError):
        return f"connection failed ({type(exc).__name__})"
    return str(exc) or type(exc).__name__


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
