"""Names, `%agent log` and `%agent export` in a real kernel, over the OpenAI wire format
against a scripted endpoint on 127.0.0.1; the export is rerun in a fresh kernel that
has no model at all."""

from __future__ import annotations

import json

import pytest
from fakes import openai_wire as wire

from kernel_utils import execute, model_kernel, ok

KEY = "sk-test-" + "r7n" * 8
MODEL = "openrouter:openai/gpt-4o-mini"
NASTY_SQL = (
    "select name, manager,\n"
    "       'it''s $HOME {x} # not a comment \"q\" \\ 🙂' as odd\n"
    "from regions order by name"
)


@pytest.fixture(scope="module")
def kernel(model_endpoint, tmp_path_factory):
    """One kernel for the module, its models answered by the module's scripted endpoint."""
    directory = tmp_path_factory.mktemp("runlog-kernel")
    with model_kernel(directory, model_endpoint.url + "/api/v1", KEY) as kernel:
        yield kernel


def failed(kc, code: str) -> str:
    outputs, reply = execute(kc, code, timeout=60)
    assert reply["content"]["status"] == "error", outputs
    return f"{reply['content']['ename']}: {reply['content']['evalue']}"


def test_log_and_export_before_any_run_say_so_in_one_line(kernel, endpoint):
    _, kc = kernel
    assert failed(kc, "%agent log") == (
        "UsageError: no agent runs yet in this notebook: run %%agent first"
    )
    assert "no agent runs yet" in failed(kc, "%agent export --to x.ipy")
    assert endpoint.requests == []  # neither was sent to the model as a prompt


def test_exported_cells_rebuild_the_same_tables_in_a_kernel_without_a_model(
    kernel, endpoint, replay, tmp_path
):
    _, kc = kernel
    ok(kc, "targets = 'a variable of mine'")
    endpoint.push(
        wire.stream(
            calls=[
                wire.Call("c1", "data__query_db", {"sql": NASTY_SQL, "result_name": "regions"}),
                wire.Call(
                    "c2",
                    "data__query_db",
                    {"sql": "select * from regions where name like 'S%'", "result_name": "targets"},
                ),
                wire.Call("c3", "data__query_db", {"sql": "select 1 as one, 'x' as two"}),
            ],
            usage_block=wire.usage(300, 40, cost=0.0011),
        ),
        wire.stream(text="Done: see `regions`.", usage_block=wire.usage(500, 10, cost=0.0007)),
    )
    outputs, reply = execute(kc, f"%%agent {MODEL} --new\nLook at the regions.", timeout=90)
    assert reply["content"]["status"] == "ok", reply["content"]
    shown = json.dumps(outputs)
    assert "targets_2" in shown and "already a notebook variable" in shown
    assert "$0.0018" in shown

    # The names: the model's, a renamed one (the user's `targets` kept), a fallback.
    names = ok(kc, "print(targets, type(targets_2).__name__, list(result_1.columns))")
    assert names.strip() == "a variable of mine DataFrame ['one', 'two']"
    # The tool got no `result_name`; the model was told the real names.
    second = endpoint.requests[1].body["messages"]
    assert "`targets_2`" in second[4]["content"] and "`regions`" in second[3]["content"]

    # %agent log: one row per step, the key nowhere
    log = ok(
        kc,
        "_log = %agent log\n"
        "print(_log.kind.tolist(), _log.variable.dropna().tolist(), _log.run.unique().tolist())",
    )
    assert log.strip() == (
        "['prompt', 'reply', 'tool', 'tool', 'tool', 'notice', 'reply', 'end'] "
        "['regions', 'targets_2', 'result_1'] [1]"
    )
    saved = tmp_path / "runs.jsonl"
    assert "Wrote" in ok(kc, f"%agent log --save {saved}")
    rows = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [r["kind"] for r in rows][:3] == ["prompt", "reply", "tool"]
    assert KEY not in saved.read_text() and rows[1]["cost"] == 0.0011

    # %agent export: into the next cell, or a file
    _, reply = execute(kc, "%agent export")
    payloads = reply["content"].get("payload", [])
    nxt = [p for p in payloads if p.get("source") == "set_next_input"]
    assert nxt and nxt[0]["replace"] is False
    code = nxt[0]["text"]
    assert "regions = %mcp call data.query_db '" in code  # multi-line SQL: one JSON word
    assert "targets_2 = %mcp call data.query_db sql=" in code
    assert "result_1 = %mcp call data.query_db" in code
    script = tmp_path / "replay.ipy"
    ok(kc, f"%agent export --to {script}")
    assert script.read_text() == code + "\n"
    bound = tmp_path / "bound.pkl"
    ok(
        kc,
        f"import pickle; pickle.dump({{n: globals()[n] for n in "
        f"['regions', 'targets_2', 'result_1']}}, open({str(bound)!r}, 'wb'))",
    )

    # A kernel with no model configured at all, nothing in its namespace: the cells alone.
    _, kc2 = replay
    ok(kc2, f"%run {script}", timeout=60)
    same = ok(
        kc2,
        "import pickle, pandas as pd\n"
        f"before = pickle.load(open({str(bound)!r}, 'rb'))\n"
        "for name, frame in before.items():\n"
        "    pd.testing.assert_frame_equal(globals()[name], frame)\n"
        "print(sorted(before), len(regions), regions.odd[0])",
    )
    assert same.strip().startswith("['regions', 'result_1', 'targets_2'] 5 it's $HOME {x}")


def test_a_cells_rerun_rebinds_its_names_and_another_cell_gets_new_ones(kernel, endpoint):
    _, kc = kernel

    def run_in_cell(cell_id: str) -> str:
        endpoint.push(
            wire.stream(calls=[wire.Call("c", "data__query_db", {"sql": "select 7 as seven"})]),
            wire.stream(text="ok"),
        )
        content = {
            "code": f"%%agent {MODEL}\nSeven?",
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
        }
        message = kc.session.msg("execute_request", content, metadata={"cellId": cell_id})
        kc.shell_channel.send(message)
        from kernel_utils import collect

        outputs, reply = collect(kc, message["header"]["msg_id"], timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        return json.dumps(outputs, ensure_ascii=False)

    ok(kc, "for _n in [n for n in dir() if n.startswith('result_')]: del globals()[_n]")
    assert "→ result_1" in run_in_cell("cell-one")
    assert "→ result_2" in run_in_cell("cell-two")  # result_1 is cell-one's
    assert "→ result_1" in run_in_cell("cell-one")  # re-run: the same name again
    cells = ok(kc, "_log = %agent log\nprint(_log.groupby('run').cell.first().tolist()[-3:])")
    assert cells.strip() == "['cell-one', 'cell-two', 'cell-one']"


def test_one_line_prompts_and_the_token_budget(kernel, endpoint):
    _, kc = kernel
    endpoint.push(wire.stream(text="Logistics is fine.", usage_block=wire.usage(20, 5)))
    ok(kc, f"%config McpMagics.default_model = {MODEL!r}")
    ok(kc, "%agent log the shipping delays please")
    assert ok(kc, "print(answer)").strip() == "Logistics is fine."
    assert endpoint.requests[0].body["messages"][-1]["content"] == "log the shipping delays please"
    endpoint.requests.clear()
    ok(kc, "%config McpMagics.max_tokens_total = 5")
    try:
        text = ok(kc, f"%agent {MODEL} --new How many regions?")
    finally:
        ok(kc, "%config McpMagics.max_tokens_total = 0")
    assert endpoint.requests == [] and "budget of 5 tokens" in text
    assert "budget of 3 tokens" in ok(kc, f"%agent {MODEL} --max-tokens-total 3 How many?")
    assert "must be 0 (no limit) or more" in json.dumps(
        execute(kc, "%config McpMagics.max_tokens_total = -1")[0]
    )


def test_export_fills_the_next_prompt_in_terminal_ipython(endpoint, tmp_path, monkeypatch):
    from test_terminal import Terminal

    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.setenv("OPENROUTER_BASE_URL", endpoint.url + "/api/v1")
    endpoint.push(
        wire.stream(
            calls=[
                wire.Call("c1", "data__query_db", {"sql": "select 1 as one", "result_name": "ones"})
            ]
        ),
        wire.stream(text="One row."),
    )
    term = Terminal([], tmp_path)
    try:
        term.run("%load_ext mcp_magic")
        term.run("%mcp connect data --builtin", timeout=90)
        shown = term.run(f"%agent {MODEL} How many ones?", timeout=90)
        assert "→ ones" in shown
        term.run("first = ones")
        term.child.send("%agent export\r")
        # the next prompt comes back holding the code, ready to edit or run
        term.child.expect("ones = %mcp call data.query_db", timeout=30)
        term.child.send("\r")  # run it as it stands: no model needed
        shown = term.run("print(ones is first, ones.equals(first))")
        assert "False True" in shown  # bound again by the replayed line, to the same table
    finally:
        term.close()
    assert len(endpoint.requests) == 2  # the replay asked the model nothing


def test_budget_stops_between_tool_rounds_and_the_next_run_goes_on(kernel, endpoint):
    _, kc = kernel
    endpoint.push(
        wire.stream(
            calls=[wire.Call("b1", "data__query_db", {"sql": "select * from regions"})],
            usage_block=wire.usage(1900, 40),
        )
    )
    shown = ok(kc, f"%agent {MODEL} --new --max-tokens-total 2000 How many regions are there?")
    assert len(endpoint.requests) == 1  # the second request would pass the budget
    assert "would take this run past its budget of 2,000 tokens (1,940 used so far)" in shown
    endpoint.push(wire.stream(text="Five."))
    ok(kc, f"%agent {MODEL} And now?")
    sent = endpoint.requests[1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[3]["tool_call_id"] == "b1"
    status = ok(kc, "_log = %agent log\nprint(_log[_log.kind == 'end'].status.tolist()[-2:])")
    assert status.strip() == "['stopped', 'ok']"


def test_an_interrupted_run_is_logged_as_such_and_its_call_is_not_replayed(
    kernel, endpoint, tmp_path
):
    import sys

    from conftest import FAULT_SERVER
    from kernel_utils import collect, read_lines, wait_for

    km, kc = kernel
    events = tmp_path / "events.txt"
    ok(kc, f"%mcp connect f --env FAULT_SERVER_EVENTS={events} -- {sys.executable} {FAULT_SERVER}")
    try:
        endpoint.push(wire.stream(calls=[wire.Call("slow", "f__sleep", {"seconds": 30})]))
        msg_id = kc.execute(f"%%agent {MODEL} --new --allow f\ntake your time")
        assert wait_for(lambda: "start sleep" in read_lines(events), timeout=20)
        km.interrupt_kernel()
        _, reply = collect(kc, msg_id, timeout=15)
        assert reply["content"]["ename"] == "Interrupted"
        shown = ok(
            kc,
            "_log = %agent log\n_last = _log[_log.run == _log.run.max()]\n"
            "print(_last.kind.tolist(), _last.status.tolist())",
        )
        assert shown.strip() == (
            "['prompt', 'reply', 'tool', 'end'] ['ok', 'tool calls', 'cancelled', 'interrupted']"
        )
        _, reply = execute(kc, "%agent export")
        code = [p for p in reply["content"]["payload"] if p.get("source") == "set_next_input"]
        assert "# skipped: f.sleep (cancelled)" in code[0]["text"]
        assert "%mcp call f.sleep" not in code[0]["text"]
    finally:
        ok(kc, "%mcp disconnect f")
