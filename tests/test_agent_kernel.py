"""`%%agent` in a real kernel, talking to a scripted OpenAI-compatible endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from fakes import openai_wire as wire
from nbclient import NotebookClient

from conftest import FAULT_SERVER
from kernel_utils import collect, execute, model_kernel, ok, read_lines, wait_for

KEY = "sk-test-" + "k3y" * 8
MODEL = "openrouter:openai/gpt-4o-mini"
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernel(model_endpoint, tmp_path_factory):
    """One kernel for the module, its models answered by the module's scripted endpoint."""
    directory = tmp_path_factory.mktemp("agent-kernel")
    with model_kernel(directory, model_endpoint.url + "/api/v1", KEY) as kernel:
        yield kernel


def agent_cell(prompt: str, options: str = "") -> str:
    return f"%%agent {MODEL} {options}\n{prompt}"


def test_answer_streams_tool_call_shows_as_widget_and_table_is_bound(kernel, endpoint):
    km, kc = kernel
    sql = "select region, sum(amount) as total from sales group by region order by total desc"
    endpoint.push(
        wire.stream(
            calls=[wire.Call("call_1", "data__query_db", {"sql": sql})],
            usage_block=wire.usage(50, 10),
        ),
        wire.stream(
            text="East leads with the most revenue, then West and South.",
            pieces=6,
            delay=0.15,
            usage_block=wire.usage(80, 12, cost=0.0004),
        ),
    )
    outputs, reply = execute(kc, agent_cell("Which region sold most?", "--new"), timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]

    # The tool call block: a widget plus its static fallbacks, updated to its final state.
    blocks = [o for o in outputs if o["msg_type"] == "display_data" and WIDGET in o["data"]]
    assert len(blocks) == 1
    data = blocks[0]["data"]
    assert "<details" in data["text/html"] and "query_db" in data["text/plain"]
    block_id = blocks[0]["transient"]["display_id"]
    updates = [
        o
        for o in outputs
        if o["msg_type"] == "update_display_data" and o["transient"]["display_id"] == block_id
    ]
    final = updates[-1]["data"]
    assert "result_1" in final["text/plain"] and "ok" in final["text/plain"]
    assert "East" in final["text/html"]  # the result preview

    # The answer streamed: its display was updated several times with growing text.
    texts = [
        o["data"].get("text/markdown", "")
        for o in outputs
        if o["msg_type"] in ("display_data", "update_display_data") and "text/markdown" in o["data"]
    ]
    assert len(texts) >= 3 and texts[-1].startswith("East leads")
    assert len(texts[0]) < len(texts[-1])
    usage = [o for o in outputs if "tokens" in json.dumps(o.get("data", {}))]
    assert usage and "$0.0004" in json.dumps(usage[-1]["data"])

    # Variables in the notebook.
    shown = ok(kc, "print(type(result_1).__name__, result_1.shape, answer[:11])")
    assert shown.strip() == "DataFrame (5, 2) East leads"

    # What the model was sent back: the tool result under its call id, then the answer.
    second = endpoint.requests[1].body["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    assert second[3]["tool_call_id"] == "call_1"
    assert "result_1" in second[3]["content"] and "East" in second[3]["content"]
    assert endpoint.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def test_rerunning_a_cell_binds_the_same_names(kernel, endpoint):
    km, kc = kernel
    for _ in range(2):
        endpoint.push(
            wire.stream(calls=[wire.Call("c", "data__query_db", {"sql": "select 1 as one"})]),
            wire.stream(text="done"),
        )
        ok(kc, "for _n in [n for n in dir() if n.startswith('result_')]: del globals()[_n]")
        execute(kc, agent_cell("again", "--new"), timeout=60)
        names = ok(kc, "print(sorted(n for n in dir() if n.startswith('result_')))")
        assert names.strip() == "['result_1']"


def test_interrupt_mid_loop_cancels_the_call_and_keeps_the_conversation(kernel, endpoint, tmp_path):
    km, kc = kernel
    events = tmp_path / "events.txt"
    ok(kc, f"%mcp connect f --env FAULT_SERVER_EVENTS={events} -- {sys.executable} {FAULT_SERVER}")
    try:
        endpoint.push(wire.stream(calls=[wire.Call("slow_1", "f__sleep", {"seconds": 30})]))
        msg_id = kc.execute(agent_cell("take your time", "--new --allow f"))
        assert wait_for(lambda: "start sleep" in read_lines(events), timeout=20)
        interrupted = time.monotonic()
        km.interrupt_kernel()
        _, reply = collect(kc, msg_id, timeout=15)
        assert time.monotonic() - interrupted < 1.5
        assert reply["content"]["ename"] == "Interrupted"
        assert wait_for(lambda: "cancelled sleep" in read_lines(events), timeout=2)

        # The next cell continues a valid conversation: the cancelled call has a result.
        endpoint.push(wire.stream(text="ok"))
        ok(kc, agent_cell("and now?"), timeout=30)
        messages = endpoint.requests[-1].body["messages"]
        tool = [m for m in messages if m["role"] == "tool"]
        assert tool and tool[-1]["tool_call_id"] == "slow_1" and "Cancelled" in tool[-1]["content"]
        assert messages[-1] == {"role": "user", "content": "and now?"}
        assert ok(kc, "r = %mcp call f.echo text=alive\nprint(r)").strip() == "alive"
    finally:
        ok(kc, "%mcp disconnect f")


def test_provider_errors_are_one_line_and_never_show_the_key(kernel, endpoint):
    km, kc = kernel
    endpoint.push(wire.error_reply(401, f"invalid key {KEY}"))
    outputs, reply = execute(kc, agent_cell("hi", "--new"), timeout=30)
    assert reply["content"]["status"] == "error"
    assert len(reply["content"]["traceback"]) == 1
    assert "check the API key" in reply["content"]["traceback"][0]
    assert KEY not in json.dumps(outputs) and KEY not in json.dumps(reply["content"])


def test_missing_key_names_the_variable(kernel):
    km, kc = kernel
    outputs, reply = execute(kc, "%%agent anthropic:claude-sonnet-4-5\nhello", timeout=30)
    assert reply["content"]["ename"] == "UsageError"
    assert "ANTHROPIC_API_KEY is not set" in json.dumps(outputs)  # one line on stderr


def test_saved_notebook_holds_no_key(endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.setenv("OPENROUTER_BASE_URL", endpoint.url + "/api/v1")
    endpoint.push(
        wire.stream(calls=[wire.Call("c1", "data__query_db", {"sql": "select * from regions"})]),
        wire.stream(text="Five regions."),
    )
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext mcp_magic\n%mcp connect data --builtin"),
            nbformat.v4.new_code_cell(agent_cell("How many regions?")),
            nbformat.v4.new_code_cell("%mcp disconnect --all"),
        ]
    )
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    saved = Path(path).read_text()
    assert "Five regions." in saved and "<details" in saved
    assert KEY not in saved


def test_approval_prompt_in_the_kernel_allow_deny_and_answer(kernel, endpoint):
    km, kc = kernel
    calls = [
        wire.Call("a1", "data__list_tables", {}),
        wire.Call("a2", "data__describe_table", {"table": "orders"}),
        wire.Call("a3", "data__query_db", {"sql": "select 1"}),
    ]
    endpoint.push(wire.stream(calls=calls), wire.stream(text="thanks"))
    msg_id = kc.execute(agent_cell("look around", "--new --approve always"), allow_stdin=True)
    answers = iter(["y", "n", "42 rows, trust me"])
    prompts = []
    for _ in range(3):
        request = kc.get_stdin_msg(timeout=30)
        prompts.append(request["content"]["prompt"])
        kc.input(next(answers))
    _, reply = collect(kc, msg_id, timeout=30)
    assert reply["content"]["status"] == "ok"
    assert all("[y] allow" in p for p in prompts)
    results = wire.tool_results(endpoint.requests[1].body)
    assert "orders" in results["a1"]  # allowed: the tool ran
    assert "denied" in results["a2"]
    assert "42 rows, trust me" in results["a3"]


def test_approval_without_stdin_denies_instead_of_waiting(kernel, endpoint):
    km, kc = kernel
    endpoint.push(
        wire.stream(calls=[wire.Call("w1", "data__list_tables", {})]), wire.stream(text="ok")
    )
    msg_id = kc.execute(agent_cell("tables?", "--new --approve always"), allow_stdin=False)
    outputs, reply = collect(kc, msg_id, timeout=30)
    assert reply["content"]["status"] == "ok"
    assert "nobody can answer" in json.dumps(outputs)
    tool = [m for m in endpoint.requests[1].body["messages"] if m["role"] == "tool"][0]
    assert "denied" in tool["content"]


def test_interrupt_while_the_model_is_thinking_drops_the_question(kernel, endpoint):
    km, kc = kernel
    stalled = wire.stream(text="never seen")
    stalled.stall = 20  # the model takes its time before the first byte
    endpoint.push(stalled)
    msg_id = kc.execute(agent_cell("slow question", "--new"))
    assert wait_for(lambda: len(endpoint.requests) == 1, timeout=20)
    time.sleep(0.3)
    interrupted = time.monotonic()
    km.interrupt_kernel()
    _, reply = collect(kc, msg_id, timeout=15)
    assert time.monotonic() - interrupted < 1.5
    assert reply["content"]["ename"] == "Interrupted"
    endpoint.push(wire.stream(text="fresh"))
    ok(kc, agent_cell("next question"), timeout=30)
    users = [m["content"] for m in endpoint.requests[-1].body["messages"] if m["role"] == "user"]
    assert users == ["next question"]
