"""The notebook tools and code mode through the real loop: a real provider speaking the
OpenAI wire to a scripted model on 127.0.0.1, the built-in data server over stdio, and
the code run the way the kernel's main thread runs it (`driver.run_agent`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from fakes import openai_wire as wire
from fakes.scripted_http import ScriptedServer

from mcp_magic.agent.code_mode import python_name, run_code
from mcp_magic.agent.driver import run_agent, run_code_request
from mcp_magic.agent.events import CodeFinished, CodeRequest, Notice, ToolCallFinished
from mcp_magic.agent.loop import Agent, AgentOptions
from mcp_magic.agent.providers import make_provider, resolve
from mcp_magic.display.asking import ask_code
from mcp_magic.host.config import builtin_spec
from mcp_magic.host.sessions import SessionManager
from mcp_magic.tables.results import interpret

MODEL = "openrouter:openai/gpt-4o-mini"
SQL = "select region, count(distinct order_id) as n from sales group by region order by region"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture(scope="module")
def manager() -> Iterator[SessionManager]:
    manager = SessionManager()
    manager.connect("data", builtin_spec())
    yield manager
    manager.close()


@pytest.fixture
def scripted(endpoint, monkeypatch, tmp_path) -> ScriptedServer:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENROUTER_API_KEY", "fake-code-mode-key")
    endpoint.replies.clear()
    endpoint.requests.clear()
    return endpoint


def agent_for(manager: SessionManager, endpoint: ScriptedServer, namespace: dict) -> Agent:
    return Agent(manager, make_provider(resolve(MODEL, base_url=endpoint.url)), namespace)


def turn(
    agent: Agent,
    prompt: str,
    ask: Any = None,
    **options: Any,
) -> tuple[Any, list]:
    events: list = []

    def code(request: CodeRequest) -> CodeFinished:
        return run_code_request(request, agent.namespace, ask)

    result = run_agent(
        agent.manager,
        agent,
        prompt,
        AgentOptions(**options),
        events.append,
        lambda request: pytest.fail("no tool approval expected"),
        code=code,
    )
    return result, events


def offered(body: dict) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or []]


tool_messages = wire.tool_results


# -- notebook tools ----------------------------------------------------------------------


def big_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": ["North", "South", "East"] * 400,
            "amount": range(1200),
            "note": ["x" * 500] * 1200,
        }
    )


def test_notebook_tools_list_and_look_at_dataframes_in_bounded_previews(manager, scripted):
    namespace = {"sales": big_frame(), "_hidden": big_frame(), "n": 3}
    agent = agent_for(manager, scripted, namespace)
    scripted.push(
        wire.stream(
            calls=[
                wire.Call("l", "notebook__list_dataframes", {}),
                wire.Call("h", "notebook__head", {"name": "sales", "rows": 50}),
                wire.Call("h2", "notebook__head", {"name": "sales", "rows": 500}),
                wire.Call("d", "notebook__describe", {"name": "sales"}),
                wire.Call("v", "notebook__value_counts", {"name": "sales", "column": "region"}),
                wire.Call("x", "notebook__head", {"name": "nope"}),
            ]
        ),
        wire.stream(text="seen"),
    )
    _, events = turn(agent, "what tables do I have?")
    names = offered(scripted.requests[0].body)
    assert {"notebook__list_dataframes", "notebook__head", "notebook__describe",
            "notebook__value_counts"} <= set(names)  # fmt: skip
    results = tool_messages(scripted.requests[1].body)
    assert "sales,1200,3," in results["l"] and "_hidden" not in results["l"]
    assert "first 50 rows" in results["h"]
    assert "greater than the maximum of 50" in results["h2"]  # bounded by the schema
    assert all(len(text) < 5000 for text in results.values())  # never a whole table
    assert "x" * 81 not in results["h"]  # long cells are cut
    assert "amount" in results["d"] and "North,400" in results["v"]
    assert results["x"].startswith("Error: no DataFrame named 'nope'")
    blocks = {e.call_id: e for e in events if isinstance(e, ToolCallFinished)}
    assert blocks["l"].status == "ok" and blocks["x"].status == "error"
    assert len(blocks["h"].result) == 50 and blocks["h"].variable is None


def test_notebook_tools_obey_allow_and_deny_like_a_server(manager, scripted):
    agent = agent_for(manager, scripted, {"sales": big_frame()})
    for options, expect in [
        ({"deny": ["notebook"]}, lambda n: not any(x.startswith("notebook__") for x in n)),
        ({"allow": ["notebook.list_dataframes"]}, lambda n: n == ["notebook__list_dataframes"]),
        (
            {"deny": ["notebook.head"]},
            lambda n: (
                "notebook__head" not in n and "notebook__describe" in n and "data__query_db" in n
            ),
        ),
    ]:
        scripted.requests.clear()
        scripted.push(wire.stream(text="ok"))
        turn(agent, "hi", **options)
        assert expect(offered(scripted.requests[0].body)), (
            options,
            offered(scripted.requests[0].body),
        )
    # no DataFrames in the notebook: nothing to offer
    agent = agent_for(manager, scripted, {})
    scripted.requests.clear()
    scripted.push(wire.stream(text="ok"))
    turn(agent, "hi")
    assert not any(n.startswith("notebook__") for n in offered(scripted.requests[0].body))


# -- code mode -------------------------------------------------------------------------------


CODE = f"""counts = data.query_db(sql={SQL!r})
print("regions:", len(counts))
counts"""


def test_code_mode_runs_code_that_calls_tools_and_keeps_its_variables(manager, scripted):
    namespace: dict = {"pd": pd}
    agent = agent_for(manager, scripted, namespace)
    scripted.push(
        wire.code_call("c1", CODE),
        wire.stream(text="Five regions."),
    )
    result, events = turn(agent, "orders per region?", code=True, code_approval=False)
    assert result.text == "Five regions."
    first = scripted.requests[0].body
    assert offered(first) == ["notebook__run_python"]  # the tools are functions in the code
    description = first["tools"][0]["function"]["description"]
    assert "data.query_db(sql: str" in description
    # The DataFrame the code made is the one %mcp call data.query_db returns.
    direct = interpret(manager.call_tool("data", "query_db", {"sql": SQL}), "query_db").value
    pd.testing.assert_frame_equal(namespace["counts"], direct)
    told = tool_messages(scripted.requests[1].body)["c1"]
    assert (
        "regions: 5" in told and "5 rows × 2 columns" in told and "counts (DataFrame 5×2)" in told
    )
    done = [e for e in events if isinstance(e, CodeFinished)]
    assert [d.status for d in done] == ["ok"] and done[0].variables == ["counts"]
    assert isinstance(done[0].result, pd.DataFrame)
    assert [e for e in events if isinstance(e, CodeRequest)][0].ask is False


def test_code_mode_never_shadows_a_users_variable(manager, scripted):
    namespace: dict = {"data": "my own data", "pd": pd}
    agent = agent_for(manager, scripted, namespace)
    code = f"n = len(mcp_servers.data.query_db(sql={SQL!r}))\nn"
    scripted.push(
        wire.code_call("c", code),
        wire.stream(text="ok"),
    )
    turn(agent, "count", code=True, code_approval=False)
    assert namespace["data"] == "my own data" and namespace["n"] == 5
    description = scripted.requests[0].body["tools"][0]["function"]["description"]
    assert "mcp_servers.data.query_db(" in description and "\n- data.query_db" not in description
    assert "Value: 5" in tool_messages(scripted.requests[1].body)["c"]


def test_code_mode_deny_and_edit(manager, scripted):
    namespace: dict = {"pd": pd}
    agent = agent_for(manager, scripted, namespace)
    scripted.push(
        wire.code_call("d", "wiped = True"),
        wire.code_call("e", "x = 1\nx"),
        wire.stream(text="done"),
    )
    answers = iter([("deny", ""), ("edit", "x = 41 + 1\nx")])
    _, events = turn(agent, "go", ask=lambda request: next(answers), code=True)
    assert "wiped" not in namespace and namespace["x"] == 42
    told = tool_messages(scripted.requests[2].body)
    assert told["d"].startswith("Not run") and "denied" in told["d"]
    assert (
        "edited your code" in told["e"] and "x = 41 + 1" in told["e"] and "Value: 42" in told["e"]
    )
    done = {e.call_id: e for e in events if isinstance(e, CodeFinished)}
    assert done["d"].status == "denied" and done["e"].edited and done["e"].code == "x = 41 + 1\nx"


def test_code_mode_with_nobody_to_ask_denies_in_one_line(manager, scripted):
    def no_stdin(prompt: str) -> str:
        raise EOFError

    namespace: dict = {}
    agent = agent_for(manager, scripted, namespace)
    scripted.push(
        wire.code_call("q", "ran = 1"),
        wire.stream(text="ok"),
    )
    _, events = turn(agent, "go", ask=lambda r: ask_code(r, read=no_stdin), code=True)
    assert "ran" not in namespace
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "nobody can answer" in notices[0] and "\n" not in notices[0]
    assert "--approve never" in tool_messages(scripted.requests[1].body)["q"]


def test_code_errors_reach_the_model_as_their_last_line(manager, scripted):
    agent = agent_for(manager, scripted, {})
    code = "print('before')\n{}['missing']"
    bad_sql = "data.query_db(sql='select * from nowhere')"
    scripted.push(
        wire.stream(calls=[wire.Call("k", "notebook__run_python", {"code": code}),
                           wire.Call("s", "notebook__run_python", {"code": bad_sql})]),
        wire.stream(text="oops"),
    )  # fmt: skip
    turn(agent, "go", code=True, code_approval=False)
    told = tool_messages(scripted.requests[1].body)
    assert "Output:\nbefore" in told["k"] and "Error: KeyError: 'missing' (line 2)" in told["k"]
    assert "Traceback" not in told["k"]
    assert told["s"].startswith("Error: ToolError: data.query_db:") and "nowhere" in told["s"]
    assert agent.messages[-1].content == "oops"


def test_run_code_captures_bounded_output_and_the_last_value():
    namespace: dict = {}
    finished = run_code("for i in range(100000): print(i)\ny = 2\ny * 21", namespace)
    assert finished.status == "ok" and finished.result == 42 and namespace["y"] == 2
    assert len(finished.output) < 21_000 and "more characters not kept" in finished.output
    assert run_code("def (", {}).error.startswith("SyntaxError")


def test_server_names_become_identifiers():
    assert python_name("my-db") == "my_db" and python_name("class") == "class_"
    assert python_name("3d") == "_3d"


def test_code_requests_are_denied_without_a_runner(manager, scripted):
    agent = agent_for(manager, scripted, {})
    scripted.push(
        wire.code_call("r", "1"),
        wire.stream(text="ok"),
    )
    events: list = []
    run_agent(manager, agent, "go", AgentOptions(code=True), events.append, lambda r: None)
    assert "not available" in json.dumps(tool_messages(scripted.requests[1].body))


def test_pandas_is_there_and_cut_tables_say_so(manager, scripted):
    namespace: dict = {}
    agent = agent_for(manager, scripted, namespace)
    code = "rows = data.query_db(sql='select * from sales', limit=3)\npd.DataFrame(rows).shape"
    scripted.push(
        wire.code_call("p", code),
        wire.stream(text="ok"),
    )
    turn(agent, "go", code=True, code_approval=False)
    told = tool_messages(scripted.requests[1].body)["p"]
    assert "Value: (3, " in told
    assert "[data.query_db]" in told  # the server's note that the rows were cut


# -- the code block on screen ------------------------------------------------------------


def test_code_block_renders_escaped_with_code_output_and_value():
    from mcp_magic.display.agent_view import code_block_html, code_block_text

    code = "print('<script>alert(1)</script>')\ntable"
    request = CodeRequest("c", code, ask=True)
    waiting = code_block_html(request, None, code, open_=True)
    assert waiting.startswith("<details class='mcp-magic-code mcp-magic-running' open>")
    assert "waiting for approval" in waiting and "<script>" not in waiting
    frame = pd.DataFrame({"region": ["North", "<b>South</b>"], "n": [1, 2]})
    done = CodeFinished(
        "c", "ok", code, 0.25, output="<script>alert(1)</script>\n", result=frame,
        variables=["table"], edited=True,
    )  # fmt: skip
    html = code_block_html(request, done, code)
    assert " open" not in html.split(">")[0] and "<script>" not in html and "<b>South" not in html
    assert "&lt;script&gt;" in html and "table" in html and "2 rows × 2 columns" in html
    assert "→ table" in html and "edited by you" in html
    text = code_block_text(request, done, code)
    lines = text.splitlines()
    assert lines[0].startswith("✓ notebook.run_python — ok")
    assert "    print('<script>alert(1)</script>')" in lines
    assert any(line.strip().startswith("value: 2 rows × 2 columns") for line in lines)
    failed = CodeFinished("c", "error", "1/0", error="ZeroDivisionError: division by zero (line 1)")
    assert "ZeroDivisionError" in code_block_html(None, failed, "1/0")


def test_allow_and_deny_reach_into_the_code(manager, scripted):
    namespace: dict = {}
    agent = agent_for(manager, scripted, namespace)
    code = "data.query_db(sql='select 1 as one')"
    scripted.push(
        wire.code_call("a", code),
        wire.stream(text="ok"),
    )
    turn(agent, "go", code=True, code_approval=False, deny=["data.query_db"])
    description = scripted.requests[0].body["tools"][0]["function"]["description"]
    assert "data.read_csv(" in description and "query_db" not in description
    told = tool_messages(scripted.requests[1].body)["a"]
    assert told.startswith("Error: AttributeError: data.query_db is not allowed in this run")
    # denying the code tool itself leaves nothing to offer
    scripted.requests.clear()
    scripted.push(wire.stream(text="no tools"))
    turn(agent, "go", code=True, deny=["notebook"])
    assert "tools" not in scripted.requests[0].body
    # a server object left by an earlier run obeys the current run's --deny ...
    scripted.requests.clear()
    code = "data.read_csv(path='x.csv')"
    scripted.push(
        wire.code_call("b", code),
        wire.stream(text="ok"),
    )
    turn(agent, "go", code=True, code_approval=False, deny=["data"])
    assert "data.read_csv is not allowed in this run" in tool_messages(
        scripted.requests[1].body
    )["b"]
    # ... while the user's own cells call any tool, as %mcp call does
    assert namespace["data"].query_db(sql="select 1 as one").iloc[0, 0] == 1
