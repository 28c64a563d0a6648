"""`%%agent` / `%agent` in an in-process IPython shell against a scripted endpoint."""

from __future__ import annotations

import pytest
from fakes import openai_wire as wire
from fakes.scripted_http import ScriptedServer
from IPython.core.error import UsageError

MODEL = "openrouter:openai/gpt-4o-mini"


@pytest.fixture(scope="module")
def endpoint():
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def agent(shell, endpoint, monkeypatch):
    """Run `%%agent` cells; the endpoint's script and requests start empty."""
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-test-magic")
    monkeypatch.setenv("OPENROUTER_BASE_URL", endpoint.url + "/api/v1")
    monkeypatch.delenv("MCP_MAGIC_MODEL", raising=False)
    endpoint.replies.clear()
    endpoint.requests.clear()

    def run(line: str, cell: str | None = None):
        if cell is None:
            return shell.run_line_magic("agent", line)
        return shell.run_cell_magic("agent", line, cell)

    return run


def test_cell_answer_is_bound_and_the_conversation_continues(shell, agent, endpoint):
    endpoint.push(wire.stream(text="First answer."), wire.stream(text="Second answer."))
    agent(f"{MODEL} --new", "What is one?")
    assert shell.user_ns["answer"] == "First answer."
    agent(f"{MODEL} --out second", "And two?")
    assert shell.user_ns["second"] == "Second answer."
    roles = [m["role"] for m in endpoint.requests[1].body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]


def test_new_starts_a_fresh_conversation(agent, endpoint):
    endpoint.push(wire.stream(text="a"), wire.stream(text="b"))
    agent(f"{MODEL} --new", "one")
    agent(f"{MODEL} --new", "two")
    assert [m["role"] for m in endpoint.requests[1].body["messages"]] == ["system", "user"]


def test_line_form_takes_the_rest_of_the_line_as_the_prompt(agent, endpoint):
    endpoint.push(wire.stream(text="ok"))
    agent(f"{MODEL} --new what's the biggest table?")
    assert endpoint.requests[0].body["messages"][-1]["content"] == "what's the biggest table?"


def test_a_capitalised_label_with_a_colon_starts_the_question(agent, endpoint, monkeypatch):
    monkeypatch.setenv("MCP_MAGIC_MODEL", MODEL)
    endpoint.push(wire.stream(text="ok"))
    agent("--new Note:this is about sales")
    assert endpoint.requests[0].body["messages"][-1]["content"] == "Note:this is about sales"


def test_default_model_from_config(shell, agent, endpoint):
    endpoint.push(wire.stream(text="configured"))
    shell.run_line_magic("config", f"McpMagics.default_model = '{MODEL}'")
    try:
        agent("--new", "hello")
    finally:
        shell.run_line_magic("config", "McpMagics.default_model = ''")
    assert endpoint.requests[0].body["model"] == "openai/gpt-4o-mini"


def test_options_reach_the_request(agent, endpoint):
    endpoint.push(wire.completion_reply(text="cold"))
    agent(f"{MODEL} --new --no-stream --temperature 0.1 --system 'Be terse.'", "hi")
    body = endpoint.requests[0].body
    assert body["temperature"] == 0.1 and not body.get("stream")
    assert body["messages"][0]["content"].startswith("Be terse.")


def test_variables_interpolate_into_the_prompt(shell, agent, endpoint):
    import pandas as pd

    shell.user_ns["region"] = "West"
    shell.user_ns["frame"] = pd.DataFrame({"x": [1, 2]})
    endpoint.push(wire.stream(text="ok"))
    agent(f"{MODEL} --new", "Focus on {region}. Data: {frame}. Literal {{braces}}.")
    prompt = endpoint.requests[0].body["messages"][-1]["content"]
    assert prompt.startswith("Focus on West. Data: DataFrame")
    assert "2 rows × 1 columns" in prompt and prompt.endswith("Literal {braces}.")


@pytest.mark.parametrize(
    "line, cell, message",
    [
        ("", "hello", "no model"),
        ("nosuchprovider:model", "hello", "unknown provider 'nosuchprovider'"),
        ("justaword", "hello", "must be provider:model"),
        (f"{MODEL}", "{undefined_name}", "'undefined_name' in the prompt is not defined"),
        (f"{MODEL}", "   ", "the prompt is empty"),
        (f"{MODEL} --approve sometimes", "hi", "invalid choice"),
        (f"{MODEL} --max-steps many", "hi", "invalid int value"),
        (f"{MODEL} --max-steps 0", "hi", "--max-steps must be 1 or more, not 0"),
        (f"{MODEL} --max-steps -3", "hi", "--max-steps must be 1 or more, not -3"),
        ("nosuchprovider:foo hello", None, "unknown provider 'nosuchprovider'"),
        ("--max-steps 0 what now?", None, "--max-steps must be 1 or more, not 0"),
        ("--new nosuchprovider:foo hello", None, "unknown provider 'nosuchprovider'"),
    ],
)
def test_bad_input_is_a_one_line_usage_error(agent, line, cell, message):
    with pytest.raises(UsageError, match=message) as info:
        agent(line, cell)
    assert "\n" not in str(info.value)


def test_missing_key_names_the_variable(agent, monkeypatch, tmp_path):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    with pytest.raises(UsageError, match="ANTHROPIC_API_KEY is not set"):
        agent("anthropic:claude-sonnet-4-5", "hi")


def test_key_from_dotenv_file(agent, endpoint, monkeypatch, tmp_path):
    monkeypatch.delenv("OPENROUTER_API_KEY")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("OPENROUTER_API_KEY=sk-from-dotenv\n")
    endpoint.push(wire.stream(text="ok"))
    agent(f"{MODEL} --new", "hi")
    assert endpoint.requests[0].headers["Authorization"] == "Bearer sk-from-dotenv"


def test_base_url_for_any_openai_compatible_endpoint(agent, endpoint):
    endpoint.push(wire.stream(text="local"))
    agent(f"lmstudio:qwen2.5-7b --new --base-url {endpoint.url}/v1", "hi")
    assert endpoint.requests[0].path == "/v1/chat/completions"
    assert endpoint.requests[0].body["model"] == "qwen2.5-7b"


def test_endpoint_aliases_from_config(shell, agent, endpoint):
    endpoint.push(wire.stream(text="aliased"))
    shell.run_line_magic("config", f"McpMagics.endpoints = {{'mybox': '{endpoint.url}/v1'}}")
    try:
        agent("mybox:llama3 --new", "hi")
    finally:
        shell.run_line_magic("config", "McpMagics.endpoints = {}")
    assert endpoint.requests[0].body["model"] == "llama3"


def test_help_documents_the_options(shell):
    doc = shell.find_cell_magic("agent").__doc__
    for option in (
        "--allow",
        "--deny",
        "--max-steps",
        "--approve",
        "--system",
        "--new",
        "--temperature",
        "--no-stream",
        "--out",
        "--results",
        "--base-url",
    ):
        assert option in doc


def test_approval_and_streaming_in_terminal_ipython(endpoint, tmp_path):
    import os
    import subprocess
    import sys

    endpoint.replies.clear()
    endpoint.requests.clear()
    endpoint.push(
        wire.stream(calls=[wire.Call("t1", "data__list_tables", {})]),
        wire.stream(text="Nothing was listed, as you wished.", pieces=4),
    )
    script = tmp_path / "agent.ipy"
    script.write_text(
        "%mcp connect data --builtin\n"
        f"%agent {MODEL} --approve always what tables are there?\n"
        "%mcp disconnect --all\n"
    )
    env = dict(
        os.environ,
        OPENROUTER_API_KEY="fake-terminal-key",
        OPENROUTER_BASE_URL=endpoint.url + "/api/v1",
    )
    done = subprocess.run(
        # The extension loads before the script, as in a notebook's earlier cell, so the
        # trailing "?" of the question is not read as a help request.
        [
            sys.executable,
            "-m",
            "IPython",
            "--no-banner",
            "--colors=NoColor",
            "--ext",
            "mcp_magic",
            str(script),
        ],
        input=b"n\n",
        capture_output=True,
        timeout=90,
        env=env,
        cwd=tmp_path,
    )
    out = done.stdout.decode()
    assert "Run data.list_tables({})?" in out and "[y] allow" in out, out
    assert "denied" in out and "Nothing was listed, as you wished." in out
    tool = [m for m in endpoint.requests[1].body["messages"] if m["role"] == "tool"][0]
    assert "denied" in tool["content"]


def test_a_one_line_question_ending_in_a_question_mark_is_asked_not_help(shell, agent, endpoint):
    endpoint.push(wire.stream(text="Five."))
    result = shell.run_cell(f"%agent {MODEL} --new how many regions are there?")
    assert result.success
    assert endpoint.requests[0].body["messages"][-1]["content"] == "how many regions are there?"
    assert shell.user_ns["answer"] == "Five."


def test_mcp_magic_model_is_the_default_model(shell, agent, endpoint, monkeypatch):
    monkeypatch.setenv("MCP_MAGIC_MODEL", "openrouter:openai/gpt-4.1-nano")
    endpoint.push(wire.stream(text="cell"), wire.stream(text="line"), wire.stream(text="config"))
    agent("--new", "hello")
    agent("--new hello again")
    shell.run_line_magic("config", f"McpMagics.default_model = '{MODEL}'")
    try:
        agent("--new", "configured")  # %config wins over the environment
    finally:
        shell.run_line_magic("config", "McpMagics.default_model = ''")
    models = [r.body["model"] for r in endpoint.requests]
    assert models == ["openai/gpt-4.1-nano", "openai/gpt-4.1-nano", "openai/gpt-4o-mini"]
    assert shell.user_ns["answer"] == "config"


def test_idle_timeout_from_config_ends_a_stalled_stream(shell, agent, endpoint):
    from mcp_magic.magics import McpRuntimeError

    stalled = wire.raw_stream([wire.chunk({"role": "assistant", "content": ""})], done=False)
    stalled.hold = 5
    endpoint.push(stalled)
    shell.run_line_magic("config", "McpMagics.idle_timeout = 0.5")
    try:
        with pytest.raises(McpRuntimeError) as info:
            agent(f"{MODEL} --new", "hello")
    finally:
        shell.run_line_magic("config", "McpMagics.idle_timeout = 60.0")
    assert str(info.value) == (
        "openrouter: the stream stalled: no data for 0.5 s "
        "(keep-alive comments do not count; the idle limit is idle_timeout)"
    )
    assert len(endpoint.requests) == 1


def test_bad_settings_are_refused_by_config_in_one_line(shell, caplog):
    magics = shell.magics_manager.registry["McpMagics"]
    cases = [
        ("run_timeout = 0", "McpMagics.run_timeout must be above 0, got 0.0"),
        ("idle_timeout = -5", "McpMagics.idle_timeout must be above 0, got -5.0"),
        ("connect_timeout = -1", "McpMagics.connect_timeout must be above 0, got -1.0"),
        ("max_steps = 0", "McpMagics.max_steps must be above 0, got 0"),
        ("default_approval = 'bogus'", "McpMagics.default_approval must be never, always "
         "or writes, got 'bogus'"),
        ("endpoints = {'y': 5}", "McpMagics.endpoints maps a name to an http(s) URL, "
         "got 'y': 5"),
        ("endpoints = {'y': 'localhost:1234'}", "McpMagics.endpoints maps a name to an "
         "http(s) URL, got 'y': 'localhost:1234'"),
    ]  # fmt: skip
    for statement, message in cases:
        name = statement.split()[0]
        before = getattr(magics, name)
        caplog.clear()
        shell.run_line_magic("config", f"McpMagics.{statement}")
        assert [r.getMessage() for r in caplog.records] == [message]
        assert getattr(magics, name) == before


def test_cell_magic_help_is_complete_input_not_a_cell_start(shell):
    manager = shell.input_transformer_manager
    for text, kind in (("%%agent?", "pinfo"), ("%%agent??\n", "pinfo2"), ("  %%agent ?", "pinfo")):
        assert manager.check_complete(text) == ("complete", None)
        expected = f"get_ipython().run_line_magic({kind!r}, '%%agent')\n"
        assert manager.transform_cell(text) == expected
    # A real cell is still a cell: its body follows.
    assert manager.check_complete("%%agent openrouter:x/y\nwhat?")[0] == "incomplete"


def test_cell_magic_help_in_terminal_ipython(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "IPython",
            "--no-banner",
            "--colors=NoColor",
            "--simple-prompt",
            "--ext",
            "mcp_magic",
        ],
        input=b"%%agent?\nprint('after' + ' help')\nexit\n",
        capture_output=True,
        timeout=90,
        cwd=tmp_path,
    )
    out = done.stdout.decode()
    assert "Ask a model to answer the cell's text" in out, out
    assert "--max-steps" in out and "after help" in out
