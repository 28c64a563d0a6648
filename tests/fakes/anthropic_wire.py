"""Replies in the Anthropic Messages format, streamed (named SSE events) and not."""

from __future__ import annotations

import json
from typing import Any

from .scripted_http import Reply, json_reply, sse_reply

Usage = tuple[int, int]  # (input_tokens, output_tokens)


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def tool_use_block(id: str, name: str, input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id, "name": name, "input": input}


def thinking_block(thinking: str, signature: str = "sig-1") -> dict[str, Any]:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def message(
    blocks: list[dict[str, Any]], stop_reason: str | None = "end_turn", usage: Usage = (10, 5)
) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def message_reply(blocks: list[dict[str, Any]], **kwargs: Any) -> Reply:
    """A complete (non-streamed) Messages response."""
    return json_reply(message(blocks, **kwargs))


def error_body(kind: str, text: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": text}}


def error_reply(status: int, kind: str, text: str, **kwargs: Any) -> Reply:
    """An HTTP error as Anthropic sends it (529 overloaded_error, 401 authentication_error)."""
    return json_reply(error_body(kind, text), status=status, **kwargs)


def error_event(kind: str = "overloaded_error", text: str = "Overloaded") -> tuple[str, dict]:
    return ("error", error_body(kind, text))


def split(text: str, parts: int) -> list[str]:
    """`text` cut into `parts` pieces (the last may be longer)."""
    size = max(1, len(text) // parts)
    pieces = [text[i * size : (i + 1) * size] for i in range(parts - 1)]
    pieces.append(text[(parts - 1) * size :])
    return [p for p in pieces if p]


def stream_events(
    text_chunks: list[str] | None = None,
    tool_calls: list[tuple[str, str, dict[str, Any]]] | None = None,
    usage: Usage = (10, 5),
    stop_reason: str | None = None,
    thinking: str | None = None,
    json_parts: int = 3,
    end: bool = True,
) -> list[tuple[str, dict]]:
    """The events of one streamed message: optional thinking block, text in chunks, tool
    calls `(id, name, input)` with their JSON split over `json_parts` deltas, usage."""
    events: list[tuple[str, dict]] = [
        ("message_start", _start(usage[0])),
        ("ping", {"type": "ping"}),
    ]
    index = 0
    if thinking is not None:
        events += _thinking(index, thinking)
        index += 1
    if text_chunks:
        events += _text(index, text_chunks)
        index += 1
    for call in tool_calls or []:
        events += _tool_use(index, *call, parts=json_parts)
        index += 1
    if not end:
        return events
    reason = stop_reason or ("tool_use" if tool_calls else "end_turn")
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": None},
                "usage": {"output_tokens": usage[1]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def stream_reply(*args: Any, delay: float = 0.0, **kwargs: Any) -> Reply:
    """A streamed message (see `stream_events`)."""
    return sse_reply(stream_events(*args, **kwargs), delay=delay)


def _start(input_tokens: int) -> dict[str, Any]:
    start = message([], stop_reason=None, usage=(input_tokens, 1))
    return {"type": "message_start", "message": start}


def _block(index: int, block: dict[str, Any], deltas: list[dict]) -> list[tuple[str, dict]]:
    events = [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )
    ]
    for delta in deltas:
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def _text(index: int, chunks: list[str]) -> list[tuple[str, dict]]:
    deltas = [{"type": "text_delta", "text": chunk} for chunk in chunks]
    return _block(index, {"type": "text", "text": ""}, deltas)


def _thinking(index: int, thinking: str) -> list[tuple[str, dict]]:
    deltas = [{"type": "thinking_delta", "thinking": part} for part in split(thinking, 2)]
    deltas.append({"type": "signature_delta", "signature": "sig-1"})
    return _block(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)


def _tool_use(
    index: int, id: str, name: str, input: dict[str, Any] | str, parts: int
) -> list[tuple[str, dict]]:
    raw = input if isinstance(input, str) else json.dumps(input)
    deltas = [{"type": "input_json_delta", "partial_json": ""}]  # Anthropic sends one first
    deltas += [{"type": "input_json_delta", "partial_json": p} for p in split(raw, parts)]
    return _block(index, {"type": "tool_use", "id": id, "name": name, "input": {}}, deltas)
