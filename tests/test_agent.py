"""The agent loop against a scripted provider object and real MCP servers (no kernel)."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import pytest

from mcp_magic.agent.events import ApprovalRequest, Decision, Notice, ToolCallFinished, UsageReport
from mcp_magic.agent.loop import (
    Agent,
    AgentOptions,
    PromptError,
    interpolate,
    is_allowed,
    qualify,
    validate_arguments,
)
from mcp_magic.agent.providers.base import Request, ToolCall, Turn, Usage
from mcp_magic.host.config import StdioSpec, builtin_spec
from mcp_magic.host.sessions import SessionManager

from conftest import FAULT_SERVER


class ScriptedProvider:
    """Answers each request with the next scripted Turn and keeps the requests."""

    name = "scripted"
    model = "test-model"

    def __init__(self, *turns: Turn) -> None:
        self.turns = list(turns)
        self.requests: list[Request] = []

    async def complete(self, request: Request, on_text=None) -> Turn:
        self.requests.append(request)
        turn = self.turns.pop(0) if self.turns else Turn(text="(script exhausted)")
        if on_text and turn.text:
            for word in turn.text.split(" "):
                on_text(word + " ")
        return turn

    async def aclose(self) -> None:
        pass


def call(name: str, arguments: dict | str, call_id: str) -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id=call_id, name=name, arguments=text)


@pytest.fixture(scope="module")
def manager():
    manager = SessionManager()
    manager.connect("f", StdioSpec(sys.executable, (str(FAULT_SERVER),)))
    manager.connect("data", builtin_spec())
    yield manager
    manager.close()


def run(manager, provider, prompt="question", options=None, namespace=None, agent=None):
    agent = agent or Agent(manager, provider, namespace if namespace is not None else {})
    events: list = []

    def publish(event):
        if isinstance(event, ApprovalRequest):
            event.reply.set_result(Decision("allow"))
        events.append(event)

    result = manager.run(agent.run(prompt, options or AgentOptions(), publish))
    return agent, result, events


def test_text_answer_and_usage(manager):
    provider = ScriptedProvider(Turn(text="Hello there", usage=Usage(10, 3, cost=0.001)))
    _, result, events = run(manager, provider)
    assert result.text == "Hello there" and result.steps == 1
    report = [e for e in events if isinstance(e, UsageReport)][0]
    assert report.usage.total_tokens == 13 and report.usage.cost == 0.001


def test_tools_are_offered_with_qualified_names_and_server_instructions(manager):
    provider = ScriptedProvider(Turn(text="ok"))
    run(manager, provider)
    request = provider.requests[0]
    names = {t.name for t in request.tools}
    assert {"f__echo", "data__query_db", "data__list_files"} <= names
    assert "Server `data`:" in request.system and "Server `f`:" in request.system


def test_allow_and_deny_globs_pick_the_tools(manager):
    provider = ScriptedProvider(Turn(text="ok"))
    run(manager, provider, options=AgentOptions(allow=["data"], deny=["data.list_*"]))
    names = {t.name for t in provider.requests[0].tools}
    assert "data__query_db" in names
    assert not any(n.startswith("f__") for n in names)
    assert "data__list_files" not in names


def test_tool_results_go_back_with_their_call_ids_in_order(manager):
    provider = ScriptedProvider(
        Turn(
            tool_calls=[
                call("f__echo", {"text": "one"}, "c1"),
                call("f__echo", {"text": "two"}, "c2"),
            ]
        ),
        Turn(text="done"),
    )
    agent, result, _ = run(manager, provider)
    second = provider.requests[1].messages
    assert [m.role for m in second] == ["user", "assistant", "tool", "tool"]
    assert [m.tool_call_id for m in second[2:]] == ["c1", "c2"]
    assert [m.content for m in second[2:]] == ["one", "two"]
    assert result.text == "done"


def test_calls_in_one_reply_run_concurrently(manager):
    provider = ScriptedProvider(
        Turn(tool_calls=[call("f__sleep", {"seconds": 0.5}, f"s{i}") for i in range(4)]),
        Turn(text="slept"),
    )
    started = time.monotonic()
    run(manager, provider)
    assert time.monotonic() - started < 1.5  # four half-second sleeps, not two seconds


@pytest.mark.parametrize(
    "bad_call, expected",
    [
        (call("nosuch__tool", {}, "x"), "unknown tool 'nosuch__tool'"),
        (call("f__echo", "{not json", "x"), "invalid JSON arguments"),
        (call("f__echo", {"wrong": 1}, "x"), "'text' is a required property"),
        (call("f__sleep", {"seconds": "soon"}, "x"), "is not of type 'number'"),
        (call("data__query_db", {"sql": "drop table orders"}, "x"), "read-only"),
    ],
)
def test_mistakes_go_back_to_the_model_as_the_tool_result(manager, bad_call, expected):
    provider = ScriptedProvider(Turn(tool_calls=[bad_call]), Turn(text="sorry"))
    _, result, events = run(manager, provider)
    tool_message = provider.requests[1].messages[-1]
    assert tool_message.role == "tool" and tool_message.tool_call_id == "x"
    assert tool_message.content.startswith("Error:") and expected in tool_message.content
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert finished[0].status == "error"
    assert result.text == "sorry"


def test_tables_are_bound_and_summarised_for_the_model(manager):
    namespace: dict = {}
    provider = ScriptedProvider(
        Turn(tool_calls=[call("data__query_db", {"sql": "select * from order_items"}, "q")]),
        Turn(tool_calls=[call("data__query_db", {"sql": "select * from regions"}, "r")]),
        Turn(text="see result_1"),
    )
    _, result, events = run(manager, provider, namespace=namespace)
    big = namespace["result_1"]
    assert len(big) > 5000 and set(result.variables) == {"result_1", "result_2"}
    summary = provider.requests[1].messages[-1].content
    assert "result_1" in summary and f"{len(big):,} rows" in summary
    assert len(summary) < 3000  # schema + row count + preview, not the whole table
    small = provider.requests[2].messages[-1].content
    assert "5 rows" in small and "result_2" in small and "Central" in small
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [e.variable for e in finished] == ["result_1", "result_2"]


def test_rerun_binds_the_same_names(manager):
    def script():
        return ScriptedProvider(
            Turn(tool_calls=[call("data__query_db", {"sql": "select 1 as a"}, "q")]),
            Turn(text="ok"),
        )

    first: dict = {}
    second: dict = {}
    run(manager, script(), namespace=first)
    run(manager, script(), namespace=second)
    assert set(first) == set(second) == {"result_1"}


def test_max_steps_stops_a_model_that_never_stops(manager):
    forever = [Turn(tool_calls=[call("f__echo", {"text": str(i)}, f"c{i}")]) for i in range(10)]
    provider = ScriptedProvider(*forever)
    agent, result, events = run(manager, provider, options=AgentOptions(max_steps=3))
    assert len(provider.requests) == 3 and result.stopped_early
    assert any(isinstance(e, Notice) and "3 steps" in e.text for e in events)
    # Every tool call has its result: the conversation stays valid for the next cell.
    calls = [c.id for m in agent.messages for c in m.tool_calls]
    results = [m.tool_call_id for m in agent.messages if m.role == "tool"]
    assert calls == results


def test_conversation_continues_across_runs(manager):
    provider = ScriptedProvider(Turn(text="first"), Turn(text="second"))
    agent, _, _ = run(manager, provider, prompt="one")
    run(manager, provider, prompt="two", agent=agent)
    assert [m.content for m in provider.requests[1].messages] == ["one", "first", "two"]
    agent.reset()
    assert agent.messages == []


def test_approval_deny_and_answer(manager):
    provider = ScriptedProvider(
        Turn(tool_calls=[call("f__crash", {}, "a"), call("f__echo", {"text": "x"}, "b")]),
        Turn(text="fine"),
    )
    agent = Agent(manager, provider, {})
    decisions = {"crash": Decision("deny"), "echo": Decision("answer", "typed by me")}
    asked = []

    def publish(event):
        if isinstance(event, ApprovalRequest):
            asked.append(event.tool)
            event.reply.set_result(decisions[event.tool])

    manager.run(agent.run("go", AgentOptions(approval="always"), publish))
    results = {m.tool_call_id: m.content for m in provider.requests[1].messages if m.role == "tool"}
    assert sorted(asked) == ["crash", "echo"]
    assert "denied" in results["a"]
    assert "typed by me" in results["b"]
    assert manager.sessions["f"].state == "connected"  # crash never ran


def test_approval_writes_mode_only_asks_for_tools_not_read_only(manager):
    provider = ScriptedProvider(
        Turn(
            tool_calls=[call("f__echo", {"text": "x"}, "a"), call("f__progress", {"steps": 1}, "b")]
        ),
        Turn(text="fine"),
    )
    asked = []

    def publish(event):
        if isinstance(event, ApprovalRequest):
            asked.append(event.tool)
            event.reply.set_result(Decision("deny"))

    manager.run(Agent(manager, provider, {}).run("go", AgentOptions(approval="writes"), publish))
    assert asked == ["progress"]


def test_interrupt_cancels_calls_and_keeps_the_conversation_consistent(manager):
    provider = ScriptedProvider(
        Turn(
            tool_calls=[
                call("f__sleep", {"seconds": 30}, "long"),
                call("f__echo", {"text": "q"}, "quick"),
            ]
        ),
    )
    agent = Agent(manager, provider, {})
    future = manager.loop.submit(agent.run("go", AgentOptions(), lambda e: None))
    time.sleep(1.0)
    future.cancel()
    deadline = time.monotonic() + 2
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    roles = [m.role for m in agent.messages]
    assert roles[:2] == ["user", "assistant"]
    results = {m.tool_call_id: m.content for m in agent.messages if m.role == "tool"}
    assert set(results) == {"long", "quick"}
    assert "Cancelled" in results["long"]
    assert (
        manager.run(manager.acall_tool("f", "echo", {"text": "alive"})).content[0].text == "alive"
    )


def test_interrupt_before_any_reply_drops_the_question(manager):
    class Slow(ScriptedProvider):
        async def complete(self, request, on_text=None):
            await asyncio.sleep(30)

    agent = Agent(manager, Slow(), {})
    future = manager.loop.submit(agent.run("go", AgentOptions(), lambda e: None))
    time.sleep(0.3)
    future.cancel()
    time.sleep(0.3)
    assert agent.messages == []


def test_qualified_names_are_valid_unique_and_short():
    taken: set[str] = set()
    names = [
        qualify("db", "read_query", taken),
        qualify("my.server", "get/thing", taken),
        qualify("9lives", "x", taken),
        qualify("s" * 50, "t" * 50, taken),
    ]
    for name in names:
        taken.add(name)
        assert len(name) <= 64 and name[0].isalpha()
        assert all(c.isalnum() or c in "_-" for c in name)
    assert names[0] == "db__read_query"
    taken.add("db__read_query")
    assert qualify("db", "read_query", taken) != "db__read_query"


def test_allow_deny_patterns():
    assert is_allowed("db", "read_query", ["db"], [])
    assert not is_allowed("fs", "read", ["db"], [])
    assert is_allowed("db", "read_query", ["db.read_*"], [])
    assert not is_allowed("db", "write_query", ["db.read_*"], [])
    assert not is_allowed("db", "write_query", [], ["*.write_*"])


def test_schema_validation_messages():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert validate_arguments({"n": 1}, schema) is None
    assert "required" in validate_arguments({}, schema)
    assert "n:" in validate_arguments({"n": "x"}, schema)
    assert validate_arguments([], schema) == "arguments must be a JSON object"


def test_prompt_interpolation():
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    namespace = {"region": "West", "df": frame, "n": 3}
    text = interpolate("Sales in {region} for {n} years; {{literal}}; data: {df}", namespace)
    assert "Sales in West for 3 years; {literal};" in text
    assert "3 rows × 2 columns" in text and "a (int64)" in text
    with pytest.raises(PromptError, match="'missing' in the prompt is not defined"):
        interpolate("{missing}", namespace)
    with pytest.raises(PromptError, match="empty"):
        interpolate("a {} b", namespace)


def test_table_names_count_tables_only_in_the_order_asked(manager):
    namespace: dict = {}
    provider = ScriptedProvider(
        Turn(
            tool_calls=[
                call("f__sleep", {"seconds": 0.3}, "s"),
                call("data__query_db", {"sql": "select 2 as b"}, "late"),
                call("data__query_db", {"sql": "select 1 as a"}, "early"),
            ]
        ),
        Turn(text="ok"),
    )
    run(manager, provider, namespace=namespace)
    assert list(namespace["result_1"].columns) == ["b"]
    assert list(namespace["result_2"].columns) == ["a"]
    assert set(namespace) == {"result_1", "result_2"}


def test_tools_a_server_says_changed_are_listed_again_before_a_run():
    from conftest import node_server

    manager = SessionManager()
    try:
        session = manager.connect("ev", StdioSpec(node_server("mcp-server-everything")))
        session.tools_stale = True  # as a notifications/tools/list_changed leaves it
        session.tools.clear()
        provider = ScriptedProvider(Turn(text="ok"))
        run(manager, provider)
        assert not session.tools_stale
        assert any(t.name == "ev__echo" for t in provider.requests[0].tools)
    finally:
        manager.close()


def test_time_waiting_for_approval_does_not_count_against_the_run_timeout(manager):
    import threading

    provider = ScriptedProvider(
        Turn(tool_calls=[call("f__echo", {"text": "slowly approved"}, "a1")]),
        Turn(text="approved and done"),
    )
    agent = Agent(manager, provider, {})
    events: list = []

    def publish(event):
        events.append(event)
        if isinstance(event, ApprovalRequest):  # the user takes longer than the whole limit
            threading.Timer(1.2, event.reply.set_result, [Decision("allow")]).start()

    options = AgentOptions(approval="always", run_timeout=1.0)
    result = manager.run(agent.run("echo", options, publish))
    assert result.text == "approved and done"
    assert [e.status for e in events if isinstance(e, ToolCallFinished)] == ["ok"]


def test_a_model_slower_than_the_run_timeout_is_one_line(manager):
    class Slow(ScriptedProvider):
        async def complete(self, request, on_text=None):
            self.requests.append(request)
            await asyncio.sleep(30)

    from mcp_magic.agent.loop import RunTimeout

    provider = Slow()
    events: list = []
    options = AgentOptions(run_timeout=0.3, idle_timeout=0.2)
    with pytest.raises(RunTimeout) as caught:
        manager.run(Agent(manager, provider, {}).run("question", options, events.append))
    assert not any(isinstance(e, UsageReport) for e in events)  # no reply, no usage line
    assert str(caught.value) == (
        "scripted:test-model: the run reached its 0.3 s limit (run_timeout) "
        "while waiting for the model"
    )
    assert provider.requests[0].idle_timeout == 0.2 and provider.requests[0].deadline
