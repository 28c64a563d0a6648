"""`%mcp` in an in-process IPython shell against real servers over real transports."""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
import pytest
from IPython.core.error import UsageError

from mcp_magic.magics import McpRuntimeError

from conftest import FAULT_SERVER, node_server


def test_connect_call_and_list_over_stdio(mcp, fault_cmd, capsys):
    mcp(f"connect f -- {fault_cmd}")
    assert "Connected 'f'" in capsys.readouterr().out
    assert mcp("call f.echo text='hello world'") == "hello world"
    status = repr(mcp("list"))
    assert "connected" in status and "stdio" in status and "2026-07-28" in status


def test_records_come_back_as_a_dataframe(mcp, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    frame = mcp("call f.rows count=4")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["id", "name", "value"]
    assert frame["id"].dtype.kind == "i" and frame["value"].dtype.kind == "f"
    assert len(frame) == 4


def test_json_object_arguments(mcp, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    assert mcp("""call f.echo '{"text": "from json"}'""") == "from json"


def test_schema_types_the_values(mcp, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    # `text` is a string in the schema: 0123 must stay a string, not become 123.
    assert mcp("call f.echo text=0123") == "0123"
    assert len(mcp("call f.rows count=2")) == 2


def test_help_is_generated_from_magic_arguments(shell):
    doc = shell.find_line_magic("mcp").__doc__
    for usage in ("%mcp connect", "%mcp call", "%mcp disconnect", "--header", "--config"):
        assert usage in doc


def test_readme_lines_with_a_trailing_comment_work(mcp):
    mcp("connect cm --builtin              # the built-in data server")
    frame = mcp("call cm.query_db sql='select 1 as n'   # a comment")
    assert frame["n"].tolist() == [1]


def test_help_and_readme_list_every_setting(shell):
    from pathlib import Path

    from mcp_magic.magics import McpMagics

    doc = shell.find_line_magic("mcp").__doc__
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name in McpMagics.class_traits(config=True):
        assert f"  {name} (default " in doc, name
        assert f"McpMagics.{name}" in readme, name


def test_config_sets_connect_timeout(shell):
    shell.run_line_magic("config", "McpMagics.connect_timeout = 12.5")
    try:
        import mcp_magic

        assert mcp_magic._magics.manager.connect_timeout == 12.5
    finally:
        shell.run_line_magic("config", "McpMagics.connect_timeout = 60.0")


@pytest.fixture(scope="module")
def kept(shell):
    """One server kept across the bad-input tests, which must leave it untouched."""
    shell.run_line_magic("mcp", f"connect keep -- {sys.executable} {FAULT_SERVER}")
    yield "keep"
    shell.run_line_magic("mcp", "disconnect keep")


BAD_INPUT = [
    ("frobnicate", "unknown subcommand 'frobnicate'"),
    ("call nosuch.tool", "no server named 'nosuch'"),
    ("call keep.nosuchtool", "server 'keep' has no tool 'nosuchtool'"),
    ("call keep.echo text", "expected key=value, got 'text'"),
    ("call keep.echo '{\"text\": 1'", "invalid JSON arguments"),
    ("call keep.echo text='unclosed", "cannot parse arguments"),
    ("call keep", "expected SERVER.TOOL"),
    ("connect r ftp://example", "invalid URL"),
    ("connect r http://", "invalid URL"),
    ("connect lonely", "missing server for 'lonely'"),
    ("connect keep -- python -c pass", "already connected"),
    ("connect 1bad -- python", "invalid server name"),
    ("connect r http://127.0.0.1:1/mcp --header NoColon", "invalid header"),
    ("connect --config /no/such/file.json", "not found"),
    ("log nosuch", "no server named 'nosuch'"),
    ("disconnect", "usage: %mcp disconnect NAME | --all"),
    ("connect s --env NOEQUALS -- python", "invalid --env"),
]


@pytest.mark.parametrize("line,message", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_a_one_line_usage_error_and_keeps_sessions(kept, mcp, line, message):
    with pytest.raises(UsageError) as info:
        mcp(line)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert mcp("call keep.echo text=still-here") == "still-here"


def test_missing_command_after_separator(mcp):
    with pytest.raises(UsageError, match="missing server command"):
        mcp("connect s --")


def test_invalid_config_files(mcp, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        mcp(f"connect --config {broken}")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"servers_typo": {}}))
    with pytest.raises(UsageError, match="no 'mcpServers'"):
        mcp(f"connect --config {wrong}")


def test_config_file_one_failing_server_does_not_stop_others(mcp, tmp_path, capsys):
    file = tmp_path / ".mcp.json"
    file.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "good": {"command": sys.executable, "args": [str(FAULT_SERVER)]},
                    "missing": {"command": "no-such-mcp-server-binary"},
                    "broken": {"args": ["no command"]},
                    "off": {"command": "x", "disabled": True},
                }
            }
        )
    )
    mcp(f"connect --config {file}")
    out = capsys.readouterr().out
    assert "Connected 'good'" in out
    assert "could not connect 'missing'" in out
    assert "could not connect 'broken'" in out
    assert "off" not in repr(mcp("list"))
    assert mcp("call good.echo text=ok") == "ok"


def test_vscode_servers_key_and_name_selection(mcp, tmp_path):
    file = tmp_path / "mcp.json"
    file.write_text(
        json.dumps(
            {
                "servers": {
                    "a": {"type": "stdio", "command": sys.executable, "args": [str(FAULT_SERVER)]},
                    "b": {"type": "stdio", "command": sys.executable, "args": [str(FAULT_SERVER)]},
                }
            }
        )
    )
    mcp(f"connect --config {file} b")
    listing = repr(mcp("list"))
    assert "b " in listing and "\na " not in listing
    with pytest.raises(UsageError, match="no server named zz"):
        mcp(f"connect --config {file} zz")


def test_tool_error_is_one_line_not_a_dataframe(mcp, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    with pytest.raises(McpRuntimeError) as info:
        mcp("""call f.sleep '{"seconds": "soon"}'""")
    assert "\n" not in str(info.value)
    assert info.value._render_traceback_()[0].count("\n") == 0


def test_dead_server_is_reported_and_reconnect_revives_it(mcp, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    with pytest.raises(McpRuntimeError, match="went away"):
        mcp("call f.crash after=0.1")
    assert "dead" in repr(mcp("list"))
    with pytest.raises(McpRuntimeError, match="reconnect"):
        mcp("call f.echo text=x")
    mcp("reconnect f")
    assert mcp("call f.echo text=back") == "back"


def test_log_shows_server_stderr(mcp, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    assert "fault-server starting" in mcp("log f")


def test_env_and_cwd_for_stdio(mcp, fault_cmd, tmp_path):
    mcp(f"connect f --env GREETING=hi --cwd {tmp_path} -- {fault_cmd}")
    assert mcp("call f.getenv name=GREETING") == "hi"


def test_secrets_never_show(mcp, fault_http, token_env, fault_cmd, capsys):
    import mcp_magic

    mcp(f"connect r {fault_http} --header 'Authorization: Bearer $MCP_MAGIC_TEST_TOKEN'")
    # The header was expanded in the kernel and reached the server...
    assert mcp("call r.whoami") == f"Bearer {token_env}"
    mcp(f"connect s --env SECRET_VALUE={token_env}xyz -- {fault_cmd}")
    assert mcp("call s.getenv name=SECRET_VALUE") == f"{token_env}xyz"
    # ...but shows nowhere else.
    manager = mcp_magic._magics.manager
    shown = [
        repr(mcp("list")),
        repr(mcp("status")),
        mcp("log s"),
        mcp("log r"),
        repr(manager.sessions["r"]),
        repr(manager.sessions["s"]),
        repr(manager.sessions["r"].spec),
        repr(manager.sessions["s"].spec),
        capsys.readouterr().out,
    ]
    for text in shown:
        assert token_env not in text


def test_secret_in_url_password_is_hidden_in_errors(mcp, token_env):
    with pytest.raises(McpRuntimeError) as info:
        mcp(f"connect bad http://user:{token_env}@127.0.0.1:1/mcp")
    assert token_env not in str(info.value)


def test_unset_header_variable_is_named(mcp, fault_http):
    with pytest.raises(McpRuntimeError, match="NOT_SET_ANYWHERE_123 is not set"):
        mcp(f"connect r {fault_http} --header 'X-Key: $NOT_SET_ANYWHERE_123'")


def test_sse_transport(mcp, fault_sse, token_env):
    mcp(f"connect s {fault_sse} --header 'Authorization: Bearer ${{MCP_MAGIC_TEST_TOKEN}}'")
    assert "sse" in repr(mcp("list"))
    assert mcp("call s.whoami") == f"Bearer {token_env}"


def test_filesystem_server_from_npm(mcp, tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    mcp(f"connect fs -- {node_server('mcp-server-filesystem')} {tmp_path}")
    assert "2025-11-25" in repr(mcp("list"))
    listing = mcp(f"call fs.list_directory path={tmp_path}")
    assert isinstance(listing, pd.DataFrame)
    assert sorted(zip(listing["name"], listing["type"])) == [("a.txt", "file"), ("sub", "dir")]
    with pytest.raises(McpRuntimeError, match="outside allowed directories|Access denied"):
        mcp("call fs.list_directory path=/etc")


def test_everything_server_resources_prompts_and_progress(mcp, capsys):
    mcp(f"connect ev -- {node_server('mcp-server-everything')}")
    resources = mcp("resources ev")
    assert len(resources) > 0
    uri = resources.rows[0][1]
    assert len(mcp(f"read {uri}")) > 0
    prompts = repr(mcp("prompts ev"))
    assert "simple-prompt" in prompts
    assert "[user]" in mcp("prompt ev.simple-prompt")
    capsys.readouterr()
    result = mcp("call ev.trigger-long-running-operation duration=0.5 steps=5")
    assert "completed" in result
    # Not a terminal shell here, so progress went to a display; the call still returned.


def test_time_server_from_pypi(mcp):
    mcp("connect time -- uvx mcp-server-time --local-timezone UTC")
    answer = mcp("call time.get_current_time timezone=UTC")
    text = json.dumps(answer) if not isinstance(answer, str) else answer
    assert "UTC" in text


def test_sqlite_reference_server_in_its_own_environment(mcp, tmp_path):
    import sqlite3

    db = tmp_path / "sales.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table sales (region text, amount real)")
        conn.executemany(
            "insert into sales values (?, ?)",
            [("North", 10.0), ("North", 5.5), ("South", 7.25), ("East", None)],
        )
    mcp(f"connect db -- uvx --with 'mcp<2' mcp-server-sqlite --db-path {db}")
    assert "2025-11-25" in repr(mcp("list"))
    frame = mcp(
        'call db.read_query query="select region, sum(amount) as total from sales '
        'group by region order by region"'
    )
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["region", "total"]
    assert list(frame["region"]) == ["East", "North", "South"]
    assert frame["total"].dtype.kind == "f"
    assert frame.set_index("region")["total"]["North"] == 15.5
    single = mcp("""call db.read_query '{"query": "select 1 as one"}'""")
    assert list(single["one"]) == [1]
    # The server reports SQL errors as text with isError false: still an error.
    with pytest.raises(McpRuntimeError, match="no such table"):
        mcp('call db.read_query query="select * from nosuch"')


def test_unknown_argument_names_the_parameters(mcp, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    with pytest.raises(UsageError, match="unknown argument 'txt' \\(the tool takes: text\\)"):
        mcp("call f.echo txt=hi")


def test_a_tool_added_at_run_time_can_be_called(mcp, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    assert "f.late" not in repr(mcp("tools f"))
    mcp("call f.add_tool name=late")
    import mcp_magic

    session = mcp_magic._magics.manager.sessions["f"]
    deadline = time.monotonic() + 5
    while not session.tools_stale and time.monotonic() < deadline:
        time.sleep(0.02)
    assert session.tools_stale  # the server's change event arrived (subscriptions/listen)
    assert "f.late" in repr(mcp("tools f"))  # listed again without --refresh
    assert mcp("call f.late") == "I am late"
    assert "f.late" in repr(mcp("tools f --refresh"))


def test_builtin_server_answers_with_typed_dataframes(mcp):
    mcp("connect data --builtin")
    df = mcp(
        'call data.query_db sql="select region, sum(amount) as total, count(*) as n '
        'from sales group by region"'
    )
    assert list(df.columns) == ["region", "total", "n"]
    assert df["total"].dtype == "float64" and df["n"].dtype == "int64"
    assert len(df) == 5
    orders = mcp('call data.query_db sql="select order_id, order_date from orders limit 5"')
    assert str(orders["order_date"].dtype).startswith("datetime64")
    files = mcp('call data.list_files path="."')
    assert {"name", "type", "size", "modified"} <= set(files.columns)
    assert str(files["modified"].dtype).startswith("datetime64")
    with pytest.raises(McpRuntimeError, match="read-only"):
        mcp('call data.query_db sql="drop table orders"')


def test_builtin_server_over_http(mcp):
    from conftest import ROOT, free_port, start_http_server, stop

    port = free_port()
    process = start_http_server(
        [
            sys.executable,
            "-m",
            "mcp_magic.server",
            "--transport",
            "http",
            "--port",
            str(port),
            "--root",
            str(ROOT),
        ],
        port,
    )
    try:
        mcp(f"connect web http://127.0.0.1:{port}/mcp")
        assert "http" in repr(mcp("list"))
        df = mcp('call web.query_db sql="select count(*) as n from customers"')
        assert df["n"][0] > 100
    finally:
        stop(process)


def test_progress_bar_in_terminal_ipython(tmp_path):
    import subprocess

    script = tmp_path / "progress.ipy"
    script.write_text(
        "%load_ext mcp_magic\n"
        f"%mcp connect f -- {sys.executable} {FAULT_SERVER}\n"
        "r = %mcp call f.progress steps=16\n"
        "print('RESULT', r)\n"
        "%mcp disconnect --all\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", str(script)],
        capture_output=True,
        timeout=60,
    )
    out = done.stdout.decode()  # bytes: text mode would turn the bar's \r into \n
    assert "RESULT done 16" in out, out + done.stderr.decode()
    assert "\rf.progress [" in out and "100%" in out


def test_python_variables_and_environment_headers_mix_on_one_line(
    mcp, shell, fault_http, token_env
):
    shell.user_ns["url"] = fault_http
    shell.user_ns["sql_text"] = "hello there"
    shell.run_cell("%mcp connect r $url --header 'Authorization: Bearer $MCP_MAGIC_TEST_TOKEN'")
    assert mcp("call r.whoami") == f"Bearer {token_env}"
    assert shell.run_cell("x = %mcp call r.echo text='{sql_text.upper()}'").success
    assert shell.user_ns["x"] == "HELLO THERE"


def test_missing_required_argument_is_refused_before_the_call(mcp, capsys):
    mcp("connect data --builtin")
    refused = mcp("log data").count("arguments refused")  # the log outlives a session
    with pytest.raises(UsageError) as info:
        mcp("call data.query_db")
    message = str(info.value)
    assert "missing required argument 'sql'" in message and "\n" not in message
    assert "data.query_db(sql: string" in message  # the tool's signature
    with pytest.raises(UsageError, match="missing required argument 'sql'"):
        mcp("call data.query_db '{}'")
    # Nothing reached the server: its log has no rejected call.
    assert mcp("log data").count("arguments refused") == refused


def test_huge_quoted_values_parse_and_arrive_whole(mcp, shell, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    value = "select a, b from t where c = 1 " * 35_000  # about 1 MB
    shell.user_ns["who"] = "North"
    assert shell.run_cell(f"r = %mcp call f.echo text='{value}'").success
    assert shell.user_ns["r"] == value
    assert shell.run_cell(f'r = %mcp call f.echo text="{{who}} {value}"').success
    assert shell.user_ns["r"] == f"North {value}"


def test_line_over_the_limit_is_one_line(mcp, shell, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    shell.run_line_magic("config", "McpMagics.line_limit = 1000")
    try:
        with pytest.raises(UsageError) as info:
            mcp("call f.echo text=" + "x" * 2000)
        assert "McpMagics.line_limit" in str(info.value) and "\n" not in str(info.value)
        shell.user_ns["big"] = "y" * 5000
        with pytest.raises(UsageError, match="line_limit"):
            mcp("call f.echo text=$big")  # the limit holds after expansion too
    finally:
        shell.run_line_magic("config", "McpMagics.line_limit = 10000000")
    assert mcp("call f.echo text=fine") == "fine"


def test_server_log_says_missing_not_rejected(mcp):
    import mcp_magic

    mcp("connect data --builtin")
    manager = mcp_magic._magics.manager
    # Past the magic's own check, as a model's call or Host.call may go.
    assert manager.call_tool("data", "query_db", {}).is_error
    assert manager.call_tool("data", "query_db", {"limit": "many"}).is_error
    log = mcp("log data")
    assert "Tool 'query_db': arguments refused (missing sql)" in log
    assert "missing sql; invalid limit" in log
    assert "rejected arguments" not in log


def test_big_answers_are_shown_cut_and_kept_whole(mcp, shell, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    text = "word " * 200_000  # 1 MB
    answer = mcp(f"call f.echo text='{text}'")
    assert answer == text
    shown = shell.display_formatter.format(answer)[0]["text/plain"]
    assert len(shown) < 20_200
    assert shown.splitlines()[-1] == (
        "… 980 kB more not shown; the whole value is in `_` or the variable it was assigned to"
    )
    rows = mcp("call f.rows count=3")  # a table: pandas bounds its own display
    assert len(rows) == 3
    shell.run_line_magic("config", "McpMagics.display_limit = 1000")
    try:
        assert len(shell.display_formatter.format(answer)[0]["text/plain"]) < 1200
        # The cell's value, `_` and an assigned variable keep everything.
        assert shell.run_cell(f"%mcp call f.echo text='{text}'").success
        assert shell.user_ns["_"] == text
        assert shell.run_cell(f"kept = %mcp call f.echo text='{text}'").success
        assert shell.user_ns["kept"] == text
    finally:
        shell.run_line_magic("config", "McpMagics.display_limit = 20000")


def test_functions_makes_tools_python_functions_without_shadowing(mcp, shell):
    mcp("connect data --builtin")
    shell.user_ns["data"] = "mine"
    try:
        mcp("functions")
        assert shell.user_ns["data"] == "mine"
        frame = shell.user_ns["mcp_servers"].data.query_db(sql="select 1 as one")
        assert list(frame.columns) == ["one"] and frame.one[0] == 1
    finally:
        del shell.user_ns["data"]
    mcp("functions data")
    assert shell.user_ns["data"].query_db(sql="select 2 as two").two[0] == 2
    with pytest.raises(UsageError, match="nosuch"):
        mcp("functions nosuch")


def test_a_server_object_outlives_its_server_without_breaking_the_agent(mcp, shell):
    mcp("connect gone --builtin")
    mcp("functions gone")
    mcp("disconnect gone")
    stale = shell.user_ns["gone"]
    try:
        assert not hasattr(stale, "to_csv")  # what scans of the notebook's variables ask
        with pytest.raises(Exception, match="gone"):
            stale.query_db(sql="select 1")
    finally:
        del shell.user_ns["gone"]
