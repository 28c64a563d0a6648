"""The Python API without magics: `Host` connects servers, calls tools, runs the agent
(against a scripted OpenAI-compatible endpoint on 127.0.0.1) and cleans up after itself."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import psutil
import pytest
from fakes import openai_wire as ow
from fakes.scripted_http import ScriptedServer

from mcp_magic import Host
from mcp_magic.agent.events import (
    ApprovalRequest,
    Decision,
    TextDelta,
    ToolCallFinished,
    UsageReport,
)
from mcp_magic.agent.loop import PromptError, RunResult
from mcp_magic.api import ToolError
from mcp_magic.host.config import ConfigError
from mcp_magic.host.sessions import McpError, Session

from conftest import FAULT_SERVER

KEY = "fake-or-api-test-key"
MODEL = "openrouter:openai/gpt-4o-mini"
ORDERS_SQL = (
    "select o.order_id, o.order_date, o.status, count(*) as items, "
    "sum(i.quantity * i.unit_price) as total "
    "from orders o join order_items i using (order_id) "
    "group by o.order_id order by o.order_id limit 5"
)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with Host() as running:
        running.connect("data", builtin=True)
        yield running


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def server(scripted, monkeypatch, tmp_path) -> ScriptedServer:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    scripted.replies.clear()
    scripted.requests.clear()
    return scripted


def children() -> dict[int, psutil.Process]:
    return {p.pid: p for p in psutil.Process().children(recursive=True)}


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- calls -----------------------------------------------------------------------------


def test_call_returns_a_dataframe_with_dtypes(host):
    frame = host.call("data.query_db", sql=ORDERS_SQL)
    assert list(frame.columns) == ["order_id", "order_date", "status", "items", "total"]
    assert len(frame) == 5 and frame["order_id"].tolist() == [1, 2, 3, 4, 5]
    dtypes = frame.dtypes.astype(str).to_dict()
    assert dtypes["order_id"] == "int64" and dtypes["items"] == "int64"
    assert dtypes["total"] == "float64"
    assert dtypes["order_date"].startswith("datetime64")
    assert str(frame["status"].dtype) in ("object", "string", "str")
    # Arguments as a dict work the same.
    same = host.call("data.query_db", {"sql": ORDERS_SQL})
    assert same.equals(frame)


def test_refused_write_is_a_one_line_tool_error(host):
    with pytest.raises(ToolError) as refused:
        host.call("data.query_db", sql="drop table orders")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("data.query_db: ") and "read-only" in message
    assert isinstance(refused.value, McpError)
    assert len(host.call("data.query_db", sql="select * from orders limit 3")) == 3


def test_missing_required_argument_is_checked_before_the_call(host):
    with pytest.raises(ToolError) as missing:
        host.call("data.query_db")
    assert str(missing.value) == (
        "missing required argument 'sql': "
        "data.query_db(sql: string, limit?: integer, offset?: integer)"
    )
    with pytest.raises(ToolError, match=r"^missing required argument 'sql': "):
        host.call("data.query_db", {"limit": 3})
    assert len(host.call("data.query_db", sql="select * from orders limit 3")) == 3


def test_unknown_server_and_tool_are_one_line_errors(host):
    with pytest.raises(McpError, match="no tool 'nope'") as unknown:
        host.call("data.nope")
    assert "\n" not in str(unknown.value)
    with pytest.raises(McpError, match="no server named 'ghost'"):
        host.call("ghost.tool")


def test_connect_config_reports_a_broken_entry_and_connects_the_others(host, tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "good": {"command": sys.executable, "args": [str(FAULT_SERVER)]},
                    "missing": {"command": str(tmp_path / "no-such-server")},
                    "broken": {"args": ["no command"]},
                    "off": {"command": "never-started", "disabled": True},
                }
            }
        )
    )
    try:
        outcomes = host.connect_config(str(path))
        assert set(outcomes) == {"good", "missing", "broken"}
        assert isinstance(outcomes["good"], Session) and outcomes["good"].state == "connected"
        assert isinstance(outcomes["missing"], McpError)
        assert "no-such-server" in str(outcomes["missing"])
        assert isinstance(outcomes["broken"], ConfigError)
        assert "needs 'command'" in str(outcomes["broken"])
        for error in (outcomes["missing"], outcomes["broken"]):
            assert "\n" not in str(error)
        assert host.call("good.echo", text="still here") == "still here"
        assert "missing" not in host.manager.sessions
    finally:
        host.disconnect("good")


# -- the agent -------------------------------------------------------------------------


def test_agent_runs_binds_tables_and_keeps_the_conversation(host, server, capsys):
    server.push(
        ow.completion_reply(
            calls=[ow.Call("q1", "data__query_db", {"sql": "select * from regions"})],
            usage_block=ow.usage(30, 8),
        ),
        ow.stream("West is managed by Kenji Watanabe.", usage_block=ow.usage(60, 9)),
    )
    events: list = []
    result = host.agent(
        "Who manages the West region?",
        MODEL,
        base_url=server.url,
        show=events.append,
        new=True,
    )
    assert isinstance(result, RunResult)
    assert result.text == "West is managed by Kenji Watanabe." and result.steps == 2
    assert set(result.variables) == {"result_1"}
    table = host.namespace["result_1"]
    assert table is result.variables["result_1"] and len(table) == 5
    assert "Kenji Watanabe" in table["manager"].tolist()
    assert result.usage.input_tokens == 90 and result.usage.output_tokens == 17
    assert [e.variable for e in events if isinstance(e, ToolCallFinished)] == ["result_1"]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == result.text
    assert any(isinstance(e, UsageReport) for e in events)
    assert capsys.readouterr().out == ""  # quiet: everything went to `show`
    tool_message = server.requests[1].body["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "q1"
    assert "`result_1`" in tool_message["content"]
    headers = {k.lower(): v for k, v in server.requests[0].headers.items()}
    assert headers["authorization"] == f"Bearer {KEY}"

    # `{name}` fills from host.namespace; the conversation goes on.
    host.namespace["region"] = "East"
    server.push(ow.completion_reply("Priya Natarajan."))
    result = host.agent("And {region}?", MODEL, base_url=server.url, show=events.append)
    messages = server.requests[2].body["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert messages[1]["content"] == "Who manages the West region?"
    assert messages[-1]["content"] == "And East?"
    assert result.text == "Priya Natarajan."

    # new=True starts over.
    server.push(ow.completion_reply("Hello again."))
    host.agent("Start over", MODEL, base_url=server.url, show=events.append, new=True)
    messages = server.requests[3].body["messages"]
    assert [(m["role"], m["content"]) for m in messages[1:]] == [("user", "Start over")]


def test_agent_prompt_fills_a_dataframe_as_a_summary(host, server):
    host.namespace["sales"] = host.call("data.query_db", sql="select * from regions")
    server.push(ow.completion_reply("Five regions."))
    host.agent("Summarise {sales}", MODEL, base_url=server.url, show=lambda e: None, new=True)
    prompt = server.requests[0].body["messages"][-1]["content"]
    assert prompt.startswith("Summarise DataFrame `sales`: 5 rows × 4 columns")
    assert "region_id (int64)" in prompt


def test_agent_prompt_with_an_unknown_name_sends_nothing(host, server):
    with pytest.raises(PromptError, match="'nowhere'"):
        host.agent("Look at {nowhere}", MODEL, base_url=server.url, show=lambda e: None)
    assert server.requests == []


def test_agent_switching_model_keeps_the_conversation(host, server):
    server.push(ow.completion_reply("One."), ow.completion_reply("Two."))
    host.agent("first", MODEL, base_url=server.url, show=lambda e: None, new=True)
    host.agent("second", "openrouter:openai/gpt-4o", base_url=server.url, show=lambda e: None)
    first, second = (r.body for r in server.requests)
    assert (first["model"], second["model"]) == ("openai/gpt-4o-mini", "openai/gpt-4o")
    assert [m["content"] for m in second["messages"][1:]] == ["first", "One.", "second"]


def test_agent_asks_approve_and_tells_the_model_it_was_denied(host, server):
    server.push(
        ow.completion_reply(calls=[ow.Call("w1", "data__query_db", {"sql": "select 1"})]),
        ow.completion_reply("Understood."),
    )
    asked: list[ApprovalRequest] = []

    def approve(request: ApprovalRequest) -> Decision:
        asked.append(request)
        return Decision("deny")

    result = host.agent(
        "query",
        MODEL,
        base_url=server.url,
        show=lambda e: None,
        approve=approve,
        approval="always",
        new=True,
    )
    assert [(r.server, r.tool, r.arguments) for r in asked] == [
        ("data", "query_db", {"sql": "select 1"})
    ]
    tool_message = server.requests[1].body["messages"][-1]
    assert tool_message["tool_call_id"] == "w1" and "denied" in tool_message["content"]
    assert result.text == "Understood." and result.variables == {}


def test_agent_by_default_prints_the_answer(host, server, capsys):
    server.push(ow.stream("Printed for scripts."))
    host.agent("hi", MODEL, base_url=server.url, new=True)
    assert "Printed for scripts." in capsys.readouterr().out


def test_agent_missing_key_names_the_variable(host, monkeypatch, tmp_path):
    from mcp_magic.agent.providers import ProviderError

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ProviderError, match="ANTHROPIC_API_KEY is not set"):
        host.agent("hi", "anthropic:claude-sonnet-4-5", show=lambda e: None)


# -- lifecycle -------------------------------------------------------------------------


def test_with_block_leaves_no_child_process():
    before = set(children())
    namespace: dict = {}
    with Host(namespace=namespace) as host:
        assert host.namespace is namespace
        host.connect("data", builtin=True)
        host.connect("fault", [sys.executable, str(FAULT_SERVER)])
        assert host.call("fault.echo", text="hi") == "hi"
        started = {pid: p for pid, p in children().items() if pid not in before}
        assert len(started) >= 2  # one process per stdio server (at least)
    remaining = [pid for pid, process in started.items() if alive(process)]
    assert remaining == []
    assert host.manager.sessions == {}


def test_agent_code_mode_runs_code_in_the_namespace_then_logs_and_exports_it(host, server):
    code = "n_regions = len(data.query_db(sql='select * from regions'))\nprint(n_regions)"
    server.push(
        ow.completion_reply(calls=[ow.Call("k1", "notebook__run_python", {"code": code})]),
        ow.completion_reply("Five."),
    )
    result = host.agent(
        "How many regions?", MODEL, base_url=server.url, show=lambda e: None, new=True,
        code=True, code_approval=False,
    )  # fmt: skip
    assert result.text == "Five." and host.namespace["n_regions"] == 5
    told = server.requests[1].body["messages"][-1]["content"]
    assert told.startswith("Output:") and "5" in told
    log = host.log()
    assert "code" in log.kind.tolist() and KEY not in log.to_csv()
    exported = host.export()
    assert "%mcp functions" in exported and "n_regions = len(data.query_db(" in exported
