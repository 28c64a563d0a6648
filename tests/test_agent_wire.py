"""The whole agent loop through real HTTP: Agent + a real provider + real MCP servers.

A `ScriptedServer` on 127.0.0.1 plays the model for each wire format (OpenAI chat via
`openrouter:`, Anthropic Messages, the Responses API); the fault server (stdio), the
built-in data server and the fault server over streamable HTTP really run the tools.
The assertions are about what goes back over the wire: tool results under the right
ids and in the right order, errors the model is told about, a conversation that stays
valid after faults, and hosted MCP entries for the Responses API.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fakes import anthropic_wire as aw
from fakes import openai_wire as ow
from fakes import responses_wire as rw
from fakes.scripted_http import Reply, ScriptedServer

from mcp_magic.agent.events import Notice, TextDelta, ToolCallFinished, ToolCallStarted, UsageReport
from mcp_magic.agent.loop import Agent, AgentOptions, RunResult
from mcp_magic.agent.providers import make_provider, resolve
from mcp_magic.agent.providers.base import ProviderError
from mcp_magic.agent.providers.http import RetryPolicy
from mcp_magic.host.config import StdioSpec, builtin_spec, http_spec
from mcp_magic.host.sessions import SessionManager

from conftest import FAULT_SERVER

KEYS = {
    "OPENROUTER_API_KEY": "fake-or-wire-test-key",
    "ANTHROPIC_API_KEY": "fake-ant-wire-test-key",
    "OPENAI_API_KEY": "fake-openai-wire-test-key",
    "DASHSCOPE_API_KEY": "fake-dashscope-wire-test-key",
}
TOKEN_VAR = "MCP_MAGIC_WIRE_TOKEN"
FAST = RetryPolicy(retries=2, initial=0.01, cap=0.02)

CallSpec = tuple[str, str, "dict[str, Any] | str"]  # (id, qualified name, arguments)


# -- the three wire formats, seen from the model's side ----------------------------------


class Wire:
    """What a scripted model answers, and how to read what the loop sent it."""

    id: str
    model: str
    path: str
    key_env: str

    def call_reply(self, calls: list[CallSpec], stream: bool, text: str = "") -> Reply:
        """A reply asking for `calls`, after some `text` if given."""
        raise NotImplementedError

    def text_reply(self, text: str, stream: bool) -> Reply:
        raise NotImplementedError

    def overloaded(self) -> Reply:
        raise NotImplementedError

    def rate_limited(self, seconds: str) -> Reply:
        raise NotImplementedError

    def offered(self, body: dict) -> list[str]:
        """Names of the function tools offered."""
        raise NotImplementedError

    def system(self, body: dict) -> str:
        raise NotImplementedError

    def prompts(self, body: dict) -> list[str]:
        raise NotImplementedError

    def assistant_texts(self, body: dict) -> list[str]:
        raise NotImplementedError

    def calls(self, body: dict) -> list[str]:
        """Ids of the tool calls in the conversation sent, in order."""
        raise NotImplementedError

    def results(self, body: dict) -> list[tuple[str, str]]:
        """(call id, result text) of every tool result sent, in order."""
        raise NotImplementedError

    def check_valid(self, body: dict) -> None:
        """Assert the conversation obeys the wire's rules: every call answered, in order."""
        raise NotImplementedError


class OpenAIWire(Wire):
    id = "openai-chat"
    model = "openrouter:openai/gpt-4o-mini"
    path = "/chat/completions"
    key_env = "OPENROUTER_API_KEY"

    def call_reply(self, calls, stream, text=""):
        wire_calls = [ow.Call(i, name, args) for i, name, args in calls]
        if stream:
            return ow.stream(text, wire_calls, usage_block=ow.usage(12, 4), comments=True)
        return ow.completion_reply(text or None, wire_calls, usage_block=ow.usage(12, 4))

    def text_reply(self, text, stream):
        if stream:
            return ow.stream(text, usage_block=ow.usage(20, 6, cost=0.0001), comments=True)
        return ow.completion_reply(text, usage_block=ow.usage(20, 6, cost=0.0001))

    def overloaded(self):
        return ow.error_reply(503, "Provider returned error: overloaded")

    def rate_limited(self, seconds):
        return ow.error_reply(429, "Rate limit exceeded", retry_after=seconds)

    def offered(self, body):
        return [t["function"]["name"] for t in body.get("tools", []) if t["type"] == "function"]

    def system(self, body):
        first = body["messages"][0]
        assert first["role"] == "system"
        return first["content"]

    def prompts(self, body):
        return [m["content"] for m in body["messages"] if m["role"] == "user"]

    def assistant_texts(self, body):
        return [m["content"] for m in body["messages"] if m["role"] == "assistant"]

    def calls(self, body):
        return [
            c["id"]
            for m in body["messages"]
            if m["role"] == "assistant"
            for c in m.get("tool_calls") or []
        ]

    def results(self, body):
        return [(m["tool_call_id"], m["content"]) for m in body["messages"] if m["role"] == "tool"]

    def check_valid(self, body):
        messages = body["messages"]
        for position, message in enumerate(messages):
            if message["role"] == "tool":
                before = messages[position - 1]
                assert before["role"] in ("assistant", "tool"), messages
            if message["role"] != "assistant" or not message.get("tool_calls"):
                continue
            ids = [c["id"] for c in message["tool_calls"]]
            following = messages[position + 1 : position + 1 + len(ids)]
            assert [m["role"] for m in following] == ["tool"] * len(ids), messages
            assert [m["tool_call_id"] for m in following] == ids


class AnthropicWire(Wire):
    id = "anthropic"
    model = "anthropic:claude-sonnet-4-5"
    path = "/messages"
    key_env = "ANTHROPIC_API_KEY"

    def call_reply(self, calls, stream, text=""):
        chunks = aw.split(text, 2) if text else None
        if stream:
            return aw.stream_reply(text_chunks=chunks, tool_calls=list(calls), usage=(12, 4))
        for _, _, args in calls:
            assert isinstance(args, dict), "a non-streamed tool_use input is always an object"
        blocks = [aw.text_block(text)] if text else []
        blocks += [aw.tool_use_block(i, name, args) for i, name, args in calls]
        return aw.message_reply(blocks, stop_reason="tool_use", usage=(12, 4))

    def text_reply(self, text, stream):
        if stream:
            return aw.stream_reply(text_chunks=aw.split(text, 3), usage=(20, 6))
        return aw.message_reply([aw.text_block(text)], usage=(20, 6))

    def overloaded(self):
        return aw.error_reply(529, "overloaded_error", "Overloaded")

    def rate_limited(self, seconds):
        return aw.error_reply(
            429, "rate_limit_error", "Rate limited", headers={"retry-after": seconds}
        )

    def offered(self, body):
        return [t["name"] for t in body.get("tools", [])]

    def system(self, body):
        return body["system"]

    def prompts(self, body):
        return [
            b["text"]
            for m in body["messages"]
            if m["role"] == "user"
            for b in m["content"]
            if b["type"] == "text"
        ]

    def assistant_texts(self, body):
        return [
            b["text"]
            for m in body["messages"]
            if m["role"] == "assistant"
            for b in m["content"]
            if b["type"] == "text"
        ]

    def calls(self, body):
        return [
            b["id"]
            for m in body["messages"]
            if m["role"] == "assistant"
            for b in m["content"]
            if b["type"] == "tool_use"
        ]

    def result_blocks(self, body) -> list[dict]:
        return [
            b
            for m in body["messages"]
            if m["role"] == "user"
            for b in m["content"]
            if b["type"] == "tool_result"
        ]

    def results(self, body):
        return [(b["tool_use_id"], b.get("content", "")) for b in self.result_blocks(body)]

    def check_valid(self, body):
        messages = body["messages"]
        roles = [m["role"] for m in messages]
        assert roles[0] == "user" and all(a != b for a, b in zip(roles, roles[1:])), roles
        for position, message in enumerate(messages):
            assert message["content"], "Anthropic rejects empty content"
            ids = [b["id"] for b in message["content"] if b["type"] == "tool_use"]
            if message["role"] != "assistant" or not ids:
                continue
            assert all(
                isinstance(b.get("input"), dict)
                for b in message["content"]
                if b["type"] == "tool_use"
            )
            reply = messages[position + 1]["content"]
            leading = reply[: len(ids)]
            assert [b["type"] for b in leading] == ["tool_result"] * len(ids), reply
            assert [b["tool_use_id"] for b in leading] == ids


class ResponsesWire(Wire):
    id = "responses"
    model = "openai-responses:gpt-4.1-mini"
    path = "/responses"
    key_env = "OPENAI_API_KEY"

    def call_reply(self, calls, stream, text=""):
        items = [rw.function_call_item(i, name, args) for i, name, args in calls]
        if stream:
            chunks = aw.split(text, 2) if text else None
            return rw.stream_reply(chunks, items, usage=(12, 4))
        message = [rw.message_item(text)] if text else []
        return rw.response_reply(message + items, usage=(12, 4))

    def text_reply(self, text, stream):
        if stream:
            return rw.stream_reply(text_chunks=aw.split(text, 3), usage=(20, 6))
        return rw.response_reply([rw.message_item(text)], usage=(20, 6))

    def overloaded(self):
        return rw.error_reply(503, "server_error", "The engine is currently overloaded")

    def rate_limited(self, seconds):
        return rw.error_reply(
            429, "rate_limit_exceeded", "Rate limit reached", headers={"Retry-After": seconds}
        )

    def offered(self, body):
        return [t["name"] for t in body.get("tools", []) if t["type"] == "function"]

    def system(self, body):
        return body["instructions"]

    def prompts(self, body):
        return [i["content"] for i in body["input"] if i.get("role") == "user"]

    def assistant_texts(self, body):
        return [i["content"] for i in body["input"] if i.get("role") == "assistant"]

    def calls(self, body):
        return [i["call_id"] for i in body["input"] if i.get("type") == "function_call"]

    def results(self, body):
        return [
            (i["call_id"], i["output"])
            for i in body["input"]
            if i.get("type") == "function_call_output"
        ]

    def check_valid(self, body):
        items = body["input"]
        for position, item in enumerate(items):
            if item.get("type") != "function_call":
                continue
            later = [
                i["call_id"] for i in items[position:] if i.get("type") == "function_call_output"
            ]
            assert later.count(item["call_id"]) == 1, items
        assert self.calls(body) == [call_id for call_id, _ in self.results(body)]


class DashScopeResponsesWire(ResponsesWire):
    id = "dashscope-responses"
    model = "dashscope-responses:qwen3.5-plus"
    key_env = "DASHSCOPE_API_KEY"

    def system(self, body):
        first = body["input"][0]
        assert first["role"] == "system"  # DashScope wants the system prompt as an item
        return first["content"]


OPENAI, ANTHROPIC, RESPONSES = OpenAIWire(), AnthropicWire(), ResponsesWire()
WIRES = [OPENAI, ANTHROPIC, RESPONSES]


def param_id(value: Any) -> str:
    if isinstance(value, Wire):
        return value.id
    return "stream" if value else "json"


# -- fixtures and helpers ------------------------------------------------------------


@pytest.fixture(scope="module")
def secret() -> Iterator[str]:
    """A token only the environment knows; the `web` server's header names `$VAR`."""
    value = "tok-wire-" + os.urandom(8).hex()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN_VAR, value)
        yield value


@pytest.fixture(scope="module")
def manager(fault_http, secret) -> Iterator[SessionManager]:
    manager = SessionManager()
    outcomes = manager.connect_many(
        {
            "f": StdioSpec(sys.executable, (str(FAULT_SERVER),)),
            "data": builtin_spec(),
            "web": http_spec(fault_http, [f"Authorization: Bearer ${TOKEN_VAR}"]),
        }
    )
    assert not [o for o in outcomes.values() if isinstance(o, BaseException)], outcomes
    yield manager
    manager.close()


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    # One server for the module: shutting one down costs 0.5 s (serve_forever's poll).
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def server(scripted, monkeypatch, tmp_path) -> ScriptedServer:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    scripted.replies.clear()
    scripted.requests.clear()
    return scripted


class Sleeps(list):
    """A `sleep` that records the waits instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_agent(
    manager: SessionManager,
    wire: Wire,
    server: ScriptedServer,
    namespace: dict | None = None,
    **tuning: Any,
) -> Agent:
    """An Agent with the real provider for `wire`, pointed at the scripted server.

    `tuning` (retry_policy, sleep, timeout) goes to the provider's constructor; by
    default retries are fast and a hung request fails after 10 s.
    """
    config = resolve(wire.model, base_url=server.url)
    provider = make_provider(config)
    provider = type(provider)(config, **{"retry_policy": FAST, "timeout": 10.0, **tuning})
    return Agent(manager, provider, namespace if namespace is not None else {})


def run(agent: Agent, prompt: str, **options: Any) -> tuple[RunResult, list]:
    events: list = []
    result = agent.manager.run(agent.run(prompt, AgentOptions(**options), events.append))
    return result, events


def body(server: ScriptedServer, index: int) -> dict:
    return server.requests[index].body


def finished(events: list) -> dict[str, ToolCallFinished]:
    return {e.call_id: e for e in events if isinstance(e, ToolCallFinished)}


def assert_every_call_answered(agent: Agent) -> None:
    calls = [c.id for m in agent.messages for c in m.tool_calls]
    answered = [m.tool_call_id for m in agent.messages if m.role == "tool"]
    assert calls == answered


# -- a tool call, round trip ---------------------------------------------------------


@pytest.mark.parametrize(
    "wire, stream",
    [(w, s) for w in WIRES for s in (True, False)] + [(DashScopeResponsesWire(), True)],
    ids=param_id,
)
def test_tool_call_runs_on_the_server_and_its_result_goes_back(manager, server, wire, stream):
    server.push(
        wire.call_reply([("call_1", "f__echo", {"text": "hello over the wire"})], stream),
        wire.text_reply("The server echoed: hello over the wire", stream),
    )
    agent = make_agent(manager, wire, server)
    result, events = run(agent, "Echo something", stream=stream)

    assert result.text == "The server echoed: hello over the wire" and result.steps == 2
    assert [r.path for r in server.requests] == [wire.path, wire.path]
    headers = {k.lower(): v for k, v in server.requests[0].headers.items()}
    assert KEYS[wire.key_env] in (headers.get("authorization", "") + headers.get("x-api-key", ""))
    first, second = body(server, 0), body(server, 1)
    assert bool(first.get("stream")) is stream
    assert {"f__echo", "data__query_db", "web__whoami"} <= set(wire.offered(first))
    assert "Server `f`:" in wire.system(first) and "Server `data`:" in wire.system(first)
    assert wire.results(first) == [] and wire.prompts(first) == ["Echo something"]
    # The tool really ran on the fault server; its answer is sent under the call's id.
    assert wire.calls(second) == ["call_1"]
    assert wire.results(second) == [("call_1", "hello over the wire")]
    wire.check_valid(second)

    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(e.call_id, e.server, e.tool, e.arguments, e.hosted) for e in started] == [
        ("call_1", "f", "echo", {"text": "hello over the wire"}, False)
    ]
    assert finished(events)["call_1"].status == "ok"
    assert finished(events)["call_1"].result == "hello over the wire"
    if stream:
        deltas = [e.text for e in events if isinstance(e, TextDelta)]
        assert "".join(deltas).strip() == result.text
        assert len(deltas) > 1  # streamed in pieces, not in one go
    report = [e for e in events if isinstance(e, UsageReport)][-1]
    assert report.steps == 2 and report.usage.input_tokens == 32


@pytest.mark.parametrize("wire", [OPENAI, ANTHROPIC, RESPONSES], ids=param_id)
def test_answer_is_published_when_not_streaming(manager, server, wire):
    server.push(wire.text_reply("A plain answer.", False))
    result, events = run(make_agent(manager, wire, server), "Hi", stream=False)
    assert result.text == "A plain answer."
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["A plain answer."]


@pytest.mark.parametrize(
    "wire, stream", [(OPENAI, True), (ANTHROPIC, False), (RESPONSES, True)], ids=param_id
)
def test_several_calls_in_one_reply_all_answered_in_order(manager, server, wire, stream):
    server.push(
        wire.call_reply(
            [
                ("c1", "f__sleep", {"seconds": 0.5}),  # finishes last
                ("c2", "data__query_db", {"sql": "select * from regions order by region_id"}),
                ("c3", "f__echo", {"text": "third"}),
            ],
            stream,
            text="Let me do three things.",
        ),
        wire.text_reply("All three are done.", stream),
    )
    namespace: dict = {}
    agent = make_agent(manager, wire, server, namespace)
    result, events = run(agent, "Do three things", stream=stream)

    sent = body(server, 1)
    wire.check_valid(sent)
    assert wire.assistant_texts(sent) == ["Let me do three things."]  # kept with its calls
    assert wire.calls(sent) == ["c1", "c2", "c3"]
    results = wire.results(sent)
    assert [call_id for call_id, _ in results] == ["c1", "c2", "c3"]
    texts = dict(results)
    assert texts["c1"] == "slept 0.5" and texts["c3"] == "third"
    # The table stays in the kernel under a name the model is told (names are handed
    # out per call before the calls run, so this one is `result_2`).
    variable = finished(events)["c2"].variable
    assert variable and f"`{variable}`" in texts["c2"] and "Kenji Watanabe" in texts["c2"]
    assert len(namespace[variable]) == 5 and result.variables.keys() == {variable}
    done = [e.call_id for e in events if isinstance(e, ToolCallFinished)]
    assert sorted(done) == ["c1", "c2", "c3"] and done.index("c3") < done.index("c1")  # concurrent


def test_anthropic_thinking_goes_back_unchanged_before_its_tool_use(manager, server):
    server.push(
        aw.stream_reply(
            thinking="The user wants an echo.",
            tool_calls=[("t1", "f__echo", {"text": "thought"})],
        ),
        ANTHROPIC.text_reply("Done thinking.", True),
    )
    agent = make_agent(manager, ANTHROPIC, server)
    result, _ = run(agent, "Think, then echo")
    assistant = body(server, 1)["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"] == [
        {"type": "thinking", "thinking": "The user wants an echo.", "signature": "sig-1"},
        {"type": "tool_use", "id": "t1", "name": "f__echo", "input": {"text": "thought"}},
    ]
    assert ANTHROPIC.results(body(server, 1)) == [("t1", "thought")]
    assert result.text == "Done thinking."


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.id)
def test_mistaken_calls_are_answered_with_errors_the_model_can_read(manager, server, wire):
    # Streamed: Anthropic can only deliver invalid JSON arguments in `input_json_delta`s.
    server.push(
        wire.call_reply(
            [
                ("b1", "f__echo", '{"text": "unterminated'),
                ("b2", "nosuch__tool", {}),
                ("b3", "f__echo", {"wrong": 1}),
                ("b4", "data__query_db", {"sql": "drop table orders"}),
                ("b5", "f__echo", {"text": "fine"}),
            ],
            True,
        ),
        wire.text_reply("Sorry about those.", True),
    )
    agent = make_agent(manager, wire, server)
    result, events = run(agent, "Try things")

    sent = body(server, 1)
    wire.check_valid(sent)
    results = wire.results(sent)
    assert [call_id for call_id, _ in results] == ["b1", "b2", "b3", "b4", "b5"]
    texts = dict(results)
    expected = {
        "b1": "invalid JSON arguments",
        "b2": "unknown tool 'nosuch__tool'",
        "b3": "'text' is a required property",
        "b4": "read-only",
    }
    for call_id, words in expected.items():
        assert texts[call_id].startswith("Error:") and words in texts[call_id], texts[call_id]
        assert finished(events)[call_id].status == "error"
    assert texts["b5"] == "fine" and finished(events)["b5"].status == "ok"
    if wire is ANTHROPIC:
        flags = {b["tool_use_id"]: b.get("is_error", False) for b in wire.result_blocks(sent)}
        assert flags == {"b1": True, "b2": True, "b3": True, "b4": True, "b5": False}
    assert result.text == "Sorry about those."
    assert manager.sessions["data"].state == "connected"


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.id)
def test_max_steps_stops_and_the_next_run_sends_a_valid_conversation(manager, server, wire):
    server.push(
        wire.call_reply([("m1", "f__echo", {"text": "again"})], False),
        wire.call_reply([("m2", "f__echo", {"text": "and again"})], False),
    )
    agent = make_agent(manager, wire, server)
    result, events = run(agent, "Loop forever", max_steps=2, stream=False)

    assert result.stopped_early and result.steps == 2 and len(server.requests) == 2
    assert any(isinstance(e, Notice) and "2 steps" in e.text for e in events)
    assert_every_call_answered(agent)

    server.push(wire.text_reply("Stopping now.", False))
    result, _ = run(agent, "Just summarise", stream=False)
    sent = body(server, 2)
    wire.check_valid(sent)
    assert wire.results(sent) == [("m1", "again"), ("m2", "and again")]
    assert wire.prompts(sent) == ["Loop forever", "Just summarise"]
    assert result.text == "Stopping now." and not result.stopped_early


# -- transport faults as the loop sees them ------------------------------------------


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.id)
def test_rate_limit_is_retried_after_the_wait_it_asks_for(manager, server, wire):
    server.push(wire.rate_limited("7"), wire.text_reply("Made it.", True))
    sleeps = Sleeps()
    agent = make_agent(manager, wire, server, sleep=sleeps)
    result, events = run(agent, "Hello")

    assert result.text == "Made it." and sleeps == [7.0]  # Retry-After honoured
    assert body(server, 0) == body(server, 1)  # the same request again
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and notices[0].level == "warning"
    assert "429" in notices[0].text and "retrying in 7.0 s" in notices[0].text
    assert KEYS[wire.key_env] not in notices[0].text


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.id)
def test_overloaded_until_retries_run_out_leaves_the_conversation_consistent(manager, server, wire):
    attempts = FAST.retries + 1
    server.push(
        wire.call_reply([("k1", "f__echo", {"text": "kept"})], False),
        *[wire.overloaded() for _ in range(attempts)],
    )
    agent = make_agent(manager, wire, server)
    events: list = []
    with pytest.raises(ProviderError) as failure:
        manager.run(agent.run("first", AgentOptions(stream=False), events.append))
    message = str(failure.value)
    assert "\n" not in message and f"gave up after {attempts} attempts" in message
    assert KEYS[wire.key_env] not in message
    assert len(server.requests) == 1 + attempts
    assert sum(isinstance(e, Notice) for e in events) == FAST.retries
    assert any(isinstance(e, UsageReport) for e in events)  # still reported
    # The call that ran keeps its result; nothing dangles.
    assert [m.role for m in agent.messages] == ["user", "assistant", "tool"]
    assert_every_call_answered(agent)

    # A run that got no reply at all is dropped entirely.
    server.push(*[wire.overloaded() for _ in range(attempts)])
    with pytest.raises(ProviderError):
        run(agent, "second", stream=False)
    assert [m.role for m in agent.messages] == ["user", "assistant", "tool"]

    server.push(wire.text_reply("Back again.", False))
    result, _ = run(agent, "third", stream=False)
    sent = server.requests[-1].body
    wire.check_valid(sent)
    assert wire.prompts(sent) == ["first", "third"]
    assert wire.results(sent) == [("k1", "kept")]
    assert result.text == "Back again."


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.id)
def test_a_stalled_connection_times_out_and_is_retried(manager, server, wire):
    server.push(Reply(stall=3.0), wire.text_reply("After the stall.", True))
    agent = make_agent(manager, wire, server, timeout=0.75)
    result, events = run(agent, "Hello")

    assert result.text == "After the stall." and len(server.requests) == 2
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "timed out" in notices[0]


# -- hosted MCP (Responses API) ------------------------------------------------------


def hosted_entries(sent: dict) -> list[dict]:
    return [t for t in sent.get("tools", []) if t["type"] == "mcp"]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_hosted_mcp_server_is_passed_to_the_provider(manager, server, fault_http, secret, stream):
    items = [
        rw.mcp_list_tools_item("web", ["echo", "sleep", "whoami"]),
        rw.mcp_call_item("web", "echo", {"text": "hosted hi"}, output="hosted hi", id="mcp_1"),
        rw.mcp_call_item("web", "sleep", {"seconds": "x"}, error="invalid arguments", id="mcp_2"),
    ]
    if stream:
        server.push(rw.stream_reply(["The hosted ", "server said hi."], items))
    else:
        server.push(rw.response_reply([*items, rw.message_item("The hosted server said hi.")]))
    agent = make_agent(manager, RESPONSES, server)
    result, events = run(agent, "Ask the web server", hosted="always", stream=stream)

    sent = body(server, 0)
    (entry,) = hosted_entries(sent)
    assert entry["server_label"] == "web" and entry["server_url"] == fault_http
    assert entry["headers"] == {"Authorization": f"Bearer {secret}"}  # $VAR expanded
    assert entry["require_approval"] == "never" and "allowed_tools" not in entry
    assert "Test server" in entry["server_description"]  # the server's instructions
    offered = RESPONSES.offered(sent)
    assert not [n for n in offered if n.startswith("web__")]  # not also as functions
    assert {"f__echo", "data__query_db"} <= set(offered)  # stdio servers stay local

    assert result.text == "The hosted server said hi." and result.steps == 1
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(e.server, e.tool, e.arguments, e.hosted) for e in started] == [
        ("web", "echo", {"text": "hosted hi"}, True),
        ("web", "sleep", {"seconds": "x"}, True),
    ]
    done = finished(events)
    first, second = (done[e.call_id] for e in started)
    assert (first.status, first.result) == ("ok", "hosted hi")
    assert (second.status, second.error) == ("error", "invalid arguments")
    assert secret not in repr([e for e in events if not isinstance(e, ToolCallStarted)])

    # The hosted items go back verbatim, before the answer they led to.
    server.push(RESPONSES.text_reply("Fine.", stream))
    run(agent, "And now?", hosted="always", stream=stream)
    replay = body(server, 1)["input"]
    kinds = [i.get("type") or i.get("role") for i in replay]
    assert kinds == ["user", "mcp_list_tools", "mcp_call", "mcp_call", "assistant", "user"]
    assert [i["id"] for i in replay if i.get("type") == "mcp_call"] == ["mcp_1", "mcp_2"]


def test_hosted_server_gets_only_the_allowed_tools(manager, server):
    server.push(RESPONSES.text_reply("ok", False))
    agent = make_agent(manager, RESPONSES, server)
    run(agent, "hi", hosted="always", stream=False, deny=["web.crash", "web.add_tool"])
    (entry,) = hosted_entries(body(server, 0))
    assert entry["allowed_tools"] and "echo" in entry["allowed_tools"]
    assert "crash" not in entry["allowed_tools"] and "add_tool" not in entry["allowed_tools"]


@pytest.mark.parametrize(
    "model, hosted",
    [
        ("openai-responses:gpt-4.1-mini", "auto"),  # a loopback URL the provider cannot reach
        ("openai-responses:gpt-4.1-mini", "never"),
        ("dashscope-responses:qwen3.5-plus", "always"),  # DashScope hosts SSE servers only
    ],
)
def test_server_not_hosted_is_offered_as_functions(manager, server, secret, model, hosted):
    wire = DashScopeResponsesWire() if model.startswith("dashscope") else RESPONSES
    server.push(
        wire.call_reply([("w1", "web__whoami", {})], False),
        wire.text_reply("You are authorised.", False),
    )
    agent = make_agent(manager, wire, server)
    result, events = run(agent, "Who am I?", hosted=hosted, stream=False)

    first = body(server, 0)
    assert hosted_entries(first) == []
    assert {"web__whoami", "web__echo"} <= set(wire.offered(first))
    # The kernel ran it over streamable HTTP, sending the expanded header.
    assert wire.results(body(server, 1)) == [("w1", f"Bearer {secret}")]
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(e.server, e.tool, e.hosted) for e in started] == [("web", "whoami", False)]
    assert result.text == "You are authorised."


def test_arguments_sent_back_are_the_models_own(manager, server):
    """The assistant's tool call goes back with the arguments exactly as the model wrote
    them (OpenAI), so the model sees its own mistake next to the error."""
    raw = '{"text": "unterminated'
    server.push(OPENAI.call_reply([("x1", "f__echo", raw)], False), OPENAI.text_reply("ok", False))
    agent = make_agent(manager, OPENAI, server)
    run(agent, "go", stream=False)
    assistant = [m for m in body(server, 1)["messages"] if m["role"] == "assistant"][0]
    assert assistant["tool_calls"][0]["function"] == {"name": "f__echo", "arguments": raw}


# -- a local server as llama-cpp-python's behaves -------------------------------------


@pytest.fixture(scope="module")
def llama() -> Iterator[ScriptedServer]:
    from fakes.llama_cpp_wire import responder

    with ScriptedServer(responder) as running:
        yield running


def llama_agent(manager: SessionManager, llama: ScriptedServer) -> Agent:
    config = resolve("llama:smollm2", base_url=llama.url + "/v1")
    return Agent(manager, make_provider(config), {})


def test_local_llama_cpp_server_calls_tools_and_answers(manager, llama):
    llama.requests.clear()
    agent = llama_agent(manager, llama)
    result, events = run(agent, "Revenue by region?", allow=["data"])

    sent = [r.body for r in llama.requests]
    # Streaming with tool_choice came back empty: asked again without streaming, once,
    # and the provider does not stream to this server any more.
    assert [bool(b.get("stream")) for b in sent] == [True, False, False]
    assert all(b["tool_choice"] == "auto" and b["tools"] for b in sent)
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices == [
        "llama: the stream ended empty (no text, no tool call, no finish reason); "
        "asking again without streaming"
    ]
    # The tool ran on the built-in server; the assistant message that called it went
    # back with "" content (the server answers 500 to null).
    assert finished(events)["call_llama_1"].status == "ok"
    assistant = [m for m in sent[2]["messages"] if m["role"] == "assistant"][0]
    assert assistant["content"] == "" and assistant["tool_calls"][0]["id"] == "call_llama_1"
    assert result.text.startswith("From the tool:") and result.steps == 2
    report = [e for e in events if isinstance(e, UsageReport)][-1]
    assert report.reported and report.usage.output_tokens == 18


def test_local_llama_cpp_stream_without_usage_says_not_reported(manager, llama):
    from mcp_magic.display.agent_view import usage_text

    llama.requests.clear()
    agent = llama_agent(manager, llama)
    agent.provider.stream_fails = False
    result, events = run(agent, "hello", allow=["nothing"])  # no tools: streams

    assert result.text == "You said: hello" and len(llama.requests) == 1
    assert llama.requests[0].body["stream"] is True and "tool_choice" not in llama.requests[0].body
    report = [e for e in events if isinstance(e, UsageReport)][-1]
    assert not report.reported
    assert usage_text(report).startswith("usage not reported")


# -- the run's own deadline ------------------------------------------------------------


def test_run_timeout_bounds_a_reply_that_keeps_trickling(manager, server):
    # Data every 0.1 s: never idle, but never done either.
    pieces = [ow.chunk({"content": "."}) for _ in range(100)]
    server.push(ow.raw_stream(pieces, done=False, delay=0.1))
    agent = make_agent(manager, OPENAI, server)
    with pytest.raises(ProviderError) as caught:
        run(agent, "Go on", run_timeout=1.0, idle_timeout=0.5)
    message = str(caught.value)
    assert message == (
        "openrouter:openai/gpt-4o-mini: the run reached its 1 s limit (run_timeout) "
        "while waiting for the model"
    )
    assert len(server.requests) == 1 and agent.messages == []  # the question is dropped


def test_run_timeout_bounds_tool_calls(manager, server):
    server.push(OPENAI.call_reply([("s1", "f__sleep", {"seconds": 30})], True))
    agent = make_agent(manager, OPENAI, server)
    with pytest.raises(ProviderError, match="reached its 1 s limit .* waiting for the tools"):
        run(agent, "Sleep", run_timeout=1.0)
    assert len(server.requests) == 1
    assert_every_call_answered(agent)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_steps": 0}, "max_steps must be a whole number from 1 up, not 0"),
        ({"max_steps": -3}, "not -3"),
        ({"run_timeout": 0}, "run_timeout must be a number of seconds above 0"),
        ({"idle_timeout": -1}, "idle_timeout must be"),
    ],
)
def test_options_out_of_range_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        AgentOptions(**options)


def test_host_agent_takes_its_model_from_mcp_magic_model(server, monkeypatch):
    from mcp_magic import Host

    server.push(OPENAI.text_reply("From the default model.", True))
    monkeypatch.setenv("MCP_MAGIC_MODEL", "openrouter:openai/gpt-4o-mini")
    monkeypatch.setenv("OPENROUTER_BASE_URL", server.url)
    with Host() as host:
        result = host.agent("Hi", show=lambda event: None, idle_timeout=5)
    assert result.text == "From the default model."
    assert server.requests[0].body["model"] == "openai/gpt-4o-mini"
    monkeypatch.delenv("MCP_MAGIC_MODEL")
    with Host() as host, pytest.raises(ProviderError, match="no model: .*MCP_MAGIC_MODEL"):
        host.agent("Hi", show=lambda event: None)
