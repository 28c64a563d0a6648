"""Replies in the Responses API format (OpenAI, DashScope), streamed and not."""

from __future__ import annotations

import json
from typing import Any

from .scripted_http import Reply, json_reply, sse_reply

Usage = tuple[int, int]  # (input_tokens, output_tokens)


def message_item(text: str, id: str = "msg_1") -> dict[str, Any]:
    return {
        "id": id,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def function_call_item(call_id: str, name: str, arguments: dict | str) -> dict[str, Any]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": "fc_" + call_id,
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": raw,
    }


def mcp_list_tools_item(label: str, tools: list[str]) -> dict[str, Any]:
    return {
        "id": "mcpl_" + label,
        "type": "mcp_list_tools",
        "server_label": label,
        "tools": [{"name": t, "input_schema": {"type": "object"}} for t in tools],
    }


def mcp_call_item(
    label: str,
    name: str,
    arguments: dict | str,
    output: str | None = None,
    error: str | None = None,
    id: str = "mcp_1",
) -> dict[str, Any]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": id,
        "type": "mcp_call",
        "server_label": label,
        "name": name,
        "arguments": raw,
        "output": output,
        "error": error,
    }


def response(
    output: list[dict[str, Any]], usage: Usage = (10, 5), status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "status": status,
        "error": None,
        "incomplete_details": None,
        "output": output,
        "usage": {
            "input_tokens": usage[0],
            "output_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        },
    }


def response_reply(output: list[dict[str, Any]], **kwargs: Any) -> Reply:
    """A complete (non-streamed) response."""
    return json_reply(response(output, **kwargs))


def error_reply(status: int, code: str, text: str, **kwargs: Any) -> Reply:
    """An HTTP error as OpenAI and DashScope send it."""
    body = {"error": {"code": code, "message": text, "type": code}}
    return json_reply(body, status=status, **kwargs)


def failed_event(code: str = "server_error", text: str = "The server had an error") -> tuple:
    failed = response([], status="failed")
    failed["error"] = {"code": code, "message": text}
    return ("response.failed", {"type": "response.failed", "response": failed})


def error_event(code: str = "server_error", text: str = "Overloaded") -> tuple:
    return ("error", {"type": "error", "code": code, "message": text, "param": None})


def stream_events(
    text_chunks: list[str] | None = None,
    items: list[dict[str, Any]] | None = None,
    usage: Usage = (10, 5),
    end: bool = True,
    completed_output: bool = True,
) -> list[tuple[str, dict]]:
    """The events of one streamed response: `items` (mcp calls, function calls) done in
    order, then a message whose text arrives in `text_chunks`, then `response.completed`
    (with the full output unless `completed_output` is false, as some servers do)."""
    output = list(items or [])
    events: list[tuple[str, dict]] = [_event("response.created", response=_shell())]
    for index, item in enumerate(output):
        events += _item_events(index, item)
    if text_chunks:
        message = message_item("".join(text_chunks))
        index = len(output)
        events.append(
            _event(
                "response.output_item.added",
                output_index=index,
                item={**message, "content": [], "status": "in_progress"},
            )
        )
        for chunk in text_chunks:
            events.append(
                _event(
                    "response.output_text.delta",
                    output_index=index,
                    content_index=0,
                    item_id=message["id"],
                    delta=chunk,
                )
            )
        events.append(
            _event(
                "response.output_text.done",
                output_index=index,
                content_index=0,
                text="".join(text_chunks),
            )
        )
        events.append(_event("response.output_item.done", output_index=index, item=message))
        output.append(message)
    if end:
        final = response(output if completed_output else [], usage=usage)
        events.append(_event("response.completed", response=final))
    return events


def stream_reply(*args: Any, delay: float = 0.0, **kwargs: Any) -> Reply:
    return sse_reply(stream_events(*args, **kwargs), delay=delay)


def _shell() -> dict[str, Any]:
    shell = response([], status="in_progress")
    shell["usage"] = None
    return shell


def _event(kind: str, **fields: Any) -> tuple[str, dict]:
    return (kind, {"type": kind, **fields})


def _item_events(index: int, item: dict[str, Any]) -> list[tuple[str, dict]]:
    events = [
        _event(
            "response.output_item.added", output_index=index, item={**item, "status": "in_progress"}
        )
    ]
    if item["type"] == "function_call":
        raw = item["arguments"]
        half = len(raw) // 2
        for part in (raw[:half], raw[half:]):
            events.append(
                _event(
                    "response.function_call_arguments.delta",
                    output_index=index,
                    item_id=item["id"],
                    delta=part,
                )
            )
    if item["type"] == "mcp_call":
        events.append(
            _event("response.mcp_call.in_progress", output_index=index, item_id=item["id"])
        )
        events.append(_event("response.mcp_call.completed", output_index=index, item_id=item["id"]))
    events.append(_event("response.output_item.done", output_index=index, item=item))
    return events
