"""Code mode in a real kernel: approval over the stdin channel, the stop button during
running code, variables that stay, and tables equal to `%mcp call`'s; the model is a
scripted OpenAI-compatible endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import time

import pytest
from fakes import openai_wire as wire
from fakes.scripted_http import ScriptedServer

from kernel_utils import collect, execute, model_kernel, ok, wait_for

KEY = "sk-test-" + "c0de" * 6
MODEL = "openrouter:openai/gpt-4o-mini"
WIDGET = "application/vnd.jupyter.widget-view+json"
SQL = "select region, count(distinct order_id) as orders from sales group by region order by region"


@pytest.fixture(scope="module")
def kernel(model_endpoint, tmp_path_factory):
    """One kernel for the module, its models answered by the module's scripted endpoint."""
    directory = tmp_path_factory.mktemp("code-kernel")
    url = model_endpoint.url + "/api/v1"
    with model_kernel(directory, url, KEY, setup="import pandas as pd") as kernel:
        yield kernel


def cell(prompt: str, options: str = "") -> str:
    return f"%%agent {MODEL} --code --new {options}\n{prompt}"


code_call = wire.code_call


def told(endpoint: ScriptedServer, index: int = 1) -> dict[str, str]:
    return wire.tool_results(endpoint.requests[index].body)


def answer_prompts(kc, msg_id: str, answers: list[str]) -> list[str]:
    prompts = []
    for answer in answers:
        request = kc.get_stdin_msg(timeout=30)
        prompts.append(request["content"]["prompt"])
        kc.input(answer)
    return prompts


def test_allowed_code_calls_tools_and_its_table_equals_mcp_call(kernel, endpoint):
    km, kc = kernel
    code = f"by_region = data.query_db(sql={SQL!r})\nprint('rows', len(by_region))\nby_region"
    endpoint.push(code_call("c1", code), wire.stream(text="Five regions."))
    msg_id = kc.execute(cell("orders per region?"), allow_stdin=True)
    prompts = answer_prompts(kc, msg_id, ["y"])
    outputs, reply = collect(kc, msg_id, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "[y] run" in prompts[0] and "[e] edit" in prompts[0]
    # The block: a widget with a static fallback holding the code, the output and the value.
    blocks = [o for o in outputs if "mcp-magic-code" in json.dumps(o.get("data", {}))]
    assert blocks and WIDGET in blocks[0]["data"]
    final = [
        o for o in outputs
        if o["msg_type"] == "update_display_data"
        and "mcp-magic-code" in o["data"].get("text/html", "")
    ][-1]["data"]  # fmt: skip
    assert "by_region = data.query_db" in final["text/html"] and "rows 5" in final["text/html"]
    assert "→ by_region" in final["text/plain"]
    # The variable is in the notebook, and equal to what %mcp call returns.
    ok(kc, f"direct = %mcp call data.query_db sql={SQL!r}")
    assert ok(kc, "print(by_region.equals(direct), type(by_region).__name__)").split() == [
        "True", "DataFrame"
    ]
    assert "rows 5" in told(endpoint)["c1"] and "5 rows × 2 columns" in told(endpoint)["c1"]


def test_deny_and_edit_at_the_prompt(kernel, endpoint):
    km, kc = kernel
    ok(kc, "flag = 'untouched'")
    endpoint.push(
        code_call("d1", "flag = 'overwritten by the model'"),
        code_call("e1", "flag2 = 1"),
        wire.stream(text="ok"),
    )
    msg_id = kc.execute(cell("change things"), allow_stdin=True)
    answer_prompts(kc, msg_id, ["n", "e", "flag2 = 'edited'", "flag3 = flag2 * 2", ""])
    _, reply = collect(kc, msg_id, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert ok(kc, "print(flag, flag2, flag3)").strip() == "untouched edited editededited"
    results = told(endpoint, 2)
    assert results["d1"].startswith("Not run") and "flag3 = flag2 * 2" in results["e1"]


def test_without_stdin_code_is_denied_in_one_line_unless_approve_never(kernel, endpoint):
    km, kc = kernel
    endpoint.push(code_call("n1", "sneaky = 1"), wire.stream(text="ok"))
    msg_id = kc.execute(cell("go"), allow_stdin=False)
    outputs, reply = collect(kc, msg_id, timeout=60)
    assert reply["content"]["status"] == "ok"
    assert "nobody can answer" in json.dumps(outputs)
    assert ok(kc, "print('sneaky' in globals())").strip() == "False"

    endpoint.push(code_call("n2", "allowed = 6 * 7\nallowed"), wire.stream(text="ok"))
    msg_id = kc.execute(cell("go", "--approve never"), allow_stdin=False)
    _, reply = collect(kc, msg_id, timeout=60)
    assert reply["content"]["status"] == "ok"
    assert ok(kc, "print(allowed)").strip() == "42"
    assert "Value: 42" in told(endpoint, -1)["n2"]


def test_stop_button_interrupts_running_code_and_the_conversation_stays_valid(
    kernel, endpoint, tmp_path
):
    km, kc = kernel
    marker = tmp_path / "started"
    code = f"import time\nopen({str(marker)!r}, 'w').close()\ntime.sleep(60)\nfinished = True"
    endpoint.push(code_call("slow", code))
    msg_id = kc.execute(cell("take your time", "--approve never"))
    assert wait_for(marker.exists, timeout=30)
    interrupted = time.monotonic()
    km.interrupt_kernel()
    outputs, reply = collect(kc, msg_id, timeout=15)
    assert time.monotonic() - interrupted < 3
    assert reply["content"]["ename"] == "Interrupted"
    assert len(reply["content"]["traceback"]) == 1
    assert "cancelled" in json.dumps([o.get("data", {}).get("text/plain", "") for o in outputs])
    assert ok(kc, "print('finished' in globals())").strip() == "False"
    # The next run continues a valid conversation: the stopped block has an answer.
    endpoint.push(wire.stream(text="fine"))
    ok(kc, f"%%agent {MODEL}\nand now?", timeout=30)
    messages = endpoint.requests[-1].body["messages"]
    tool = [m for m in messages if m["role"] == "tool"]
    assert tool[-1]["tool_call_id"] == "slow" and "Cancelled" in tool[-1]["content"]
    assert messages[-1] == {"role": "user", "content": "and now?"}


def test_user_variable_named_like_a_server_is_never_shadowed(kernel, endpoint):
    km, kc = kernel
    ok(kc, "data = 'my data'")
    try:
        code = f"n = len(mcp_servers.data.query_db(sql={SQL!r}))"
        endpoint.push(code_call("s1", code), wire.stream(text="ok"))
        ok(kc, cell("count", "--approve never"), timeout=60)
        assert ok(kc, "print(data, n)").strip() == "my data 5"
        description = endpoint.requests[0].body["tools"][0]["function"]["description"]
        assert "mcp_servers.data.query_db" in description
    finally:
        ok(kc, "del data")


def test_code_mode_from_config(kernel, endpoint):
    km, kc = kernel
    ok(kc, "%config McpMagics.code_mode = True")
    try:
        endpoint.push(wire.stream(text="hi"))
        ok(kc, f"%%agent {MODEL} --new\nhello", timeout=30)
        names = [t["function"]["name"] for t in endpoint.requests[0].body["tools"]]
        assert names == ["notebook__run_python"]
        endpoint.push(wire.stream(text="hi"))
        ok(kc, f"%%agent {MODEL} --new --no-code\nhello", timeout=30)
        names = [t["function"]["name"] for t in endpoint.requests[1].body["tools"]]
        assert "data__query_db" in names and "notebook__run_python" not in names
    finally:
        ok(kc, "%config McpMagics.code_mode = False")


def test_notebook_tools_in_the_kernel_see_the_users_dataframes(kernel, endpoint):
    km, kc = kernel
    ok(kc, "orders_df = pd.DataFrame({'region': ['North', 'South', 'North'], 'n': [1, 2, 3]})")
    endpoint.push(
        wire.stream(
            calls=[
                wire.Call("l", "notebook__list_dataframes", {}),
                wire.Call("v", "notebook__value_counts", {"name": "orders_df", "column": "region"}),
            ]
        ),
        wire.stream(text="ok"),
    )
    outputs, _ = execute(kc, f"%%agent {MODEL} --new --deny data\nwhat do I have?", timeout=60)
    names = [t["function"]["name"] for t in endpoint.requests[0].body["tools"]]
    assert names and all(n.startswith("notebook__") for n in names)
    results = told(endpoint)
    assert "orders_df,3,2" in results["l"] and "North,2" in results["v"]
    assert "notebook.list_dataframes" in json.dumps(outputs)  # shown as a tool-call block


def test_an_exported_code_mode_run_rebuilds_its_tables_in_a_kernel_without_a_model(
    kernel, endpoint, replay, tmp_path
):
    km, kc = kernel
    code = (
        f"by_region = data.query_db(sql={SQL!r})\n"
        "top = by_region.sort_values('orders', ascending=False).head(2).reset_index(drop=True)"
    )
    endpoint.push(
        code_call("x1", code),
        code_call("x2", "raise ValueError('not this one')"),
        wire.stream(text="Done."),
    )
    ok(kc, cell("top regions?", "--approve never"), timeout=60)
    script = tmp_path / "replay.ipy"
    ok(kc, f"%agent export --to {script}")
    text = script.read_text()
    assert "%mcp functions" in text and "by_region = data.query_db(" in text
    assert "not this one" not in text  # a block that failed is not replayed
    frames = tmp_path / "frames.pkl"
    ok(kc, f"import pickle; pickle.dump((by_region, top), open({str(frames)!r}, 'wb'))")

    _, kc2 = replay  # no model at all, nothing in its namespace
    ok(kc2, f"%run {script}", timeout=60)
    same = ok(
        kc2,
        "import pickle, pandas as pd\n"
        f"before = pickle.load(open({str(frames)!r}, 'rb'))\n"
        "pd.testing.assert_frame_equal(by_region, before[0])\n"
        "pd.testing.assert_frame_equal(top, before[1])\n"
        "print(len(by_region), len(top))",
    )
    assert same.split() == ["5", "2"]
