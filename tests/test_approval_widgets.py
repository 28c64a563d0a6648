"""Approval of an agent's tool calls and code blocks in Jupyter: buttons (and an editable
box for code) in the running cell, answered while the cell waits, the same way servers'
questions are asked. A real kernel with widgets, the built-in server, and a scripted
OpenAI-compatible model on 127.0.0.1."""

from __future__ import annotations

import pytest
from fakes import openai_wire as wire
from fakes.scripted_http import ScriptedServer
from widget_front import WidgetFront

from kernel_utils import collect, model_kernel, ok

KEY = "sk-test-" + "a11" * 8
MODEL = "openrouter:openai/gpt-4o-mini"
WIDGET = "application/vnd.jupyter.widget-view+json"
SQL = "select region, count(*) as n from sales group by region order by region"


@pytest.fixture(scope="module")
def kernel(model_endpoint, tmp_path_factory):
    """A kernel asking with widgets, its models answered by the module's endpoint."""
    directory = tmp_path_factory.mktemp("approval-kernel")
    url = model_endpoint.url + "/api/v1"
    with model_kernel(directory, url, KEY, setup="%env MCP_MAGIC_ASK=widgets") as kernel:
        yield kernel


def told(endpoint: ScriptedServer, index: int = -1) -> dict[str, str]:
    return wire.tool_results(endpoint.requests[index].body)


def asking(front: WidgetFront) -> bool:
    """The question is shown: a widget whose text fallback asks to run something."""
    return any(WIDGET in o.get("data", {}) and o["data"]["text/plain"].startswith("Run ")
               for o in front.outputs if o["msg_type"] == "display_data")


def run_until_asked(kc, code: str) -> tuple[str, WidgetFront]:
    msg_id = kc.execute(code, allow_stdin=True)
    front = WidgetFront(kc, msg_id)
    front.pump(lambda: asking(front), timeout=60)
    return msg_id, front


def query_call(call_id: str) -> wire.Reply:
    return wire.stream(calls=[wire.Call(call_id, "data__query_db", {"sql": SQL})])


def test_a_tool_call_is_allowed_denied_or_answered_with_buttons(kernel, endpoint):
    km, kc = kernel
    cell = f"%%agent {MODEL} --approve always --new\nhow many orders per region?"
    endpoint.push(query_call("a1"), wire.stream(text="Counted."))
    msg_id, front = run_until_asked(kc, cell)
    questions = [o["data"]["text/plain"] for o in front.outputs
                 if WIDGET in o.get("data", {}) and o["data"]["text/plain"].startswith("Run ")]
    assert questions and questions[0].startswith("Run data.query_db({\"sql\": \"select")
    assert {"Allow", "Deny", "Send the reply instead"} <= {
        s.get("description") for s in front.states.values()}
    titles = [t for s in front.states.values() for t in s.get("titles") or []]
    assert "⏸ data.query_db — waiting for approval" in titles, titles
    front.click("Allow")
    _, reply = collect(kc, msg_id, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "rows" in told(endpoint)["a1"] and "north" in told(endpoint)["a1"].lower()

    endpoint.push(query_call("d1"), wire.stream(text="Fine."))
    msg_id, front = run_until_asked(kc, cell)
    front.click("Deny")
    _, reply = collect(kc, msg_id, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert told(endpoint)["d1"].startswith("The user denied this tool call")

    endpoint.push(query_call("r1"), wire.stream(text="Thanks."))
    msg_id, front = run_until_asked(kc, cell)
    box = next(c for c, s in front.states.items() if s.get("_model_name") == "TextModel")
    front.send(box, {"method": "update", "state": {"value": "use last week's figures"},
                     "buffer_paths": []})
    front.click("Send the reply instead")
    _, reply = collect(kc, msg_id, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert told(endpoint)["r1"] == (
        "(answered by the user in place of the tool) use last week's figures")


def test_a_code_block_runs_as_edited_in_its_box_or_is_denied(kernel, endpoint):
    km, kc = kernel
    ok(kc, "flag = 'untouched'")
    cell = f"%%agent {MODEL} --code --new\nchange things"
    endpoint.push(wire.code_call("e1", "flag = 'the model wrote this'"), wire.stream(text="ok"))
    msg_id, front = run_until_asked(kc, cell)
    box = next(c for c, s in front.states.items() if s.get("_model_name") == "TextareaModel")
    assert front.states[box]["value"] == "flag = 'the model wrote this'"
    front.send(box, {"method": "update", "buffer_paths": [],
                     "state": {"value": "flag = 'edited'\nprint('ran', flag)"}})
    front.click("Run")
    _, reply = collect(kc, msg_id, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert ok(kc, "print(flag)").strip() == "edited"
    assert "ran edited" in told(endpoint)["e1"]

    endpoint.push(wire.code_call("r1", "flag = 'as written'"), wire.stream(text="ok"))
    msg_id, front = run_until_asked(kc, cell)
    front.click("Run")
    _, reply = collect(kc, msg_id, timeout=60)
    assert ok(kc, "print(flag)").strip() == "as written"

    endpoint.push(wire.code_call("d1", "flag = 'denied'"), wire.stream(text="ok"))
    msg_id, front = run_until_asked(kc, cell)
    front.click("Deny")
    _, reply = collect(kc, msg_id, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert ok(kc, "print(flag)").strip() == "as written"
    assert told(endpoint)["d1"].startswith("Not run")


def test_the_stop_button_while_a_tool_call_waits_for_its_buttons(kernel, endpoint):
    km, kc = kernel
    endpoint.push(query_call("s1"))
    msg_id, front = run_until_asked(kc, f"%%agent {MODEL} --approve always --new\nhow many?")
    km.interrupt_kernel()
    _, reply = collect(kc, msg_id, timeout=30)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "Interrupted", reply["content"]
    assert ok(kc, "print(1 + 1)").strip() == "2"  # the kernel and its session go on
    assert ok(kc, "%mcp list").count("data") >= 1
