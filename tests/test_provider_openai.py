"""OpenAIChatProvider against a real local HTTP server that speaks the scripted wire.

Each test checks both sides: the `Turn` that came back and the requests that went out.
Retries use a recording `sleep` (no real waiting) and a 0.5 s read timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from fakes.openai_wire import (
    Call,
    chunk,
    completion,
    completion_reply,
    cut_stream,
    error_object,
    error_reply,
    raw_stream,
    split,
    stream,
    stream_error,
    usage,
)
from fakes.scripted_http import Reply, ScriptedServer, json_reply

from mcp_magic.agent.providers import ProviderError, make_provider, resolve
from mcp_magic.agent.providers.base import Message, Request, ToolCall, ToolSpec, Turn
from mcp_magic.agent.providers.http import RetryPolicy
from mcp_magic.agent.providers.openai_chat import OpenAIChatProvider

KEY = "fake-or-key-7f3a9c1e-must-never-leak"
CALL_A = Call("call_a", "data__query", {"sql": "select * from t where x = 'a,b'"})
CALL_B = Call("call_b", "files__list_directory", {"path": "/tmp"})


@pytest.fixture(scope="module")
def shared_server():
    # One server per module: stopping one waits out serve_forever's 0.5 s poll.
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def server(shared_server):
    with shared_server._lock:
        shared_server.replies.clear()
        shared_server.requests.clear()
    return shared_server


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment: no .env in the working directory, a fake OpenRouter key."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    for name in ("OPENROUTER_BASE_URL", "OLLAMA_API_KEY", "OLLAMA_BASE_URL", "ACME_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def build(spec: str, base_url: str, waits: list[float]) -> OpenAIChatProvider:
    provider = make_provider(resolve(spec, base_url=base_url))
    assert isinstance(provider, OpenAIChatProvider)

    async def record(seconds: float) -> None:
        waits.append(seconds)

    provider.retry_policy = RetryPolicy(retries=5, initial=0.001, cap=0.01)
    provider.sleep = record
    provider.timeout = 0.5
    return provider


@pytest.fixture
def provider(env, server, waits) -> OpenAIChatProvider:
    return build("openrouter:openai/gpt-4o-mini", server.url + "/api/v1", waits)


def run(provider: OpenAIChatProvider, request: Request, deltas: list[str] | None = None) -> Turn:
    async def go() -> Turn:
        try:
            return await provider.complete(request, deltas.append if deltas is not None else None)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def fail(provider: OpenAIChatProvider, request: Request, deltas: list[str] | None = None) -> str:
    with pytest.raises(ProviderError) as info:
        run(provider, request, deltas)
    message = str(info.value)
    assert "\n" not in message
    assert KEY not in message and KEY not in repr(info.value)
    return message


def ask(text: str = "hi", stream: bool = True, **kw: Any) -> Request:
    return Request(messages=[Message("user", text)], stream=stream, **kw)


def header(recorded, name: str) -> str | None:
    lowered = {k.lower(): v for k, v in recorded.headers.items()}
    return lowered.get(name.lower())


# -- what is sent ----------------------------------------------------------------------


def test_conversation_tools_and_headers_go_out_in_wire_format(provider, server):
    server.push(completion_reply("done", usage_block=usage(30, 4)))
    tool = ToolSpec("data__query", "Run SQL", {"type": "object", "properties": {"sql": {}}})
    bare = ToolSpec("time__now", "Current time", {})
    calls = [ToolCall("call_a", "data__query", CALL_A.text), ToolCall("call_b", "x__y", "{}")]
    request = Request(
        messages=[
            Message("user", "count rows"),
            Message("assistant", "", tool_calls=calls),
            Message("tool", "42", tool_call_id="call_a", name="data__query"),
            Message("tool", "error: no", tool_call_id="call_b", name="x__y"),
            Message("assistant", "There are 42."),
            Message("user", "thanks"),
        ],
        tools=[tool, bare],
        system="You are helpful.",
        temperature=0.2,
        max_tokens=100,
        stream=False,
    )
    turn = run(provider, request)
    assert turn.text == "done" and turn.tool_calls == []

    (sent,) = server.requests
    assert sent.method == "POST" and sent.path == "/api/v1/chat/completions"
    assert header(sent, "Authorization") == f"Bearer {KEY}"
    assert header(sent, "X-Title") == "mcp_magic"
    assert header(
        sent,
        "HTTP-Referer",
    ).startswith("https://")
    body = sent.body
    assert body["model"] == "openai/gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "count rows"},
        {
            "role": "assistant",
            "content": "",  # not null: llama-cpp-python answers 500 to null
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "data__query", "arguments": CALL_A.text},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "x__y", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "42"},
        {"role": "tool", "tool_call_id": "call_b", "content": "error: no"},
        {"role": "assistant", "content": "There are 42."},
        {"role": "user", "content": "thanks"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "data__query",
                "description": "Run SQL",
                "parameters": tool.parameters,
            },
        },
        {
            "type": "function",
            "function": {
                "name": "time__now",
                "description": "Current time",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]
    assert body["tool_choice"] == "auto"  # llama-cpp-python ignores tools without it
    assert body["temperature"] == 0.2 and body["max_tokens"] == 100
    assert "stream" not in body and "stream_options" not in body


def test_optional_fields_are_omitted(provider, server):
    server.push(stream("ok"))
    run(provider, ask("hi"))
    body = server.requests[0].body
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert "tools" not in body and "temperature" not in body and "max_tokens" not in body
    assert "tool_choice" not in body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


# -- what comes back -------------------------------------------------------------------


def test_non_streaming_text_usage_and_cost(provider, server):
    server.push(completion_reply("Hello!", usage_block=usage(12, 3, cost=0.00042)))
    deltas: list[str] = []
    turn = run(provider, ask(stream=False), deltas)
    assert turn.text == "Hello!" and turn.stop_reason == "stop"
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (12, 3)
    assert turn.usage.cost == pytest.approx(0.00042)
    assert deltas == ["Hello!"]  # the text arrives once, as one piece


def test_streamed_deltas_reach_on_text_in_order(provider, server):
    text = "Streaming works, one piece at a time."
    server.push(stream(text, usage_block=usage(20, 9, cost=0.001), pieces=5, comments=True))
    deltas: list[str] = []
    turn = run(provider, ask(), deltas)
    assert deltas == split(text, 5) and len(deltas) == 5
    assert turn.text == text and turn.tool_calls == []
    assert (turn.usage.input_tokens, turn.usage.output_tokens, turn.usage.cost) == (20, 9, 0.001)
    sent = server.requests[0]
    assert sent.body["stream"] is True
    assert header(sent, "Accept") == "text/event-stream"


def test_usage_without_cost(provider, server):
    server.push(stream("x", usage_block=usage(5, 1)))
    turn = run(provider, ask())
    assert turn.usage.input_tokens == 5 and turn.usage.cost is None


def test_streamed_tool_calls_with_arguments_in_pieces(provider, server):
    server.push(stream("Let me look.", calls=[CALL_A, CALL_B], usage_block=usage(50, 20), pieces=4))
    deltas: list[str] = []
    turn = run(provider, ask(tools=[ToolSpec("data__query", "q", {})]), deltas)
    assert "".join(deltas) == turn.text == "Let me look."
    assert [(c.id, c.name) for c in turn.tool_calls] == [
        ("call_a", "data__query"),
        ("call_b", "files__list_directory"),
    ]
    assert [json.loads(c.arguments) for c in turn.tool_calls] == [
        CALL_A.arguments,
        CALL_B.arguments,
    ]
    assert turn.stop_reason == "tool_calls" and turn.usage.total_tokens == 70


def test_interleaved_tool_call_fragments_are_keyed_by_index(provider, server):
    fragments = [
        {"index": 0, "id": "c0", "type": "function", "function": {"name": "a", "arguments": ""}},
        {"index": 1, "id": "c1", "type": "function", "function": {"name": "b", "arguments": "{"}},
        {"index": 0, "function": {"arguments": '{"x"'}},
        {"index": 1, "function": {"arguments": '"y": 2'}},
        {"index": 0, "function": {"arguments": ": 1}"}},
        {"index": 1, "function": {"arguments": "}"}},
    ]
    chunks = [chunk({"tool_calls": [f]}) for f in fragments] + [chunk({}, "tool_calls")]
    server.push(raw_stream(chunks))
    turn = run(provider, ask())
    assert [(c.id, c.name, json.loads(c.arguments)) for c in turn.tool_calls] == [
        ("c0", "a", {"x": 1}),
        ("c1", "b", {"y": 2}),
    ]


def test_tool_calls_without_index_all_in_one_chunk(provider, server):
    calls = [CALL_A.wire(), CALL_B.wire()]  # no "index": how some servers send them
    server.push(raw_stream([chunk({"role": "assistant", "tool_calls": calls}, "tool_calls")]))
    turn = run(provider, ask())
    assert [(c.id, c.name, c.arguments) for c in turn.tool_calls] == [
        ("call_a", CALL_A.name, CALL_A.text),
        ("call_b", CALL_B.name, CALL_B.text),
    ]


def test_tool_call_id_only_on_first_fragment_without_index(provider, server):
    fragments = [
        {"id": "c1", "type": "function", "function": {"name": "a", "arguments": ""}},
        {"function": {"arguments": '{"q": '}},
        {"function": {"arguments": '"x"}'}},
        {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
    ]
    chunks = [chunk({"tool_calls": [f]}) for f in fragments] + [chunk({}, "tool_calls")]
    server.push(raw_stream(chunks, done=False))  # a finish_reason without [DONE] is enough
    turn = run(provider, ask())
    assert [(c.id, c.name, c.arguments) for c in turn.tool_calls] == [
        ("c1", "a", '{"q": "x"}'),
        ("c2", "b", "{}"),
    ]


def test_index_reused_for_a_new_id_and_missing_ids_are_made_up(provider, server):
    fragments = [
        {"index": 0, "id": "c1", "function": {"name": "a", "arguments": "{}"}},
        {"index": 0, "id": "c2", "function": {"name": "b", "arguments": ""}},
        {"index": 5, "function": {"name": "c", "arguments": ""}},
    ]
    chunks = [chunk({"tool_calls": [f]}) for f in fragments] + [chunk({}, "tool_calls")]
    server.push(raw_stream(chunks))
    turn = run(provider, ask())
    assert [(c.name, c.arguments) for c in turn.tool_calls] == [
        ("a", "{}"),
        ("b", "{}"),
        ("c", "{}"),
    ]
    assert [c.id for c in turn.tool_calls][:2] == ["c1", "c2"]
    assert turn.tool_calls[2].id.startswith("call_")


def test_non_streaming_several_tool_calls(provider, server):
    body = completion(None, [CALL_A, CALL_B], usage(40, 10, cost=0.002))
    body["choices"][0]["message"]["tool_calls"].append(
        {"id": "call_c", "type": "function", "function": {"name": "c__d", "arguments": {"n": 1}}}
    )
    server.push(json_reply(body))
    deltas: list[str] = []
    turn = run(provider, ask(stream=False), deltas)
    assert turn.text == "" and deltas == []
    assert [(c.id, c.name, c.arguments) for c in turn.tool_calls] == [
        ("call_a", CALL_A.name, CALL_A.text),
        ("call_b", CALL_B.name, CALL_B.text),
        ("call_c", "c__d", '{"n": 1}'),
    ]
    assert turn.stop_reason == "tool_calls" and turn.usage.cost == pytest.approx(0.002)


def test_json_answer_to_a_streaming_request(provider, server):
    server.push(completion_reply("not streamed after all"))
    deltas: list[str] = []
    turn = run(provider, ask(), deltas)
    assert turn.text == "not streamed after all" and deltas == [turn.text]


def test_tool_call_extra_content_goes_back_verbatim(provider, server):
    signature = {"google": {"thought_signature": "sig=="}}
    body = completion(None, [CALL_A])
    body["choices"][0]["message"]["tool_calls"][0]["extra_content"] = signature
    server.push(json_reply(body), completion_reply("ok"))
    turn = run(provider, ask(stream=False))
    history = [
        Message("user", "hi"),
        Message("assistant", turn.text, tool_calls=turn.tool_calls, extra=turn.extra),
        Message("tool", "rows", tool_call_id="call_a"),
    ]
    run(provider, Request(messages=history, stream=False))
    assert server.requests[1].body["messages"][1]["tool_calls"][0]["extra_content"] == signature


# -- retries ---------------------------------------------------------------------------


def test_429_honours_retry_after(provider, server, waits):
    server.push(error_reply(429, "Rate limit exceeded", retry_after="7"), stream("ok"))
    assert run(provider, ask()).text == "ok"
    assert waits == [7.0] and len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body


@pytest.mark.parametrize("streaming", [True, False])
def test_500_then_success(provider, server, waits, streaming):
    server.push(error_reply(500, "Internal Server Error"), completion_reply("ok"))
    assert run(provider, ask(stream=streaming)).text == "ok"
    assert len(waits) == 1 and 0 < waits[0] <= 0.01


def test_overloaded_exhausted_is_one_line(provider, server, waits):
    server.push(*[error_reply(503, "overloaded") for _ in range(6)])
    message = fail(provider, ask())
    assert message == "openrouter: HTTP 503: overloaded (gave up after 6 attempts)"
    assert len(server.requests) == 6 and len(waits) == 5


def test_stalled_connection_times_out_and_is_retried(provider, server):
    server.push(Reply(stall=2.0), stream("after the stall"))
    started = time.monotonic()
    assert run(provider, ask()).text == "after the stall"
    assert time.monotonic() - started < 1.5 and len(server.requests) == 2


@pytest.mark.parametrize("streaming", [True, False])
def test_dropped_connection_is_retried(provider, server, streaming):
    server.push(Reply(drop=True), stream("back") if streaming else completion_reply("back"))
    assert run(provider, ask(stream=streaming)).text == "back"
    assert len(server.requests) == 2


def test_malformed_json_body_is_not_retried(provider, server):
    server.push(json_reply("{not json"), completion_reply("fine"))
    message = fail(provider, ask(stream=False))
    assert message.startswith("openrouter: could not parse the reply as JSON")
    assert "not retried" in message and len(server.requests) == 1


def test_malformed_stream_chunk_is_not_retried(provider, server):
    server.push(raw_stream(["data: {oops"]), stream("fine"))
    assert "could not parse the reply as JSON" in fail(provider, ask())
    assert len(server.requests) == 1


def test_empty_choices_are_retried(provider, server):
    server.push(json_reply({"id": "x", "choices": []}), completion_reply("fine"))
    assert run(provider, ask(stream=False)).text == "fine"


def test_401_fails_at_once_with_a_hint_and_no_key(provider, server, waits):
    server.push(error_reply(401, f"No auth credentials found for {KEY}"))
    message = fail(provider, ask())
    assert message.startswith("openrouter: HTTP 401: No auth credentials found")
    assert "check the API key in OPENROUTER_API_KEY" in message
    assert len(server.requests) == 1 and waits == []
    assert KEY not in repr(provider) and "gpt-4o-mini" in repr(provider)


def test_400_is_not_retried(provider, server):
    server.push(error_reply(400, "This model's maximum context length is 8192 tokens"))
    message = fail(provider, ask())
    assert message == "openrouter: HTTP 400: This model's maximum context length is 8192 tokens"
    assert len(server.requests) == 1


# -- errors inside a 200 stream ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text"),
    [(502, "Upstream error"), (429, "Rate limited"), ("server_error", "Overloaded")],
)
def test_transient_error_inside_stream_is_retried(provider, server, code, text):
    server.push(stream_error(code, text), stream("recovered"))
    assert run(provider, ask()).text == "recovered"
    assert len(server.requests) == 2


def test_permanent_error_inside_stream(provider, server):
    server.push(stream_error(400, "Invalid tool schema"))
    assert fail(provider, ask()) == "openrouter: error 400: Invalid tool schema"
    assert len(server.requests) == 1


def test_error_object_in_a_200_json_body(provider, server):
    server.push(json_reply(error_object(502, "Provider returned error")), completion_reply("ok"))
    assert run(provider, ask(stream=False)).text == "ok"


def test_error_after_text_is_not_retried(provider, server):
    server.push(stream_error(502, "Upstream died", text_before="Partial "), stream("again"))
    deltas: list[str] = []
    message = fail(provider, ask(), deltas)
    assert "broke off after text was shown" in message and "error 502" in message
    assert deltas == ["Partial "] and len(server.requests) == 1


# -- streams that die half way -------------------------------------------------------


def test_stream_cut_before_text_is_asked_again_without_streaming(provider, server):
    server.push(cut_stream(""), completion_reply("whole"))
    notices: list[str] = []
    provider.on_notice = notices.append
    deltas: list[str] = []
    assert run(provider, ask(), deltas).text == "whole"
    assert "".join(deltas) == "whole" and len(server.requests) == 2
    assert server.requests[1].body.get("stream") is None
    assert len(notices) == 1 and "without streaming" in notices[0]


def test_stream_cut_after_text_is_not_repeated(provider, server):
    server.push(cut_stream("Hello there", pieces=2), stream("Hello there"))
    deltas: list[str] = []
    message = fail(provider, ask(), deltas)
    assert message.startswith("openrouter: the stream broke off after text was shown")
    assert "".join(deltas) == "Hello there" and len(server.requests) == 1


def test_stall_mid_stream_after_text(provider, server):
    server.push(raw_stream([chunk({"content": "Thinking"}), chunk({"content": "..."})], delay=2.0))
    deltas: list[str] = []
    message = fail(provider, ask(), deltas)
    assert "stalled: no data for 0.5 s" in message and deltas == ["Thinking"]
    assert len(server.requests) == 1


# -- cancellation ------------------------------------------------------------------


def test_cancellation_closes_the_request_promptly(provider, server):
    server.push(Reply(stall=3.0), stream("next"))
    provider.timeout = 5.0

    async def go() -> float:
        task = asyncio.create_task(provider.complete(ask()))
        await asyncio.sleep(0.2)
        # httpx2 internals, only to show the connection itself was dropped, not pooled.
        pool = getattr(getattr(provider._client, "_transport", None), "_pool", None)
        assert pool is None or len(pool.connections) == 1
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        elapsed = time.monotonic() - started
        assert pool is None or pool.connections == []
        assert (await provider.complete(ask())).text == "next"
        await provider.aclose()
        return elapsed

    assert asyncio.run(go()) < 0.5
    assert len(server.requests) == 2


# -- resolve and the providers it makes ---------------------------------------------------


def test_model_with_slash_and_colon(env, server, waits):
    provider = build("openrouter:meta-llama/llama-3:free", server.url + "/api/v1", waits)
    assert provider.name == "openrouter" and provider.model == "meta-llama/llama-3:free"
    server.push(stream("ok"))
    run(provider, ask())
    assert server.requests[0].body["model"] == "meta-llama/llama-3:free"


def test_ollama_without_a_key(env, server, waits):
    provider = build("ollama:qwen2.5", server.url + "/v1", waits)
    server.push(stream("local"))
    assert run(provider, ask()).text == "local"
    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions" and sent.body["model"] == "qwen2.5"
    assert header(sent, "Authorization") is None and header(sent, "X-Title") is None


def test_unknown_provider_with_a_base_url(env, server, waits):
    provider = build("acme:my-model", server.url + "/v1", waits)
    server.push(completion_reply("vllm says hi"))
    assert run(provider, ask(stream=False)).text == "vllm says hi"
    assert provider.name == "acme"


def test_missing_key_names_the_variable(env):
    env.delenv("OPENROUTER_API_KEY")
    with pytest.raises(ProviderError, match="OPENROUTER_API_KEY"):
        resolve("openrouter:openai/gpt-4o-mini")


def test_unknown_provider_without_base_url(env):
    with pytest.raises(ProviderError, match="unknown provider 'acme'.*--base-url"):
        resolve("acme:model")


def test_key_that_cannot_be_a_header(env, server):
    bad = "sk-or-v1-SECRET PART"
    env.setenv("OPENROUTER_API_KEY", bad)
    with pytest.raises(ProviderError, match="OPENROUTER_API_KEY") as info:
        make_provider(resolve("openrouter:x/y", base_url=server.url))
    assert bad not in str(info.value)


def test_bad_base_url_fails_without_retries(env, waits):
    provider = build("openrouter:x/y", "ftp://example.invalid/api", waits)
    assert "cannot use base URL" in fail(provider, ask())
    assert waits == []
