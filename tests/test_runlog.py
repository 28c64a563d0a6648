"""Names for tables, the run log, replay as code and the token budget, without a kernel.

The loop runs against a scripted provider object and the real built-in data server
(and the fault server, for echoes and secrets).
"""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest

from mcp_magic.agent.events import ApprovalRequest, Decision, Notice, ToolCallFinished, UsageReport
from mcp_magic.agent.export import call_line, export_run, read_back
from mcp_magic.agent.loop import Agent, AgentOptions
from mcp_magic.agent.naming import Names, offer, problem, take
from mcp_magic.agent.providers.base import Request, ToolCall, Turn, Usage
from mcp_magic.display.agent_view import usage_text
from mcp_magic.host.config import StdioSpec, builtin_spec
from mcp_magic.magics import agent_subcommand

from conftest import FAULT_SERVER

SECRET_ENV = "tok-" + "s3cr3t" * 4


class ScriptedProvider:
    """Answers each request with the next scripted Turn and keeps the requests."""

    name = "scripted"
    model = "test-model"

    def __init__(self, *turns: Turn) -> None:
        self.turns = list(turns)
        self.requests: list[Request] = []

    async def complete(self, request: Request, on_text=None) -> Turn:
        self.requests.append(request)
        return self.turns.pop(0) if self.turns else Turn(text="(script exhausted)")

    async def aclose(self) -> None:
        pass


def call(name: str, arguments: dict, call_id: str) -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=json.dumps(arguments))


@pytest.fixture(scope="module")
def manager():
    from mcp_magic.host.sessions import SessionManager

    manager = SessionManager()
    manager.connect("f", StdioSpec(sys.executable, (str(FAULT_SERVER),), env={"X": SECRET_ENV}))
    manager.connect("data", builtin_spec())
    yield manager
    manager.close()


def run(agent, prompt="question", **options):
    events: list = []

    def publish(event):
        if isinstance(event, ApprovalRequest):
            event.reply.set_result(Decision("allow"))
        events.append(event)

    result = agent.manager.run(agent.run(prompt, AgentOptions(**options), publish))
    return result, events


def query(sql: str, call_id: str, name: str | None = None) -> ToolCall:
    arguments = {"sql": sql} | ({"result_name": name} if name is not None else {})
    return call("data__query_db", arguments, call_id)


# -- names ---------------------------------------------------------------------------


def test_result_name_is_offered_and_taken_off_before_the_call(manager):
    provider = ScriptedProvider(
        Turn(tool_calls=[query("select name from regions", "q", "regions_table")]),
        Turn(text="ok"),
    )
    namespace: dict = {}
    result, events = run(Agent(manager, provider, namespace), cell_key="A")
    offered = {t.name: t.parameters for t in provider.requests[0].tools}
    assert "result_name" in offered["data__query_db"]["properties"]
    assert "result_name" not in offered["data__query_db"].get("required", [])
    started = [e for e in events if type(e).__name__ == "ToolCallStarted"]
    assert started[0].arguments == {"sql": "select name from regions"}  # what the tool got
    assert list(result.variables) == ["regions_table"] and len(namespace["regions_table"]) == 5
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert finished[0].status == "ok" and finished[0].variable == "regions_table"
    told = provider.requests[1].messages[-1].content
    assert "`regions_table`" in told


def test_names_never_hide_a_users_variable_or_a_builtin(manager):
    mine = pd.DataFrame({"mine": [1]})
    namespace: dict = {"sales": mine, "pd": pd}
    provider = ScriptedProvider(
        Turn(
            tool_calls=[
                query("select 1 as a", "1", "sales"),
                query("select 2 as b", "2", "sum"),
                query("select 3 as c", "3", "2025 targets!"),
                query("select 4 as d", "4", "t_2025_targets"),
                query("select 5 as e", "5", "class"),
            ]
        ),
        Turn(text="ok"),
    )
    result, events = run(Agent(manager, provider, namespace), cell_key="A")
    assert namespace["sales"] is mine and namespace["pd"] is pd  # untouched
    assert list(result.variables) == [
        "sales_2",
        "sum_df",
        "t_2025_targets",
        "t_2025_targets_2",
        "class_df",
    ]
    assert list(namespace["sales_2"].columns) == ["a"] and list(
        namespace["t_2025_targets_2"].columns
    ) == ["d"]
    notes = [e.text for e in events if isinstance(e, Notice)]
    assert "`sales` is already a notebook variable, so the table is in `sales_2` instead." in notes
    assert any("`sum` is a Python builtin" in n for n in notes)
    assert any("`t_2025_targets` names another table of this run" in n for n in notes)
    # the model is told the name the table really got, and why
    told = provider.requests[1].messages[2].content
    assert "`sales_2`" in told and "already a notebook variable" in told


def test_rerun_rebinds_a_cells_names_and_a_later_cell_never_takes_them(manager):
    namespace: dict = {}
    agent = Agent(manager, ScriptedProvider(), namespace)

    def script(*calls):
        agent.provider = ScriptedProvider(Turn(tool_calls=list(calls)), Turn(text="ok"))

    script(query("select 1 as a", "1"), query("select 1 as n", "2", "named"))
    first, _ = run(agent, cell_key="cell-A")
    assert list(first.variables) == ["result_1", "named"]
    script(query("select 2 as b", "1"), query("select 2 as n", "2", "named"))
    later, events = run(agent, cell_key="cell-B")
    # another cell: its unnamed table gets the next number, and `named` is not replaced
    assert list(later.variables) == ["result_2", "named_2"]
    assert list(namespace["result_1"].columns) == ["a"] and list(namespace["named"].columns) == [
        "n"
    ]
    assert any("holds a table from run 1" in e.text for e in events if isinstance(e, Notice))
    script(query("select 3 as c", "1"), query("select 3 as n", "2", "named"))
    again, events = run(agent, cell_key="cell-A")  # cell A re-run: the same names again
    assert list(again.variables) == ["result_1", "named"]
    assert list(namespace["result_1"].columns) == ["c"]
    assert not [e for e in events if isinstance(e, Notice)]
    namespace["result_1"] = "the user's now"
    script(query("select 4 as d", "1"))
    after, _ = run(agent, cell_key="cell-A")
    assert namespace["result_1"] == "the user's now" and list(after.variables) == ["result_3"]


def test_name_rules_without_a_loop():
    assert problem("targets_2025") is None
    for bad in ("2x", "a b", "for", "match", "_hidden", "list", "x" * 65, "naïve"):
        assert problem(bad), bad
    schema = {"type": "object", "properties": {"sql": {"type": "string"}}}
    assert take({"sql": "s", "result_name": "t"}, schema) == ({"sql": "s"}, "t")
    assert take({"sql": "s", "result_name": 3}, schema) == ({"sql": "s"}, None)
    own = {"type": "object", "properties": {"result_name": {"type": "string"}}}
    assert offer(own) is own and take({"result_name": "x"}, own) == ({"result_name": "x"}, None)
    names = Names()
    assert names.choose("x", "c", {}, {"x"}, 0) == (
        "x_2",
        "`x` names another table of this run, so the table is in `x_2` instead.",
    )


# -- the run log ---------------------------------------------------------------------


def test_log_has_one_row_per_step_with_what_happened_and_no_secrets(manager, tmp_path, monkeypatch):
    monkeypatch.setenv("SOME_SERVICE_API_KEY", "sk-live-" + "9" * 20)
    provider = ScriptedProvider(
        Turn(
            text="Looking.",
            tool_calls=[
                query("select name from regions", "q", "regions"),
                call("f__echo", {"text": f"{SECRET_ENV} and sk-live-{'9' * 20}"}, "e"),
            ],
            usage=Usage(100, 20, cost=0.002),
        ),
        Turn(text=f"Done; echo said {SECRET_ENV}.", usage=Usage(150, 10, cost=0.003)),
    )
    agent = Agent(manager, provider, {})
    run(agent, prompt="Which regions?", cell_key="k", cell_id="cell-7", execution_count=4)
    frame = agent.log.frame()
    assert list(frame.kind) == ["prompt", "reply", "tool", "tool", "reply", "end"]
    assert (
        set(frame.run) == {1}
        and set(frame.cell) == {"cell-7"}
        and set(frame.execution_count) == {4}
    )
    assert frame.text[0] == "Which regions?" and frame.model[0] == "scripted:test-model"
    tools = frame[frame.kind == "tool"].set_index("tool")
    assert json.loads(tools.arguments["query_db"]) == {"sql": "select name from regions"}
    assert tools.variable["query_db"] == "regions" and tools.status["query_db"] == "ok"
    assert tools.preview["query_db"] == "5 rows × 1 columns: name"
    assert tools.duration["query_db"] > 0 and tools.server["echo"] == "f"
    replies = frame[frame.kind == "reply"]
    assert list(replies.input_tokens) == [100, 150] and list(replies.cost) == [0.002, 0.003]
    assert list(replies.status) == ["tool calls", "answer"]
    assert agent.log.runs[0].status == "ok" and agent.log.runs[0].usage.cost == pytest.approx(0.005)
    saved = tmp_path / "runs.jsonl"
    end = frame.iloc[-1]
    assert end.status == "ok" and (end.input_tokens, end.output_tokens) == (250, 30)
    assert end.cost == pytest.approx(0.005) and end.duration > 0
    assert agent.log.save(str(saved)) == 6
    text = saved.read_text()
    assert [json.loads(line)["kind"] for line in text.splitlines()][2] == "tool"
    everything = text + frame.to_json(date_format="iso")
    assert SECRET_ENV not in everything and "9" * 20 not in everything
    assert "***" in tools.arguments["echo"] and "***" in replies.text.iloc[-1]


def test_a_run_that_fails_ends_its_log_with_the_error(manager):
    from mcp_magic.agent.providers.base import ProviderError

    class Failing(ScriptedProvider):
        async def complete(self, request, on_text=None):
            raise ProviderError("scripted: 401 bad key")

    agent = Agent(manager, Failing(), {})
    with pytest.raises(ProviderError):
        run(agent)
    frame = agent.log.frame()
    assert list(frame.kind) == ["prompt", "end"] and frame.status.iloc[-1] == "error"


def test_a_second_run_gets_the_next_id_and_get_finds_runs():
    from mcp_magic.agent.runlog import RunLog

    log = RunLog()
    with pytest.raises(LookupError, match="no agent runs"):
        log.get()
    log.start("one", "m", [])
    log.start("two", "m", ["secret-value"])
    assert log.get().prompt == "two" and log.get(1).prompt == "one" and log.get(-2).id == 1
    with pytest.raises(LookupError, match="runs are 1 to 2"):
        log.get(3)


# -- replay as code ------------------------------------------------------------------

NASTY = [
    "select * from t where a = 'x' and b = \"y\"",
    "price > $5 and name like '$name' and $$ and $1 and ${HOME}",
    "{not an expr} {{double}} }{ {x} {1+1}",
    '# not a comment\ttab \\ backslash \\" quote',
    "line one\nline two\r\nthree",
    "naïve 日本語 emoji 🙂 'single' \"double\"",
    "",
    " leading and trailing ",
    "a=b c=d",
    '{"looks": "like json"}',
]


@pytest.mark.parametrize("value", NASTY)
def test_call_lines_read_back_to_the_same_arguments(value):
    string = {"type": "object", "properties": {"sql": {"type": "string"}, "n": {"type": "integer"}}}
    for schema in (string, None):
        arguments = {"sql": value, "n": 3}
        line = call_line("data", "query_db", arguments, "t", schema)
        assert line.startswith("t = %mcp call data.query_db ")
        assert "\n" not in line
        words = line.split(" ", 5)[5]
        assert read_back(words, schema) == arguments


def test_multi_line_values_are_shown_in_a_comment_above_their_json_call():
    from mcp_magic.agent.events import ToolCallFinished, ToolCallStarted
    from mcp_magic.agent.runlog import RunLog

    log = RunLog()
    recorder = log.start("q", "m", [])
    recorder(ToolCallStarted("1", "data", "query_db", {"sql": "select a,\n  b\nfrom t"}))
    recorder(ToolCallFinished("1", "ok", 0.1, variable="t"))
    lines = export_run(log.get()).splitlines()
    assert lines[2:6] == ["# sql:", "#   select a,", "#     b", "#   from t"]
    assert lines[6].startswith("t = %mcp call data.query_db '{")


def test_call_lines_keep_json_values():
    arguments = {"filters": {"a": [1, 2, {"b": None}]}, "flag": True, "x": 1.5, "s": "null"}
    line = call_line("s", "t", arguments, None, None)
    assert read_back(line.split(" ", 3)[3], None) == arguments


def test_export_writes_calls_and_approved_code_in_order(manager):
    from mcp_magic.agent.events import CodeFinished

    provider = ScriptedProvider(
        Turn(
            tool_calls=[
                query("select name from regions", "q", "regions"),
                call("f__crash", {}, "bad"),
            ]
        ),
        Turn(text="ok"),
    )
    agent = Agent(manager, provider, {})
    run(agent, prompt="first line\nsecond", cell_key="k")
    recorder_run = agent.log.get()
    from mcp_magic.agent.runlog import RunRecorder

    recorder = RunRecorder(recorder_run, [])
    recorder(CodeFinished("c1", "ok", "top = regions.head(2)", variables=["top"]))
    recorder(CodeFinished("c2", "denied", "import os; os.remove('x')"))
    code = export_run(recorder_run)
    lines = code.splitlines()
    assert lines[0] == "# Run 1 of %agent, as code (no model needed): first line"
    assert 'regions = %mcp call data.query_db sql="select name from regions"' in lines
    assert "# skipped: f.crash (error)" in lines
    assert lines.index("top = regions.head(2)") > lines.index("# skipped: f.crash (error)")
    assert "os.remove" not in code and "# skipped: a code block (denied)" in lines


# -- token budget and cost -----------------------------------------------------------


def test_token_budget_stops_before_a_request_that_would_pass_it(manager):
    provider = ScriptedProvider(
        Turn(tool_calls=[query("select * from order_items limit 40", "q")], usage=Usage(900, 50)),
        Turn(text="never sent"),
    )
    agent = Agent(manager, provider, {})
    result, events = run(agent, max_tokens_total=1200, cell_key="k")
    assert len(provider.requests) == 1 and result.stopped_early
    notes = [e.text for e in events if isinstance(e, Notice)]
    assert len(notes) == 1 and notes[0].startswith("Stopped: the next model request (about")
    assert "budget of 1,200 tokens (950 used so far)" in notes[0] and "\n" not in notes[0]
    # the conversation stays valid: every tool call has its result, and it goes on
    roles = [m.role for m in agent.messages]
    assert roles == ["user", "assistant", "tool"]
    agent.provider = ScriptedProvider(Turn(text="fine"))
    again, _ = run(agent, prompt="go on", cell_key="k")
    assert again.text == "fine"
    assert [m.role for m in agent.provider.requests[0].messages] == [
        "user",
        "assistant",
        "tool",
        "user",
    ]


def test_a_budget_smaller_than_the_first_request_sends_nothing(manager):
    provider = ScriptedProvider(Turn(text="never"))
    agent = Agent(manager, provider, {})
    result, events = run(agent, max_tokens_total=10)
    assert provider.requests == [] and agent.messages == [] and result.text == ""
    assert any(isinstance(e, Notice) and "budget of 10 tokens" in e.text for e in events)
    with pytest.raises(ValueError, match="max_tokens_total"):
        AgentOptions(max_tokens_total=0)


def test_cost_is_shown_for_the_run_and_the_conversation(manager):
    agent = Agent(manager, ScriptedProvider(Turn(text="a", usage=Usage(10, 2, cost=0.001))), {})
    run(agent)
    agent.provider = ScriptedProvider(Turn(text="b", usage=Usage(10, 2, cost=0.002)))
    _, events = run(agent)
    report = next(e for e in events if isinstance(e, UsageReport))
    assert report.total.cost == pytest.approx(0.003)
    assert "$0.0020 (conversation $0.0030)" in usage_text(report)


def test_the_usage_line_names_the_model_that_answered():
    report = UsageReport(Usage(1, 1), "openrouter:openai/gpt-4o-mini", 1)
    assert usage_text(report).endswith("openrouter:openai/gpt-4o-mini · 1 step")
    report.served_by = "scripted-notebook-model"
    assert "openrouter:openai/gpt-4o-mini, answered by scripted-notebook-model" in usage_text(
        report
    )


# -- %agent subcommands --------------------------------------------------------------


def test_log_and_export_are_subcommands_only_when_bare_or_with_options():
    assert agent_subcommand("log") == ("log", "")
    assert agent_subcommand(" log --save runs.jsonl") == ("log", "--save runs.jsonl")
    assert agent_subcommand("export --run 2 --to x.ipy") == ("export", "--run 2 --to x.ipy")
    assert agent_subcommand("log the sales per region") is None
    assert agent_subcommand("export all tables to csv?") is None
    assert agent_subcommand("Which region sold most?") is None
    assert agent_subcommand("logs --save x") is None


def test_the_model_a_router_picked_reaches_the_usage_line_over_the_wire(manager, monkeypatch):
    from fakes import openai_wire as wire
    from fakes.scripted_http import ScriptedServer

    from mcp_magic.agent.providers import make_provider, resolve

    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test-" + "x" * 12)
    chunks = wire.stream_chunks(text="Hi.", usage_block=wire.usage(12, 3, cost=0.00002))
    for chunk in chunks:
        chunk["model"] = "anthropic/claude-3.5-haiku-20241022"
    with ScriptedServer() as server:
        server.push(wire.raw_stream(chunks))
        config = resolve("openrouter:openrouter/auto", base_url=server.url + "/api/v1")
        agent = Agent(manager, make_provider(config), {})
        _, events = run(agent)
        manager.run(agent.provider.aclose())
    report = next(e for e in events if isinstance(e, UsageReport))
    assert report.served_by == "anthropic/claude-3.5-haiku-20241022"
    assert "openrouter:openrouter/auto, answered by anthropic/claude-3.5-haiku" in usage_text(
        report
    )
    assert agent.log.frame().cost.iloc[-1] == 0.00002
    # a dated version of the model asked for is the same model: no remark
    from mcp_magic.agent.loop import _same_model

    assert _same_model("openai/gpt-4o-mini-2024-07-18", "openrouter:openai/gpt-4o-mini")
    assert _same_model("gpt-4o-mini", "openai:gpt-4o-mini")
    assert _same_model("qwen2.5:latest", "ollama:qwen2.5")
    assert not _same_model("scripted-notebook-model", "openrouter:openai/gpt-4o-mini")
    assert not _same_model("openai/gpt-4o-mini", "openrouter:openai/gpt-4o")


def test_approvals_are_logged_and_an_answer_in_the_tools_place_is_not_replayed(manager):
    provider = ScriptedProvider(
        Turn(
            tool_calls=[
                query("select name from regions", "a", "allowed"),
                query("select 1 as x", "b", "answered"),
                query("select 2 as y", "c", "denied"),
            ]
        ),
        Turn(text="ok"),
    )
    agent = Agent(manager, provider, {})
    answers = {"a": Decision("allow"), "b": Decision("answer", "42"), "c": Decision("deny")}

    def publish(event):
        if isinstance(event, ApprovalRequest):
            event.reply.set_result(answers[event.call_id])

    agent.manager.run(agent.run("q", AgentOptions(approval="always"), publish))
    tools = agent.log.frame().query("kind == 'tool'")
    assert list(tools.status) == ["ok", "answered", "denied"]
    assert tools.text.iloc[0] == "approved by the user" and "did not run" in tools.text.iloc[1]
    code = export_run(agent.log.get())
    assert "allowed = %mcp call data.query_db" in code
    assert "# skipped: data.query_db (answered)" in code
    assert "# skipped: data.query_db (denied)" in code and "select 1" not in code


def test_results_prefix_names_the_tables_the_model_leaves_unnamed(manager):
    provider = ScriptedProvider(
        Turn(tool_calls=[query("select 1 as a", "1"), query("select 2 as b", "2", "named")]),
        Turn(text="ok"),
    )
    result, _ = run(Agent(manager, provider, {}), results_prefix="drill", cell_key="k")
    assert list(result.variables) == ["drill_1", "named"]


def test_a_table_never_takes_the_name_the_answer_goes_to(manager):
    provider = ScriptedProvider(Turn(tool_calls=[query("select 1 as a", "1", "summary")]), Turn())
    result, events = run(Agent(manager, provider, {}), reserved_names=frozenset({"summary"}))
    assert list(result.variables) == ["summary_2"]
    assert any("`summary` is where the answer's text goes" in e.text for e in events
               if isinstance(e, Notice))


def test_code_blocks_are_logged_once_whether_replied_or_published():
    import concurrent.futures

    from mcp_magic.agent.events import CodeFinished, CodeRequest
    from mcp_magic.agent.runlog import RunLog

    log = RunLog()
    recorder = log.start("p", "m", ["sk-hidden-123"])
    request = CodeRequest("c1", "x = 1  # sk-hidden-123", ask=True)
    recorder(request)
    done = CodeFinished(
        "c1", "ok", "x = 1  # sk-hidden-123", 0.25, output="printed", variables=["x"], edited=True
    )
    request.reply.set_result(done)  # the main thread answers the loop...
    recorder(done)  # ...and the loop publishes what ran: still one row
    recorder(CodeFinished("c2", "denied", "rm()", error="denied by the user"))
    assert isinstance(request.reply, concurrent.futures.Future)
    code = [row for row in log.rows() if row["kind"] == "code"]
    assert [row["status"] for row in code] == ["ok", "denied"]
    assert code[0]["text"] == "x = 1  # ***" and code[0]["variable"] == "x"
    assert code[0]["arguments"] == {"edited": True} and code[0]["preview"] == "printed"
    assert code[1]["preview"] == "denied by the user"
