"""The Anthropic Messages provider against a scripted HTTP server: what comes back and
what is sent (alternation, tool_use ↔ tool_result ids, headers), and the faults."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from fakes.anthropic_wire import (
    error_event,
    error_reply,
    message_reply,
    stream_events,
    stream_reply,
    text_block,
    tool_use_block,
)
from fakes.scripted_http import Reply, ScriptedServer, json_reply, sse_reply

from mcp_magic.agent.providers import make_provider, resolve
from mcp_magic.agent.providers.anthropic import AnthropicProvider
from mcp_magic.agent.providers.base import Message, ProviderError, Request, ToolCall, ToolSpec
from mcp_magic.agent.providers.http import RetryPolicy

KEY = "fake-ant-test-key-abcdef"
FAST = RetryPolicy(retries=2, initial=0.01, cap=0.02)
TOOLS = [
    ToolSpec(
        "db__query",
        "Run SQL",
        {"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]},
    ),
    ToolSpec("files__list", "List files", {}),
]


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    # One server for the module: shutting one down costs 0.5 s (serve_forever's poll).
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def server(scripted, monkeypatch, tmp_path) -> ScriptedServer:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    scripted.replies.clear()
    scripted.requests.clear()
    return scripted


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def provider(server: ScriptedServer, **kwargs) -> AnthropicProvider:
    config = resolve("anthropic:claude-sonnet-4-5", base_url=server.url + "/v1")
    built = make_provider(config)
    assert isinstance(built, AnthropicProvider)
    if kwargs:
        built = AnthropicProvider(config, **{"retry_policy": FAST, **kwargs})
    return built


def run(prov: AnthropicProvider, request: Request, deltas: list[str] | None = None):
    async def go():
        try:
            return await prov.complete(request, deltas.append if deltas is not None else None)
        finally:
            await prov.aclose()

    return asyncio.run(go())


def ask(text: str = "Which region?", **kwargs) -> Request:
    return Request(messages=[Message("user", text)], **kwargs)


def test_streamed_text_usage_and_what_was_sent(server):
    server.push(stream_reply(["Hel", "lo ", "world"], usage=(42, 7)))
    deltas: list[str] = []
    turn = run(provider(server), ask(system="Be brief.", tools=TOOLS, temperature=0.2), deltas)

    assert deltas == ["Hel", "lo ", "world"]
    assert turn.text == "Hello world"
    assert turn.tool_calls == []
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (42, 7)
    assert turn.stop_reason == "end_turn"

    sent = server.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"].startswith("application/json")
    assert "authorization" not in {k.lower() for k in sent.headers}
    body = sent.body
    assert body["model"] == "claude-sonnet-4-5"
    assert body["max_tokens"] == 4096
    assert body["stream"] is True
    assert body["temperature"] == 0.2
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Which region?"}]}
    ]
    assert body["tools"][0] == {
        "name": "db__query",
        "description": "Run SQL",
        "input_schema": TOOLS[0].parameters,
    }
    assert body["tools"][1]["input_schema"] == {"type": "object", "properties": {}}


def test_streamed_tool_calls_with_json_split_over_deltas(server):
    calls = [
        ("toolu_1", "db__query", {"sql": "select region, sum(revenue) from sales group by 1"}),
        ("toolu_2", "files__list", {"path": "reports", "depth": 2}),
    ]
    server.push(stream_reply(["Let me look."], tool_calls=calls, json_parts=4))
    deltas: list[str] = []
    turn = run(provider(server), ask(tools=TOOLS), deltas)

    assert deltas == ["Let me look."]
    assert turn.text == "Let me look."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in turn.tool_calls] == calls
    assert turn.stop_reason == "tool_use"
    assert turn.extra == []


def test_truncated_tool_json_is_reported_raw_and_sent_back_as_empty_input(server):
    events = stream_events(tool_calls=[("toolu_9", "db__query", '{"sql": "sel')])
    server.push(sse_reply(events))
    turn = run(provider(server), ask(tools=TOOLS))
    assert turn.tool_calls[0].arguments == '{"sql": "sel'  # the loop reports the bad JSON

    server.push(stream_reply(["ok"]))
    history = [
        Message("user", "q"),
        Message("assistant", "", tool_calls=turn.tool_calls),
        Message("tool", "Error: invalid JSON arguments", tool_call_id="toolu_9"),
    ]
    run(provider(server), Request(messages=history))
    assistant = server.requests[1].body["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_9", "name": "db__query", "input": {}}],
    }


def test_conversation_alternates_and_tool_ids_match(server):
    server.push(stream_reply(["done"]))
    history = [
        Message("system", "Extra system note."),
        Message("user", "Compare regions"),
        Message(
            "assistant",
            "Checking both.",
            tool_calls=[
                ToolCall("toolu_a", "db__query", '{"sql": "select 1"}'),
                ToolCall("toolu_b", "files__list", "{not json"),
            ],
        ),
        Message("tool", "[{'x': 1}]", tool_call_id="toolu_a", name="db__query"),
        Message("tool", "Error: invalid JSON arguments", tool_call_id="toolu_b"),
        Message("assistant", "North wins."),
        Message("user", "Why?"),
    ]
    run(provider(server), Request(messages=history, system="Sys."))
    body = server.requests[0].body

    assert body["system"] == "Sys.\n\nExtra system note."
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    assistant, results = body["messages"][1], body["messages"][2]
    assert assistant["content"] == [
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_a", "name": "db__query", "input": {"sql": "select 1"}},
        {"type": "tool_use", "id": "toolu_b", "name": "files__list", "input": {}},
    ]
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "[{'x': 1}]"},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_b",
            "content": "Error: invalid JSON arguments",
            "is_error": True,
        },
    ]
    use_ids = [b["id"] for b in assistant["content"] if b["type"] == "tool_use"]
    assert use_ids == [b["tool_use_id"] for b in results["content"]]


def test_tool_results_followed_by_a_user_prompt_merge_into_one_message(server):
    server.push(stream_reply(["ok"]))
    history = [
        Message("user", "q"),
        Message("assistant", "", tool_calls=[ToolCall("t1", "db__query", "{}")]),
        Message("tool", "rows", tool_call_id="t1"),
        Message("user", "and now?"),
    ]
    run(provider(server), Request(messages=history))
    messages = server.requests[0].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["type"] for b in messages[2]["content"]] == ["tool_result", "text"]
    assert messages[1]["content"] == [
        {"type": "tool_use", "id": "t1", "name": "db__query", "input": {}}
    ]


def test_non_streamed_reply(server):
    server.push(
        message_reply(
            [text_block("Looking."), tool_use_block("toolu_1", "db__query", {"sql": "x"})],
            stop_reason="tool_use",
            usage=(30, 12),
        )
    )
    deltas: list[str] = []
    turn = run(provider(server), ask(stream=False, max_tokens=100), deltas)
    assert deltas == ["Looking."]  # shown once, all at once
    assert turn.text == "Looking."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in turn.tool_calls] == [
        ("toolu_1", "db__query", {"sql": "x"})
    ]
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (30, 12)
    body = server.requests[0].body
    assert "stream" not in body
    assert body["max_tokens"] == 100


def test_thinking_blocks_go_back_verbatim_via_extra(server):
    server.push(
        stream_reply(
            None, tool_calls=[("toolu_1", "db__query", {"sql": "q"})], thinking="Think hard"
        )
    )
    turn = run(provider(server), ask(tools=TOOLS))
    thinking = {"type": "thinking", "thinking": "Think hard", "signature": "sig-1"}
    assert turn.extra == [{"wire": "anthropic", "index": 0, "block": thinking}]
    assert turn.text == ""

    server.push(stream_reply(["ok"]))
    history = [
        Message("user", "q"),
        Message("assistant", turn.text, tool_calls=turn.tool_calls, extra=turn.extra),
        Message("tool", "rows", tool_call_id="toolu_1"),
    ]
    run(provider(server), Request(messages=history))
    content = server.requests[1].body["messages"][1]["content"]
    assert content[0] == thinking
    assert content[1]["type"] == "tool_use"
    assert content[1]["id"] == "toolu_1"


def test_extra_of_another_wire_is_ignored(server):
    server.push(stream_reply(["ok"]))
    foreign = [{"wire": "responses", "index": 0, "item": {"type": "mcp_call"}}]
    history = [Message("user", "q"), Message("assistant", "a", extra=foreign)]
    run(provider(server), Request(messages=history + [Message("user", "more")]))
    assert server.requests[0].body["messages"][1]["content"] == [{"type": "text", "text": "a"}]


def test_429_5xx_and_overloaded_event_are_retried(server):
    server.push(
        error_reply(429, "rate_limit_error", "slow down", headers={"Retry-After": "2"}),
        error_reply(500, "api_error", "Internal server error"),
        sse_reply([stream_events()[0], error_event()]),
        stream_reply(["fine"]),
    )
    sleeps = Sleeps()
    prov = provider(server, sleep=sleeps, retry_policy=RetryPolicy(retries=3, initial=0.5))
    deltas: list[str] = []
    turn = run(prov, ask(), deltas)
    assert turn.text == "fine"
    assert deltas == ["fine"]
    assert len(server.requests) == 4
    assert sleeps[0] == 2.0  # Retry-After honoured
    assert len(sleeps) == 3


def test_overloaded_exhausted_is_one_line(server):
    for _ in range(3):
        server.push(error_reply(529, "overloaded_error", "Overloaded"))
    with pytest.raises(ProviderError) as caught:
        run(provider(server, sleep=Sleeps()), ask())
    message = str(caught.value)
    assert "\n" not in message
    assert "Overloaded" in message
    assert "gave up after 3 attempts" in message
    assert message.startswith("anthropic:claude-sonnet-4-5")
    assert len(server.requests) == 3


def test_stalled_connection_is_retried(server):
    server.push(Reply(stall=1.5, body={}), stream_reply(["awake"]))
    started = time.monotonic()
    turn = run(provider(server, timeout=0.3), ask())
    assert turn.text == "awake"
    assert len(server.requests) == 2
    assert time.monotonic() - started < 1.4


def test_malformed_json_is_not_retried(server):
    server.push(
        json_reply("{truncated", content_type="application/json"),
        message_reply([text_block("ok")]),
    )
    with pytest.raises(ProviderError) as caught:
        run(provider(server, sleep=Sleeps()), ask(stream=False))
    assert "could not parse the reply as JSON" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert len(server.requests) == 1  # the same request would get the same bytes


def test_401_names_the_key_problem_without_the_key(server):
    server.push(error_reply(401, "authentication_error", f"invalid x-api-key {KEY}"))
    prov = provider(server, sleep=Sleeps())
    with pytest.raises(ProviderError) as caught:
        run(prov, ask())
    message = str(caught.value)
    assert "401" in message
    assert "check the API key" in message
    assert KEY not in message
    assert "\n" not in message
    assert KEY not in repr(prov)
    assert len(server.requests) == 1


def test_stream_broken_after_text_is_not_retried(server):
    server.push(sse_reply(stream_events(["partial "], end=False)), stream_reply(["never"]))
    deltas: list[str] = []
    with pytest.raises(ProviderError) as caught:
        run(provider(server, sleep=Sleeps()), ask(), deltas)
    assert deltas == ["partial "]
    assert "after text was shown" in str(caught.value)
    assert len(server.requests) == 1


def test_overloaded_event_after_text_is_not_retried(server):
    events = stream_events(["half"], end=False) + [error_event()]
    server.push(sse_reply(events), stream_reply(["never"]))
    with pytest.raises(ProviderError, match="Overloaded"):
        run(provider(server, sleep=Sleeps()), ask())
    assert len(server.requests) == 1


def test_stream_cut_before_any_text_is_retried(server):
    server.push(sse_reply(stream_events(end=False)), stream_reply(["second"]))
    turn = run(provider(server, sleep=Sleeps()), ask())
    assert turn.text == "second"
    assert len(server.requests) == 2


def test_cancellation_closes_the_stream_promptly(server):
    chunks = [f"w{i} " for i in range(50)]
    server.push(stream_reply(chunks, delay=0.1))
    prov = provider(server)

    async def go() -> float:
        first = asyncio.Event()
        task = asyncio.create_task(prov.complete(ask(), lambda _text: first.set()))
        await asyncio.wait_for(first.wait(), 5)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await prov.aclose()
        return time.monotonic() - started

    assert asyncio.run(go()) < 0.5
