"""Requests servers make of the client (elicitation, sampling, roots), through Host.

Both request styles, against real servers: a 2026 server that answers
`InputRequiredResult` and gets the call retried with the answers (multi-round-trip),
and the npm reference server-everything, which sends 2025-style requests.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from widget_front import WidgetFront

from mcp_magic import Host
from mcp_magic.api import ToolError
from mcp_magic.host.client_requests import Answer, Elicitation, accept_defaults
from mcp_magic.host.sessions import McpError

from conftest import node_server
from kernel_utils import collect, ok, start_kernel, stop_kernel

ASKING_SERVER = '''
import mcp_types as t
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer(name="asking")
SCHEMA = {"type": "object", "properties": {
    "city": {"type": "string", "default": "Paris"},
    "nights": {"type": "integer", "default": 2}}}


def first_round(ctx, request):
    if ctx.input_responses is None:
        return t.InputRequiredResult(input_requests={"q": request})
    return None


@server.tool()
async def ask(ctx: Context) -> object:
    request = t.ElicitRequest(params=t.ElicitRequestFormParams(
        message="Where to?", requested_schema=SCHEMA))
    if (first := first_round(ctx, request)) is not None:
        return first
    answer = ctx.input_responses["q"]
    if answer.action == "accept":
        return f"accepted {answer.content['city']} {answer.content['nights']}"
    return f"answer: {answer.action}"


@server.tool()
async def roots(ctx: Context) -> object:
    if (first := first_round(ctx, t.ListRootsRequest())) is not None:
        return first
    return " ".join(str(r.uri) for r in ctx.input_responses["q"].roots)


@server.tool()
async def sample(ctx: Context) -> object:
    request = t.CreateMessageRequest(params=t.CreateMessageRequestParams(
        messages=[t.SamplingMessage(role="user", content=t.TextContent(type="text", text="hi"))],
        max_tokens=10))
    if (first := first_round(ctx, request)) is not None:
        return first
    return f"model said {ctx.input_responses['q'].content.text}"


WEATHER = t.Tool(name="weather", description="The weather in a city",
                 input_schema={"type": "object", "properties": {"city": {"type": "string"}}})


@server.tool()
async def sample_tools(ctx: Context) -> object:
    request = t.CreateMessageRequest(params=t.CreateMessageRequestParams(
        messages=[t.SamplingMessage(role="user", content=t.TextContent(
            type="text", text="weather in Oslo?"))], max_tokens=50, tools=[WEATHER]))
    if (first := first_round(ctx, request)) is not None:
        return first
    answer = ctx.input_responses["q"]
    parts = answer.content if isinstance(answer.content, list) else [answer.content]
    uses = [f"{p.name}{p.input}" for p in parts if p.type == "tool_use"]
    return f"{answer.stop_reason}: {' '.join(uses)}"


@server.tool()
async def sample_after_tools(ctx: Context) -> object:
    request = t.CreateMessageRequest(params=t.CreateMessageRequestParams(messages=[
        t.SamplingMessage(role="user", content=t.TextContent(type="text", text="weather?")),
        t.SamplingMessage(role="assistant", content=[t.ToolUseContent(
            type="tool_use", id="u1", name="weather", input={"city": "Oslo"})]),
        t.SamplingMessage(role="user", content=[t.ToolResultContent(
            type="tool_result", tool_use_id="u1",
            content=[t.TextContent(type="text", text="sunny")])]),
    ], max_tokens=50, tools=[WEATHER]))
    if (first := first_round(ctx, request)) is not None:
        return first
    return f"model said {ctx.input_responses['q'].content.text}"


server.run()
'''


@pytest.fixture(scope="module")
def asking_server(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    path = tmp_path_factory.mktemp("asking") / "asking.py"
    path.write_text(ASKING_SERVER)
    return [sys.executable, str(path)]


def test_a_2026_server_gets_the_users_answers_and_roots(asking_server, tmp_path):
    asked: list[Elicitation] = []

    def elicit(request: Elicitation) -> dict:
        asked.append(request)
        return {"city": "Rome", "nights": 3}

    with Host(connect_timeout=30, elicit=elicit, roots=[str(tmp_path)]) as host:
        host.connect("a", asking_server)
        assert host.manager.get("a").protocol_version == "2026-07-28"
        assert host.call("a.ask") == "accepted Rome 3"
        assert asked[0].server == "a" and asked[0].message == "Where to?"
        assert asked[0].defaults == {"city": "Paris", "nights": 2}
        assert host.call("a.roots") == tmp_path.resolve().as_uri()


def test_defaults_decline_and_cancel_reach_the_server(asking_server):
    for handler, expected in [
        (accept_defaults, "accepted Paris 2"),
        (lambda request: None, "answer: decline"),
        (lambda request: Answer("cancel"), "answer: cancel"),
    ]:
        with Host(connect_timeout=30, elicit=handler) as host:
            host.connect("a", asking_server)
            assert host.call("a.ask") == expected


def test_with_no_one_to_ask_the_answer_is_decline_and_it_says_so(asking_server, capfd):
    with Host(connect_timeout=30) as host:
        host.connect("a", asking_server)
        assert host.call("a.ask") == "answer: decline"
    err = capfd.readouterr().err
    assert "a asked for input ('Where to?'): declined, no one to answer" in err


def test_a_failing_handler_raises_instead_of_returning_text(asking_server):
    def broken(request: Elicitation) -> dict:
        raise RuntimeError("the form broke")

    with Host(connect_timeout=30, elicit=broken) as host:
        host.connect("a", asking_server)
        with pytest.raises(McpError, match="elicitation failed: RuntimeError: the form broke"):
            host.call("a.ask")
        assert host.manager.get("a").state == "connected"


def test_sampling_without_a_model_is_declined_with_a_clear_error(asking_server):
    with Host(connect_timeout=30) as host:
        host.connect("a", asking_server)
        with pytest.raises(McpError, match="asked for a model completion: declined, no model"):
            host.call("a.sample")


def test_a_local_server_is_offered_the_working_directory_unless_told_otherwise(
    asking_server, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with Host(connect_timeout=30) as host:
        host.connect("a", asking_server)
        assert host.call("a.roots") == tmp_path.resolve().as_uri()
    with Host(connect_timeout=30, roots=[]) as host:  # [] offers none
        host.connect("a", asking_server)
        with pytest.raises(McpError):
            host.call("a.roots")


def test_the_filesystem_server_keeps_the_directories_its_command_line_gave_it(
    tmp_path, monkeypatch
):
    # server-filesystem replaces its allowed directories with the roots it is told of:
    # offered the notebook's directory it would lose the one the user named.
    notebook, data = tmp_path / "notebook", tmp_path / "data"
    notebook.mkdir()
    data.mkdir()
    (data / "sales.csv").write_text("region,amount\nnorth,3\n")
    monkeypatch.chdir(notebook)
    with Host(connect_timeout=60) as host:
        host.connect("fs", [node_server("mcp-server-filesystem"), str(data)])
        session = host.manager.get("fs")
        deadline = time.monotonic() + 30  # it asks for roots once it is initialized
        while "from MCP roots" not in session.log_tail() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "from MCP roots" in session.log_tail()
        allowed = str(host.call("fs.list_allowed_directories"))
        assert str(data.resolve()) in allowed and str(notebook.resolve()) not in allowed
        table = host.call("fs.read_text_file", path=str(data / "sales.csv"))
        assert table["region"].tolist() == ["north"]


def test_a_remote_server_is_offered_no_roots():
    from mcp_magic.host.client_requests import automatic_roots
    from mcp_magic.host.config import HttpSpec, StdioSpec

    assert automatic_roots(HttpSpec("https://mcp.example.com/mcp")) == []
    assert automatic_roots(HttpSpec("http://127.0.0.1:8000/mcp")) == ["."]
    assert automatic_roots(HttpSpec("http://[::1]:8000/mcp")) == ["."]
    assert automatic_roots(HttpSpec("http://localhost/mcp")) == ["."]
    assert automatic_roots(StdioSpec("uvx", ("mcp-server-duckdb", "--db-path=x.db"))) == ["."]
    assert automatic_roots(StdioSpec("srv", ("--root=/", "-y"))) == ["/"]


def test_2025_requests_from_server_everything():
    with Host(connect_timeout=60, elicit=accept_defaults, roots=["/tmp"]) as host:
        host.connect("ev", node_server("mcp-server-everything"))
        assert host.manager.get("ev").protocol_version.startswith("2025")
        answer = host.call("ev.trigger-elicitation-request")
        assert '"action": "accept"' in answer and "It was a dark and stormy night." in answer
        assert "file:///tmp" in host.call("ev.get-roots-list")
        with pytest.raises(ToolError, match="declined, no model set up"):
            host.call("ev.trigger-sampling-request", prompt="hi")


# -- sampling answered by a model ----------------------------------------------------


def test_sampling_is_answered_by_the_model_after_approval(asking_server, monkeypatch):
    from fakes.openai_wire import completion_reply
    from fakes.scripted_http import ScriptedServer

    from mcp_magic.host.client_requests import SamplingRequest

    approvals: list[SamplingRequest] = []
    with ScriptedServer() as model:
        monkeypatch.setenv("SCRIPTED_BASE_URL", model.url + "/v1")
        model.push(completion_reply("bonjour"), completion_reply("hola"))

        def approve(request: SamplingRequest) -> bool:
            approvals.append(request)
            return len(approvals) != 2  # the second is denied

        with Host(connect_timeout=30, sampling_model="scripted:m1",
                  approve_sampling=approve) as host:
            host.connect("a", asking_server)
            assert host.call("a.sample") == "model said bonjour"
            with pytest.raises(McpError, match="declined, the user denied it"):
                host.call("a.sample")
            host.connect("ev", node_server("mcp-server-everything"))
            assert "hola" in host.call("ev.trigger-sampling-request", prompt="say hola")
        sent = model.bodies()
    assert approvals[0].server == "a" and approvals[0].messages == [("user", "hi")]
    assert sent[0]["model"] == "m1" and sent[0]["messages"][-1]["content"] == "hi"
    assert sent[0]["max_tokens"] == 10 or sent[0].get("max_completion_tokens") == 10
    assert "say hola" in json.dumps(sent[1]["messages"])


# -- the notebook: questions in the running cell (a real kernel) -----------------------


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, asking_server):
    # Questions at the input prompt here; the widget form has its own test.
    km, kc = start_kernel(tmp_path_factory.mktemp("kernel"),
                          env={"MCP_MAGIC_NO_BROWSER": "1", "MCP_MAGIC_ASK": "prompt"})
    try:
        ok(kc, "%load_ext mcp_magic")
        ok(kc, f"%mcp connect a -- {' '.join(asking_server)}", timeout=60)
        yield km, kc
    finally:
        stop_kernel(km, kc)


def answering(kc, code: str, replies: list[str], allow_stdin: bool = True,
              timeout: float = 60) -> tuple[list[str], list[dict], dict]:
    """Run `code`, answering the kernel's input prompts with `replies` in turn."""
    msg_id = kc.execute(code, allow_stdin=allow_stdin)
    prompts = []
    for reply in replies:
        message = kc.get_stdin_msg(timeout=timeout)
        prompts.append(message["content"]["prompt"])
        kc.input(reply)
    outputs, reply_msg = collect(kc, msg_id, timeout)
    return prompts, outputs, reply_msg


def shown(outputs: list[dict]) -> str:
    return "".join(
        o.get("text", "") if o["msg_type"] == "stream"
        else o.get("data", {}).get("text/html", "") + o.get("data", {}).get("text/plain", "")
        for o in outputs
    )


def test_a_servers_form_is_answered_in_the_cell(kernel):
    km, kc = kernel
    prompts, outputs, reply = answering(
        kc, "r = %mcp call a.ask\nprint(r)", ["y", "Rome", "x", "3"])
    assert reply["content"]["status"] == "ok", reply["content"]
    assert prompts[0] == "[y] answer  [n] decline  [c] cancel: "
    assert prompts[1].startswith("city (string, default Paris)")
    assert prompts[2] == prompts[3] == "nights (integer, default 2): "
    text = shown(outputs)
    assert "Where to?" in text and "nights: a whole number, got &#x27;x&#x27;" not in text
    assert "nights: a whole number, got 'x'" in text
    assert "accepted Rome 3" in text
    # Defaults by pressing enter; decline; cancel.
    ask = "r = %mcp call a.ask\nprint(r)"
    assert "accepted Paris 2" in shown(answering(kc, ask, ["", "", ""])[1])
    assert "answer: decline" in shown(answering(kc, ask, ["n"])[1])
    assert "answer: cancel" in shown(answering(kc, ask, ["c"])[1])


def test_with_nobody_to_answer_the_cell_says_declined_in_one_line(kernel):
    km, kc = kernel
    _, outputs, reply = answering(kc, "r = %mcp call a.ask\nprint(r)", [], allow_stdin=False)
    assert reply["content"]["status"] == "ok"
    text = shown(outputs)
    assert "answer: decline" in text
    lines = [line for line in text.splitlines() if "declined" in line]
    assert lines == ["a asked for input ('Where to?'): declined, nobody can answer here "
                     "(non-interactive run)"], text


def test_the_stop_button_cancels_a_pending_question(kernel):
    km, kc = kernel
    msg_id = kc.execute("%mcp call a.ask", allow_stdin=True)
    kc.get_stdin_msg(timeout=60)
    km.interrupt_kernel()
    outputs, reply = collect(kc, msg_id, 30)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "Interrupted", reply["content"]
    assert "call to a.ask cancelled" in reply["content"]["evalue"]
    assert len(reply["content"]["traceback"]) == 1
    # The session lives on.
    assert "answer: cancel" in shown(answering(kc, "r = %mcp call a.ask\nprint(r)", ["c"])[1])


def test_sampling_in_the_notebook_asks_then_uses_the_default_model(kernel):
    from fakes.openai_wire import completion_reply
    from fakes.scripted_http import ScriptedServer

    km, kc = kernel
    # No model set up: declined in one line, and the call fails (never a value).
    _, outputs, reply = answering(kc, "%mcp call a.sample", [])
    assert reply["content"]["status"] == "error"
    assert "declined, no model set up" in reply["content"]["evalue"]
    with ScriptedServer() as model:
        model.push(completion_reply("ciao"))
        ok(kc, f"%config McpMagics.endpoints = {{'local': '{model.url}/v1'}}\n"
               "%config McpMagics.default_model = 'local:m2'")
        prompts, outputs, reply = answering(kc, "r = %mcp call a.sample\nprint(r)", ["y"])
        assert reply["content"]["status"] == "ok", reply["content"]
        assert prompts == ["[y] allow  [n] deny: "]
        text = shown(outputs)
        assert "a asks the notebook&#x27;s model to answer (at most 10 tokens)" in text
        assert "[user] hi" in text and "model said ciao" in text
        _, outputs, reply = answering(kc, "%mcp call a.sample", ["n"])
        assert "declined, the user denied it" in reply["content"]["evalue"]
        assert len(model.requests) == 1  # denied: the model was not asked
    ok(kc, "%config McpMagics.default_model = ''")


def answering_by(kc, code: str, respond, timeout: float = 60, limit: int = 40
                 ) -> tuple[list[str], list[dict], dict]:
    """Run `code`, answering each input prompt with `respond(prompt)` until the cell is
    done (its idle status), whatever other messages are about."""
    import queue
    import time

    from kernel_utils import OUTPUT_TYPES

    msg_id = kc.execute(code, allow_stdin=True)
    prompts: list[str] = []
    outputs: list[dict] = []
    deadline = time.monotonic() + timeout
    idle = False
    while not idle:
        assert time.monotonic() < deadline and len(prompts) < limit, (prompts, outputs)
        try:
            message = kc.get_stdin_msg(timeout=0.2)
            prompts.append(message["content"]["prompt"])
            kc.input(respond(prompts[-1]))
        except queue.Empty:
            pass
        while True:
            try:
                message = kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                break
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            if message["msg_type"] in OUTPUT_TYPES:
                outputs.append({"msg_type": message["msg_type"], **message["content"]})
            elif (message["msg_type"] == "status"
                  and message["content"]["execution_state"] == "idle"):
                idle = True
    while True:
        reply = kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return prompts, outputs, reply


def everything_answers(prompt: str) -> str:
    for start, answer in [("[y]", "y"), ("String (", "Ada"), ("Boolean (", "y"),
                          ("String with email", "ada@example.org")]:
        if prompt.startswith(start):
            return answer
    return ""  # the defaults, and optional fields left out


def test_2025_form_and_url_requests_from_server_everything_in_the_cell(kernel):
    km, kc = kernel
    ok(kc, f"%mcp connect ev -- {node_server('mcp-server-everything')}", timeout=90)
    prompts, outputs, reply = answering_by(
        kc, "r = %mcp call ev.trigger-elicitation-request\nprint(r)", everything_answers)
    assert reply["content"]["status"] == "ok", reply["content"]
    text = shown(outputs)
    assert '"action": "accept"' in text, text
    assert '"name": "Ada"' in text and '"email": "ada@example.org"' in text
    assert '"integer": 42' in text and "dark and stormy night" in text
    assert any(p.startswith("Integer (integer 1..100, default 42)") for p in prompts)
    # URL mode: the link is shown, and declining opens nothing.
    prompts, outputs, reply = answering_by(
        kc, "r = %mcp call ev.trigger-url-elicitation url=https://example.org/consent\n"
        "print(r)", lambda p: "n")
    assert prompts == ["[y] open it  [n] decline  [c] cancel: "]
    assert '<a href="https://example.org/consent"' in shown(outputs)
    assert "User declined to open the URL" in shown(outputs)
    ok(kc, "%mcp disconnect ev")


def test_an_agents_tool_call_waits_for_the_users_answer(kernel):
    from fakes import openai_wire as wire
    from fakes.scripted_http import ScriptedServer

    km, kc = kernel
    with ScriptedServer() as model:
        model.push(
            wire.stream(calls=[wire.Call("c1", "a__ask", {})]),
            wire.stream(text="You are going to Oslo."),
        )
        ok(kc, f"%config McpMagics.endpoints = {{'local': '{model.url}/v1'}}")
        prompts, outputs, reply = answering(
            kc, "%%agent local:m3 --new\nPlan my trip", ["y", "Oslo", "4"], timeout=90)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert prompts[1].startswith("city (")
        tool_result = json.dumps(model.bodies()[1]["messages"])
    assert "accepted Oslo 4" in tool_result
    assert "You are going to Oslo." in shown(outputs)


# -- terminal IPython: the same questions as prompts -----------------------------------


def test_terminal_ipython_asks_at_a_prompt_and_ctrl_c_cancels(asking_server, tmp_path):
    from test_terminal import Terminal

    term = Terminal([], tmp_path)
    try:
        term.run("%load_ext mcp_magic")
        assert "Connected 'a'" in term.run(f"%mcp connect a -- {' '.join(asking_server)}")
        child = term.child
        child.send("%mcp call a.ask\r")
        child.expect_exact("a asks: Where to?")
        child.expect_exact("[y] answer  [n] decline  [c] cancel: ")
        child.send("y\r")
        child.expect_exact("city (string, default Paris): ")
        child.send("Rome\r")
        child.expect_exact("nights (integer, default 2): ")
        child.send("three\r")
        child.expect_exact("nights: a whole number, got 'three'")
        child.expect_exact("nights (integer, default 2): ")
        child.send("3\r")
        assert "accepted Rome 3" in term.settle()
        # A pending question is cancelled by Ctrl-C, in one line; the session lives on.
        child.send("%mcp call a.ask\r")
        child.expect_exact("[y] answer  [n] decline  [c] cancel: ")
        child.sendintr()
        out = term.settle(timeout=15)
        assert "Interrupted: call to a.ask cancelled" in out, out
        assert "Traceback" not in out, out
        child.send("%mcp call a.ask\r")
        child.expect_exact("[y] answer  [n] decline  [c] cancel: ")
        child.send("n\r")
        assert "answer: decline" in term.settle()
    finally:
        term.close()


def test_a_call_refused_until_a_page_is_visited_is_retried_after_consent():
    # -32042 (URL elicitation required): the page is shown as a URL question; after the
    # user accepts, the call is made again. Declined: the refusal stands.
    asked: list[Elicitation] = []

    def visit(request: Elicitation) -> Answer:
        asked.append(request)
        return Answer("accept")

    with Host(connect_timeout=60, elicit=visit) as host:
        host.connect("ev", node_server("mcp-server-everything"))
        answer = host.call("ev.trigger-url-elicitation", url="https://example.org/consent",
                           errorPath=True)
        assert "https://example.org/consent" in json.dumps(answer, default=str)
        # The refusal's page first; the retried call then asks for its own.
        assert [a.url for a in asked] == [asked[0].url, "https://example.org/consent"]
        assert asked[0].url.startswith("https://")
    with Host(connect_timeout=60, elicit=lambda request: None) as host:
        host.connect("ev", node_server("mcp-server-everything"))
        with pytest.raises(McpError, match="32042"):
            host.call("ev.trigger-url-elicitation", url="https://example.org/consent",
                      errorPath=True)


# -- the widget form in Jupyter -----------------------------------------------------


def test_in_jupyter_the_form_is_widgets_answered_while_the_cell_waits(kernel):
    km, kc = kernel
    ok(kc, "%env MCP_MAGIC_ASK=widgets")
    try:
        msg_id = kc.execute("r = %mcp call a.ask\nprint(r)", allow_stdin=True)
        front = WidgetFront(kc, msg_id)
        front.pump(front.displayed)  # a frontend acts on a form once it is shown
        shown = front.outputs[-1]["data"]
        assert WIDGET_MIME in shown and "a asks: Where to?" in shown["text/plain"]
        assert {"city", "nights", "Accept", "Decline", "Cancel"} <= {
            s.get("description") for s in front.states.values()}
        assert front.states[front.comm("city")]["value"] == "Paris"  # the default
        front.type("city", "Rome")
        front.type("nights", "x")
        front.click("Accept")
        front.pump(lambda: "nights: a whole number, got &#x27;x&#x27;" in front.notes())
        front.type("nights", "5")
        front.click("Accept")
        outputs, reply = collect(kc, msg_id, 30)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "accepted Rome 5" in shown_text(outputs)

        # Decline, and the stop button while the form waits.
        msg_id = kc.execute("r = %mcp call a.ask\nprint(r)", allow_stdin=True)
        front = WidgetFront(kc, msg_id)
        front.pump(front.displayed)
        front.click("Decline")
        assert "answer: decline" in shown_text(collect(kc, msg_id, 30)[0])
        msg_id = kc.execute("%mcp call a.ask", allow_stdin=True)
        front = WidgetFront(kc, msg_id)
        front.pump(front.displayed)
        km.interrupt_kernel()
        outputs, reply = collect(kc, msg_id, 30)
        assert reply["content"]["ename"] == "Interrupted"
        assert "call to a.ask cancelled" in reply["content"]["evalue"]
    finally:
        ok(kc, "%env MCP_MAGIC_ASK=prompt")


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def shown_text(outputs: list[dict]) -> str:
    return shown(outputs)


def test_in_jupyter_links_and_sampling_approvals_are_buttons(kernel):
    from fakes.openai_wire import completion_reply
    from fakes.scripted_http import ScriptedServer

    km, kc = kernel
    ok(kc, "%env MCP_MAGIC_ASK=widgets")
    try:
        with ScriptedServer() as model:
            model.push(completion_reply("salut"))
            ok(kc, f"%config McpMagics.endpoints = {{'local': '{model.url}/v1'}}\n"
                   "%config McpMagics.default_model = 'local:m4'")
            msg_id = kc.execute("r = %mcp call a.sample\nprint(r)", allow_stdin=True)
            front = WidgetFront(kc, msg_id)
            front.pump(front.displayed)
            assert "a asks the notebook's model to answer" in front.outputs[-1]["data"][
                "text/plain"]
            assert "[user] hi" in front.notes()
            front.click("Allow")
            outputs, reply = collect(kc, msg_id, 30)
            assert "model said salut" in shown(outputs), reply["content"]
        ok(kc, "%config McpMagics.default_model = ''")

        ok(kc, f"%mcp connect ev2 -- {node_server('mcp-server-everything')}", timeout=90)
        msg_id = kc.execute("r = %mcp call ev2.trigger-url-elicitation "
                            "url=https://example.org/consent\nprint(r)", allow_stdin=True)
        front = WidgetFront(kc, msg_id)
        front.pump(front.displayed)
        assert 'href="https://example.org/consent"' in front.notes()
        front.click("Decline")
        assert "User declined to open the URL" in shown(collect(kc, msg_id, 30)[0])
        ok(kc, "%mcp disconnect ev2")
    finally:
        ok(kc, "%env MCP_MAGIC_ASK=prompt")


def test_a_notebook_run_without_anyone_declines_in_one_line(asking_server, tmp_path):
    # nbclient (as nbval and papermill) runs cells with no stdin: nobody can answer.
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(
            f"%load_ext mcp_magic\n%mcp connect a -- {' '.join(asking_server)}"),
        nbformat.v4.new_code_cell("%mcp call a.ask"),
        nbformat.v4.new_code_cell(
            "%config McpMagics.endpoints = {'local': 'http://127.0.0.1:9/v1'}\n"
            "%config McpMagics.default_model = 'local:m'\n%mcp call a.sample"),
        nbformat.v4.new_code_cell("%mcp disconnect --all"),
    ])
    NotebookClient(notebook, timeout=120, allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    sampled = notebook.cells[2].outputs
    assert [o.get("ename") for o in sampled if o.output_type == "error"] == ["McpRuntimeError"]
    assert "a asked for a model completion: declined, nobody can answer here" in str(sampled)
    outputs = notebook.cells[1].outputs
    texts = [o.get("text", "") for o in outputs if o.output_type == "stream"]
    results = [o["data"]["text/plain"] for o in outputs if o.output_type == "execute_result"]
    assert texts == ["a asked for input ('Where to?'): declined, nobody can answer here "
                     "(non-interactive run)\n"], outputs
    assert results == ["answer: decline"]


def test_ask_with_prompt_asks_at_the_input_prompt_in_jupyter(kernel):
    km, kc = kernel
    ok(kc, "%env MCP_MAGIC_ASK=widgets\n%config McpMagics.ask_with = 'prompt'")
    try:
        prompts, outputs, reply = answering(kc, "r = %mcp call a.ask\nprint(r)", ["c"])
        assert prompts == ["[y] answer  [n] decline  [c] cancel: "]
        assert "answer: cancel" in shown(outputs)
        _, outputs, reply = answering(kc, "%config McpMagics.ask_with = 'widget'", [])
        assert "McpMagics.ask_with must be auto or prompt, got 'widget'" in str(
            reply["content"]) + shown(outputs)
    finally:
        ok(kc, "%config McpMagics.ask_with = 'auto'\n%env MCP_MAGIC_ASK=prompt")


def test_sampling_offers_the_servers_tools_to_the_model(asking_server, monkeypatch):
    from fakes import openai_wire as wire
    from fakes.scripted_http import ScriptedServer

    with ScriptedServer() as model:
        monkeypatch.setenv("SCRIPTED_BASE_URL", model.url + "/v1")
        model.push(
            wire.completion_reply(calls=[wire.Call("c1", "weather", {"city": "Oslo"})]),
            wire.completion_reply("It is sunny in Oslo."),
        )
        with Host(connect_timeout=30, sampling_model="scripted:m5") as host:
            host.connect("a", asking_server)
            assert host.call("a.sample_tools") == "toolUse: weather{'city': 'Oslo'}"
            assert host.call("a.sample_after_tools") == "model said It is sunny in Oslo."
        first, second = model.bodies()
    assert [t["function"]["name"] for t in first["tools"]] == ["weather"]
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "weather"
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "u1", "content": "sunny"}


def test_questions_run_on_the_thread_that_waits_and_nowhere_else():
    import asyncio
    import threading
    import time

    from mcp_magic.host.sessions import NobodyWaiting, SessionManager

    manager = SessionManager()
    try:
        async def ask() -> str:
            # `run` starts the coroutine, then registers its wait; a question asked at
            # once can come before that on a loaded machine. A real one comes after a
            # server's round trip, so this one waits for the waiter (a minute at most).
            deadline = time.monotonic() + 60
            while True:
                try:
                    return await manager.on_main(lambda: threading.current_thread().name)
                except NobodyWaiting:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.01)

        assert manager.run(ask()) == threading.current_thread().name
        with pytest.raises(NobodyWaiting):
            manager.loop.submit(manager.on_main(lambda: 1)).result(timeout=60)
    finally:
        manager.close()


def test_sampling_uses_the_model_the_notebooks_agent_uses(kernel):
    from fakes import openai_wire as wire
    from fakes.scripted_http import ScriptedServer

    km, kc = kernel
    with ScriptedServer() as model:
        model.push(wire.stream(text="Hello."), wire.completion_reply("from m6"))
        ok(kc, f"%config McpMagics.endpoints = {{'local': '{model.url}/v1'}}\n"
               "%config McpMagics.default_model = ''")
        ok(kc, "%%agent local:m6 --new\nSay hello", timeout=60)
        prompts, outputs, reply = answering(kc, "r = %mcp call a.sample\nprint(r)", ["y"])
        assert "model said from m6" in shown(outputs), reply["content"]
        assert [body["model"] for body in model.bodies()] == ["m6", "m6"]


# -- roots: the notebook's directory, configurable --------------------------------------


def test_roots_are_the_notebooks_directory_configurable_and_file_entries_own(
    shell, mcp, tmp_path, monkeypatch
):
    everything = node_server("mcp-server-everything")
    notebook_dir = tmp_path / "notebook"
    notebook_dir.mkdir()
    monkeypatch.chdir(notebook_dir)
    from IPython.core.error import UsageError

    mcp(f"connect plain -- {everything}")
    listed = str(mcp("call plain.get-roots-list"))
    assert notebook_dir.resolve().as_uri() in listed, listed
    try:
        shell.run_line_magic("config", "McpMagics.roots = []")
        mcp(f"connect unrooted -- {everything}")
        # Told of no roots, server-everything does not even offer its roots tool.
        with pytest.raises(UsageError, match="has no tool 'get-roots-list'"):
            mcp("call unrooted.get-roots-list")
        shell.run_line_magic("config", 'McpMagics.roots = ["~"]')
        mcp(f"connect rooted -- {everything}")
        listed = str(mcp("call rooted.get-roots-list"))
        assert Path("~").expanduser().resolve().as_uri() in listed, listed
        # An mcpServers entry's own roots win; relative ones are the file's directory's.
        (tmp_path / "data").mkdir()
        path = tmp_path / "mcp.json"
        path.write_text(json.dumps({"mcpServers": {
            "own": {"command": everything, "roots": ["data"]},
            "bad": {"command": everything, "roots": "data"},
        }}))
        mcp(f"connect --config {path} own")
        listed = str(mcp("call own.get-roots-list"))
        assert (tmp_path / "data").resolve().as_uri() in listed, listed
        assert notebook_dir.resolve().as_uri() not in listed
        from mcp_magic.host import config

        assert "'roots' must be a list of directories" in str(
            config.load_config_file(str(path))["bad"])
    finally:
        shell.run_line_magic("config", "McpMagics.roots = None")
    import mcp_magic

    assert mcp_magic._magics.manager.client_requests.roots is None
