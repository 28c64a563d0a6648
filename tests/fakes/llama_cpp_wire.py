"""A model endpoint that behaves like llama-cpp-python's OpenAI-compatible server.

`python -m llama_cpp.server --chat_format chatml-function-calling` is a common local
endpoint, and it differs from OpenAI in four ways that matter to an agent loop:

- it ignores `tools` unless the request says `"tool_choice": "auto"` (and answers prose);
- streaming together with `tool_choice` gives an empty 200 event stream;
- an assistant message whose `content` is `null` gets HTTP 500;
- streams carry no usage (non-streamed replies do).

`responder` reproduces exactly these over the real wire, for `ScriptedServer(responder)`.
The model itself is trivial: with tools it calls the first one whose name ends in
`query_db` (then answers from the tool's result); without, it echoes the question.
"""

from __future__ import annotations

import json
from typing import Any

from .openai_wire import Call, completion, raw_stream, stream_chunks, usage
from .scripted_http import Recorded, Reply, json_reply

SQL = "select status, count(*) as n from orders group by status"


def responder(recorded: Recorded) -> Reply:
    body = recorded.body if isinstance(recorded.body, dict) else {}
    messages = body.get("messages") or []
    if any(m.get("role") == "assistant" and m.get("content") is None for m in messages):
        # What the server does with OpenAI's own null content: an internal error.
        return Reply(status=500, body="Internal Server Error", content_type="text/plain")
    streaming = bool(body.get("stream"))
    uses_tools = bool(body.get("tools")) and body.get("tool_choice") == "auto"
    if streaming and "tool_choice" in body:
        return Reply(chunks=[], content_type="text/event-stream")  # 200, and nothing in it
    text, calls = answer(messages, body.get("tools") or [] if uses_tools else [])
    if streaming:
        return raw_stream(stream_chunks(text, calls))  # no usage chunk, ever
    prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in messages)
    return json_reply(completion(text or None, calls, usage(prompt_tokens, 9)))


def answer(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> tuple[str, list[Call]]:
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return f"From the tool: {str(last.get('content'))[:80]}", []
    names = [t.get("function", {}).get("name", "") for t in tools]
    query = next((n for n in names if n.endswith("query_db")), None)
    if query is not None:
        return "", [Call("call_llama_1", query, json.dumps({"sql": SQL}))]
    return f"You said: {last.get('content')}", []
