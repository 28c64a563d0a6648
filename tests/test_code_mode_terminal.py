"""Code mode in terminal IPython (a pty, as a person at a keyboard): the code is shown as
text before the question, and allow, deny and edit work at the input prompt."""

from __future__ import annotations

import time

import pytest
from fakes import openai_wire as wire
from fakes.scripted_http import ScriptedServer
from test_terminal import Terminal

MODEL = "openrouter:openai/gpt-4o-mini"
SQL = "select count(distinct order_id) as orders from sales"
QUESTION = "Run this code in the notebook?"


@pytest.fixture(scope="module")
def endpoint():
    with ScriptedServer() as server:
        yield server


@pytest.fixture(params=[[], ["--simple-prompt"]], ids=["prompt_toolkit", "simple-prompt"])
def terminal(request, endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-terminal-code-key")
    monkeypatch.setenv("OPENROUTER_BASE_URL", endpoint.url + "/api/v1")
    endpoint.replies.clear()
    endpoint.requests.clear()
    term = Terminal(request.param, tmp_path)
    term.run("%load_ext mcp_magic")
    assert "Connected 'data'" in term.run("%mcp connect data --builtin")
    yield term
    term.close()


code_call = wire.code_call


def told(endpoint: ScriptedServer) -> dict[str, str]:
    return wire.tool_results(endpoint.requests[-1].body)


def test_allow_deny_and_edit_at_the_terminal_prompt(terminal, endpoint):
    child = terminal.child
    endpoint.push(
        code_call("a", f"total = data.query_db(sql={SQL!r})\nprint('orders:', total.orders[0])"),
        code_call("d", "total = None"),
        code_call("e", "extra = 1"),
        wire.stream(text="All done."),
    )
    child.send(f"%agent {MODEL} --code --new count the orders\r")
    child.expect_exact(QUESTION, timeout=60)
    assert "total = data.query_db" in child.before  # the code is shown before the question
    child.send("y\r")
    child.expect_exact(QUESTION, timeout=60)
    assert "orders: " in child.before and "→ total" in child.before
    child.send("n\r")
    child.expect_exact(QUESTION, timeout=60)
    child.send("e\r")
    child.expect_exact("empty line ends it", timeout=30)
    child.send("extra = 'edited'\r")
    child.expect_exact("...", timeout=30)
    child.send("\r")
    out = terminal.settle(timeout=60)
    assert "All done." in out and "edited by you" in out, out
    assert "Traceback" not in out, out
    out = terminal.run("print(type(total).__name__, extra)")
    assert "DataFrame edited" in out, out
    results = told(endpoint)
    assert "orders:" in results["a"] and results["d"].startswith("Not run")
    assert "extra = 'edited'" in results["e"]


def test_ctrl_c_during_code_is_one_line(terminal, endpoint):
    endpoint.push(code_call("s", "import time\nprint('sleeping', flush=True)\ntime.sleep(60)"))
    terminal.child.send(f"%agent {MODEL} --code --new --approve never wait\r")
    terminal.child.expect_exact("time.sleep(60)", timeout=60)
    time.sleep(1.0)  # the code is running now
    terminal.child.sendintr()
    out = terminal.settle(timeout=15)
    assert "Interrupted: agent run cancelled" in out, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert "alive" in terminal.run("print('alive')")
