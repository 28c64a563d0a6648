"""The Responses provider (DashScope, OpenAI) against a scripted HTTP server: text,
function calls, hosted MCP calls, what is sent (input items, mcp tool entries, headers),
and the faults."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from fakes.responses_wire import (
    error_event,
    error_reply,
    failed_event,
    function_call_item,
    mcp_call_item,
    mcp_list_tools_item,
    message_item,
    response_reply,
    stream_events,
    stream_reply,
)
from fakes.scripted_http import Reply, ScriptedServer, json_reply, sse_reply

from mcp_magic.agent.providers import make_provider, resolve
from mcp_magic.agent.providers.base import (
    HostedCall,
    HostedMcpServer,
    Message,
    ProviderError,
    Request,
    ToolCall,
    ToolSpec,
)
from mcp_magic.agent.providers.http import RetryPolicy
from mcp_magic.agent.providers.responses import ResponsesProvider

KEY = "fake-dashscope-test-key"
OPENAI_KEY = "fake-openai-test-key"
TOKEN = "mcp-token-abcdef123456"
FAST = RetryPolicy(retries=2, initial=0.01, cap=0.02)
TOOLS = [ToolSpec("db__query", "Run SQL", {"type": "object", "properties": {"sql": {}}})]
FETCH = HostedMcpServer(
    "fetch",
    "https://mcp.example.com/fetch/sse",
    description="Fetches web pages.",
    headers={"Authorization": f"Bearer {TOKEN}"},
)


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    # One server for the module: shutting one down costs 0.5 s (serve_forever's poll).
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def server(scripted, monkeypatch, tmp_path) -> ScriptedServer:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    scripted.replies.clear()
    scripted.requests.clear()
    return scripted


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def provider(server: ScriptedServer, spec: str = "dashscope-responses:qwen3.5-plus", **kwargs):
    config = resolve(spec, base_url=server.url)
    built = make_provider(config)
    assert isinstance(built, ResponsesProvider)
    if kwargs:
        built = ResponsesProvider(config, **{"retry_policy": FAST, **kwargs})
    return built


def run(prov: ResponsesProvider, request: Request, deltas: list[str] | None = None):
    async def go():
        try:
            return await prov.complete(request, deltas.append if deltas is not None else None)
        finally:
            await prov.aclose()

    return asyncio.run(go())


def ask(text: str = "What is new today?", **kwargs) -> Request:
    return Request(messages=[Message("user", text)], **kwargs)


def test_dashscope_streamed_text_with_hosted_calls_and_what_was_sent(server):
    items = [
        mcp_list_tools_item("fetch", ["fetch"]),
        mcp_call_item("fetch", "fetch", {"url": "https://news.example"}, output="# News"),
    ]
    server.push(stream_reply(["Today: ", "news."], items=items, usage=(120, 30)))
    deltas: list[str] = []
    request = ask(system="Be brief.", tools=TOOLS, hosted_servers=[FETCH], temperature=0.1)
    turn = run(provider(server), request, deltas)

    assert deltas == ["Today: ", "news."]
    assert turn.text == "Today: news."
    assert turn.tool_calls == []
    assert turn.hosted_calls == [
        HostedCall("fetch", "fetch", '{"url": "https://news.example"}', "# News", None)
    ]
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (120, 30)
    assert turn.stop_reason == "completed"
    assert [(e["wire"], e["index"], e["item"]["type"]) for e in turn.extra] == [
        ("responses", 0, "mcp_list_tools"),
        ("responses", 1, "mcp_call"),
    ]

    sent = server.requests[0]
    assert sent.path == "/responses"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = sent.body
    assert body["model"] == "qwen3.5-plus"
    assert body["stream"] is True
    assert body["temperature"] == 0.1
    assert "instructions" not in body  # DashScope: the system prompt is an input message
    assert body["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is new today?"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "name": "db__query",
            "description": "Run SQL",
            "parameters": TOOLS[0].parameters,
            "strict": False,
        },
        {
            "type": "mcp",
            "server_label": "fetch",
            "server_protocol": "sse",
            "server_description": "Fetches web pages.",
            "server_url": "https://mcp.example.com/fetch/sse",
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "require_approval": "never",
        },
    ]


def test_openai_uses_instructions_and_allowed_tools(server):
    server.push(stream_reply(["hi"]))
    hosted = HostedMcpServer("git", "https://git.example/mcp", allowed_tools=["log", "diff"])
    run(
        provider(server, "openai-responses:gpt-5-mini"), ask(system="Sys.", hosted_servers=[hosted])
    )
    sent = server.requests[0]
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent.body["instructions"] == "Sys."
    assert sent.body["input"] == [{"role": "user", "content": "What is new today?"}]
    assert sent.body["tools"] == [
        {
            "type": "mcp",
            "server_label": "git",
            "server_url": "https://git.example/mcp",
            "require_approval": "never",
            "allowed_tools": ["log", "diff"],
        }
    ]


def test_function_calls_and_the_round_trip_of_call_ids_and_hosted_items(server):
    items = [
        mcp_call_item("fetch", "fetch", {"url": "u"}, output="page"),
        function_call_item("call_1", "db__query", {"sql": "select 1"}),
        function_call_item("call_2", "db__query", {"sql": "select 2"}),
    ]
    server.push(stream_reply(None, items=items))
    turn = run(provider(server), ask(tools=TOOLS, hosted_servers=[FETCH]))
    assert [(c.id, c.name, json.loads(c.arguments)) for c in turn.tool_calls] == [
        ("call_1", "db__query", {"sql": "select 1"}),
        ("call_2", "db__query", {"sql": "select 2"}),
    ]
    assert turn.text == ""
    assert [h.tool for h in turn.hosted_calls] == ["fetch"]

    server.push(stream_reply(["Both done."]))
    history = [
        Message("user", "q"),
        Message("assistant", turn.text, tool_calls=turn.tool_calls, extra=turn.extra),
        Message("tool", "1", tool_call_id="call_1", name="db__query"),
        Message("tool", "Error: no such table", tool_call_id="call_2", name="db__query"),
    ]
    turn2 = run(provider(server), Request(messages=history, tools=TOOLS))
    assert turn2.text == "Both done."
    sent = server.requests[1].body["input"]
    assert sent[0] == {"role": "user", "content": "q"}
    assert sent[1] == items[0]  # the hosted call goes back verbatim, in its place
    assert sent[2:4] == [
        {"type": "function_call", "call_id": "call_1", "name": "db__query",
         "arguments": '{"sql": "select 1"}'},
        {"type": "function_call", "call_id": "call_2", "name": "db__query",
         "arguments": '{"sql": "select 2"}'},
    ]  # fmt: skip
    assert sent[4:] == [
        {"type": "function_call_output", "call_id": "call_1", "output": "1"},
        {"type": "function_call_output", "call_id": "call_2", "output": "Error: no such table"},
    ]
    calls = [i["call_id"] for i in sent if i.get("type") == "function_call"]
    outputs = [i["call_id"] for i in sent if i.get("type") == "function_call_output"]
    assert calls == outputs


def test_assistant_text_goes_back_and_replay_can_be_turned_off(server):
    server.push(stream_reply(["ok"]))
    extra = [{"wire": "responses", "index": 0, "item": mcp_call_item("fetch", "fetch", {})}]
    foreign = [{"wire": "anthropic", "index": 0, "block": {"type": "thinking"}}]
    history = [
        Message("user", "q"),
        Message("assistant", "North.", extra=extra + foreign),
        Message("user", "why?"),
    ]
    run(provider(server, replay_items=False), Request(messages=history))
    assert server.requests[0].body["input"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "North."},
        {"role": "user", "content": "why?"},
    ]


def test_non_streamed_reply(server):
    output = [
        mcp_call_item("fetch", "fetch", {"url": "u"}, error="connection refused"),
        message_item("Could not fetch it."),
    ]
    server.push(response_reply(output, usage=(50, 8)))
    deltas: list[str] = []
    turn = run(provider(server), ask(stream=False, max_tokens=256), deltas)
    assert deltas == ["Could not fetch it."]  # shown once, all at once
    assert turn.text == "Could not fetch it."
    assert turn.hosted_calls[0].error == "connection refused"
    assert turn.hosted_calls[0].output is None
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (50, 8)
    body = server.requests[0].body
    assert body["stream"] is False
    assert body["max_output_tokens"] == 256


def test_completed_without_output_uses_the_done_items(server):
    items = [function_call_item("call_7", "db__query", {"sql": "x"})]
    server.push(sse_reply(stream_events(["Let me check."], items=items, completed_output=False)))
    turn = run(provider(server), ask(tools=TOOLS))
    assert turn.text == "Let me check."
    assert [c.id for c in turn.tool_calls] == ["call_7"]
    assert turn.usage.output_tokens == 5


def test_more_hosted_servers_than_dashscope_allows_is_an_error(server):
    servers = [HostedMcpServer(f"s{i}", f"https://m.example/{i}/sse") for i in range(11)]
    with pytest.raises(ProviderError, match="at most 10 hosted MCP servers") as caught:
        run(provider(server), ask(hosted_servers=servers))
    assert "11" in str(caught.value)
    assert server.requests == []

    server.push(stream_reply(["ten is fine"]))
    assert run(provider(server), ask(hosted_servers=servers[:10])).text == "ten is fine"


def test_429_5xx_and_failed_events_are_retried(server):
    server.push(
        error_reply(429, "rate_limit_exceeded", "Too many requests", headers={"Retry-After": "3"}),
        error_reply(503, "ServiceUnavailable", "try later"),
        sse_reply(stream_events(end=False) + [failed_event()]),
        sse_reply([error_event("server_error", "The engine is overloaded")]),
        stream_reply(["fine"]),
    )
    sleeps = Sleeps()
    deltas: list[str] = []
    turn = run(provider(server, sleep=sleeps, retry_policy=RetryPolicy(retries=4)), ask(), deltas)
    assert turn.text == "fine"
    assert deltas == ["fine"]
    assert len(server.requests) == 5
    assert sleeps[0] == 3.0
    assert len(sleeps) == 4


def test_overloaded_exhausted_is_one_line(server):
    for _ in range(3):
        server.push(sse_reply([error_event("server_error", "Model is\noverloaded")]))
    with pytest.raises(ProviderError) as caught:
        run(provider(server, sleep=Sleeps()), ask())
    message = str(caught.value)
    assert "\n" not in message
    assert "overloaded" in message
    assert "gave up after 3 attempts" in message
    assert len(server.requests) == 3


def test_a_failed_response_that_is_not_transient_is_not_retried(server):
    server.push(sse_reply([failed_event("invalid_request_error", "bad tool schema")]))
    with pytest.raises(ProviderError, match="invalid_request_error: bad tool schema"):
        run(provider(server, sleep=Sleeps()), ask())
    assert len(server.requests) == 1


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
        response_reply([message_item("ok")]),
    )
    with pytest.raises(ProviderError) as caught:
        run(provider(server, sleep=Sleeps()), ask(stream=False))
    assert "could not parse the reply as JSON" in str(caught.value)
    assert len(server.requests) == 1


def test_401_names_the_key_problem_without_any_secret(server):
    echo = f"Invalid API-key provided: {KEY}; mcp headers Bearer {TOKEN}"
    server.push(error_reply(401, "InvalidApiKey", echo))
    prov = provider(server, sleep=Sleeps())
    with pytest.raises(ProviderError) as caught:
        run(prov, ask(hosted_servers=[FETCH]))
    message = str(caught.value)
    assert "401" in message
    assert "check the API key" in message
    assert KEY not in message
    assert TOKEN not in message
    assert KEY not in repr(prov)
    assert TOKEN not in repr(ask(hosted_servers=[FETCH]))
    assert len(server.requests) == 1


def test_failure_after_text_is_not_retried(server):
    events = stream_events(["Half an ans"], end=False) + [error_event("server_error", "boom")]
    server.push(sse_reply(events), stream_reply(["never"]))
    deltas: list[str] = []
    with pytest.raises(ProviderError, match="after text was shown"):
        run(provider(server, sleep=Sleeps()), ask(), deltas)
    assert deltas == ["Half an ans"]
    assert len(server.requests) == 1


def test_stream_cut_before_text_is_retried_after_text_is_not(server):
    server.push(sse_reply(stream_events(end=False)), stream_reply(["second"]))
    assert run(provider(server, sleep=Sleeps()), ask()).text == "second"
    assert len(server.requests) == 2

    server.push(sse_reply(stream_events(["cut"], end=False)), stream_reply(["never"]))
    with pytest.raises(ProviderError, match="response.completed"):
        run(provider(server, sleep=Sleeps()), ask())
    assert len(server.requests) == 3


def test_cancellation_closes_the_stream_promptly(server):
    server.push(stream_reply([f"w{i} " for i in range(50)], delay=0.1))
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


def test_tool_call_message_round_trip_without_extra(server):
    server.push(stream_reply(["ok"]))
    history = [
        Message("user", "q"),
        Message("assistant", "Checking.", tool_calls=[ToolCall("c1", "db__query", "{bad")]),
        Message("tool", "Error: invalid JSON", tool_call_id="c1"),
    ]
    run(provider(server), Request(messages=history))
    assert server.requests[0].body["input"][1:] == [
        {"role": "assistant", "content": "Checking."},
        {"type": "function_call", "call_id": "c1", "name": "db__query", "arguments": "{bad"},
        {"type": "function_call_output", "call_id": "c1", "output": "Error: invalid JSON"},
    ]
