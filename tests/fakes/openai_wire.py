"""`Reply` builders for the OpenAI chat-completions wire format (and OpenRouter's quirks).

`completion(...)` is a non-streaming body, `stream(...)` a streamed one split into
realistic chunks: text in several content deltas, tool calls whose `arguments` arrive
in pieces keyed by `index`, a finish chunk, and a usage chunk with empty `choices`.
`raw_stream(...)` writes arbitrary chunks and comment lines for the odd servers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .scripted_http import Reply, json_reply

MODEL = "openai/gpt-4o-mini"
PROCESSING = ": OPENROUTER PROCESSING"


@dataclass
class Call:
    """A tool call to script: `arguments` as a dict (JSON-encoded) or raw text."""

    id: str
    name: str
    arguments: dict[str, Any] | str = "{}"

    @property
    def text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.text},
        }


def usage(prompt: int = 10, completion: int = 5, cost: float | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cost is not None:
        block["cost"] = cost
    return block


def completion(
    text: str | None = None,
    calls: Sequence[Call] = (),
    usage_block: dict[str, Any] | None = None,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A non-streaming `chat.completion` body."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [call.wire() for call in calls]
    body: dict[str, Any] = {
        "id": "gen-1",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
            }
        ],
    }
    if usage_block is not None:
        body["usage"] = usage_block
    return body


def completion_reply(*args: Any, **kwargs: Any) -> Reply:
    return json_reply(completion(*args, **kwargs))


def chunk(
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    usage_block: dict[str, Any] | None = None,
    choices: bool = True,
) -> dict[str, Any]:
    """One `chat.completion.chunk`."""
    body: dict[str, Any] = {"id": "gen-1", "object": "chat.completion.chunk", "model": MODEL}
    body["choices"] = (
        [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}] if choices else []
    )
    if usage_block is not None:
        body["usage"] = usage_block
    return body


def split(text: str, pieces: int) -> list[str]:
    """`text` cut into `pieces` non-empty parts (fewer if it is short)."""
    if not text:
        return []
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def call_fragments(calls: Sequence[Call], pieces: int = 3) -> list[dict[str, Any]]:
    """Deltas as OpenAI streams tool calls: id and name first, then argument pieces."""
    deltas = []
    for index, call in enumerate(calls):
        first = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [first]})
        for piece in split(call.text, pieces):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas


def stream_chunks(
    text: str = "",
    calls: Sequence[Call] = (),
    usage_block: dict[str, Any] | None = None,
    pieces: int = 3,
    finish_reason: str | None = None,
) -> list[dict[str, Any]]:
    """The chunks of a complete streamed reply (without `[DONE]`)."""
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in split(text, pieces)]
    chunks += [chunk(delta) for delta in call_fragments(calls, pieces)]
    chunks.append(chunk({}, finish_reason or ("tool_calls" if calls else "stop")))
    if usage_block is not None:
        chunks.append(chunk(usage_block=usage_block, choices=False))
    return chunks


def raw_stream(
    items: Iterable[dict[str, Any] | str], done: bool = True, delay: float = 0.0, **kw: Any
) -> Reply:
    """An SSE reply: dicts go out as `data: json`, strings verbatim as lines (comments)."""

    def frames() -> Iterable[str]:
        for item in items:
            yield f"{item}\n\n" if isinstance(item, str) else f"data: {json.dumps(item)}\n\n"
        if done:
            yield "data: [DONE]\n\n"

    return Reply(chunks=frames(), delay=delay, content_type="text/event-stream", **kw)


def stream(
    text: str = "",
    calls: Sequence[Call] = (),
    usage_block: dict[str, Any] | None = None,
    pieces: int = 3,
    comments: bool = False,
    done: bool = True,
    delay: float = 0.0,
) -> Reply:
    """A streamed reply; `comments` adds OpenRouter's `: OPENROUTER PROCESSING` lines."""
    items: list[dict[str, Any] | str] = list(stream_chunks(text, calls, usage_block, pieces=pieces))
    if comments:
        items = [PROCESSING, PROCESSING, *items[:2], PROCESSING, *items[2:]]
    return raw_stream(items, done=done, delay=delay)


def code_call(call_id: str, code: str) -> Reply:
    """A streamed reply asking to run `code` in the notebook (code mode's one tool)."""
    return stream(calls=[Call(call_id, "notebook__run_python", {"code": code})])


def tool_results(body: dict[str, Any]) -> dict[str, str]:
    """What a chat request tells the model its tools returned: call id -> content."""
    return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}


def error_object(code: int | str, message: str) -> dict[str, Any]:
    """OpenRouter's error shape, in a body or inside a 200 stream."""
    return {"error": {"code": code, "message": message}}


def stream_error(code: int | str, message: str, text_before: str = "") -> Reply:
    """A 200 stream that carries an error object (after some text, if given)."""
    items: list[dict[str, Any] | str] = [PROCESSING]
    if text_before:
        items.append(chunk({"content": text_before}))
    items.append(error_object(code, message))
    return raw_stream(items, done=False)


def error_reply(status: int, message: str, retry_after: str | None = None) -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return json_reply(error_object(status, message), status=status, headers=headers)


def cut_stream(text: str = "", pieces: int = 2) -> Reply:
    """A stream that ends without a finish_reason or `[DONE]` (the connection died)."""
    items: list[dict[str, Any] | str] = [chunk({"role": "assistant", "content": ""})]
    items += [chunk({"content": piece}) for piece in split(text, pieces)]
    return raw_stream(items, done=False)
