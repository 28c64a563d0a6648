"""Every way a connect can go wrong is one line that names the cause.

Malformed URLs, bad options, missing commands, servers that die, and the log of a
server on the 1.x SDK: through `%mcp`, `Host.connect` and `mcpServers` files, with
real servers. Each bad input also leaves the other sessions working.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError

import mcp_magic
from mcp_magic.api import Host
from mcp_magic.host import config
from mcp_magic.host.config import ConfigError
from mcp_magic.host.server_log import fold_probe_noise, last_server_line
from mcp_magic.host.sessions import McpError, exit_status
from mcp_magic.magics import McpRuntimeError

FAULT_SERVER = Path(__file__).resolve().parent / "servers" / "fault_server.py"

BAD_URLS = [
    ("http://[::1/mcp", "unbalanced brackets"),
    ("http://::1]/mcp", "unbalanced brackets"),
    ("http://[zz]/mcp", "'zz' is not an IPv4 or IPv6 address"),
    ("ftp://example.org/mcp", "the scheme must be http or https, not 'ftp'"),
    ("localhost:8000/mcp", "expected http://host[:port]/path"),
    ("http:///mcp", "it has no host"),
    ("http://example.org:99999/mcp", "the port 99999 is out of range (1-65535)"),
    ("http://example.org:0/mcp", "the port 0 is out of range"),
    ("http://example.org:abc/mcp", "the port 'abc' is not a number"),
    ("http://[::1]:70000/mcp", "the port 70000 is out of range"),
    ("http://example.org:80:81/mcp", "too many ':'"),
    ("http://exa mple.org/mcp", "the host 'exa mple.org' has characters"),
    ("http://999.1.1.1/mcp", "'999.1.1.1' is not an IPv4 address"),
]


@pytest.fixture(scope="module")
def kept(shell):
    """A server that every bad input must leave working."""
    shell.run_line_magic("mcp", f"connect keep -- {sys.executable} {FAULT_SERVER}")
    yield "keep"
    shell.run_line_magic("mcp", "disconnect keep")


def one_line(text: str) -> str:
    assert "\n" not in text.strip(), text
    assert "Traceback" not in text, text
    return text


@pytest.mark.parametrize("url,message", BAD_URLS, ids=[u for u, _ in BAD_URLS])
def test_a_malformed_url_is_one_usage_line(kept, mcp, url, message):
    with pytest.raises(UsageError) as info:
        mcp(f"connect r '{url}'")
    text = one_line(str(info.value))
    assert text.startswith("invalid URL") and message in text, text
    assert mcp("call keep.echo text=still-here") == "still-here"
    assert "r" not in mcp_magic._magics.manager.sessions


@pytest.mark.parametrize("url,message", BAD_URLS[:4], ids=[u for u, _ in BAD_URLS[:4]])
def test_host_connect_refuses_a_malformed_url_in_one_line(url, message):
    with Host() as host, pytest.raises(ConfigError) as info:
        host.connect("r", url=url)
    assert message in one_line(str(info.value))


HOST_BAD_INPUT = [
    ({"url": "http://127.0.0.1:9/mcp", "headers": {"Bad Name": "v"}}, "invalid header"),
    ({"url": "http://127.0.0.1:9/mcp", "transport": "grpc"}, "unknown transport 'grpc'"),
    ({"command": ["python"], "env": {"9X": "1"}}, "invalid --env '9X'"),
    ({"command": ["python"], "cwd": "/no/such/dir"}, "is not a directory"),
    ({"command": "python -c 'unclosed"}, "cannot parse the command"),
    ({"command": []}, "connect needs a command, a url, or builtin=True"),
    ({"builtin": True, "db": "/no/such.db"}, "--db '/no/such.db' does not exist"),
]


@pytest.mark.parametrize("kwargs,message", HOST_BAD_INPUT, ids=[m for _, m in HOST_BAD_INPUT])
def test_host_connect_bad_input_is_one_line(kwargs, message):
    with Host() as host, pytest.raises(ConfigError) as info:
        host.connect("s", **kwargs)
    assert message in one_line(str(info.value))
    assert host.manager.sessions == {}


def test_host_connect_takes_a_command_line_as_one_string():
    with Host() as host:
        host.connect("f", f"{sys.executable} {FAULT_SERVER}")
        assert host.call("f.echo", text="split") == "split"


def test_a_password_in_a_bad_url_is_not_shown(mcp, token_env):
    with pytest.raises(UsageError) as info:
        mcp(f"connect r http://user:{token_env}@[::1/mcp")
    assert token_env not in str(info.value)
    assert "http://[::1/mcp" in str(info.value)


def test_the_shell_still_runs_cells_after_a_bad_url(shell, kept):
    result = shell.run_cell("%mcp connect x http://[::1/mcp")
    assert isinstance(result.error_in_exec, UsageError)
    assert shell.run_cell("_after = 41 + 1").success and shell.user_ns["_after"] == 42


BAD_OPTIONS = [
    ("connect r http://127.0.0.1:9/mcp --header NoColon", "invalid header 'NoColon'"),
    ("connect r http://127.0.0.1:9/mcp --header ': v'", "invalid header"),
    ("connect r http://127.0.0.1:9/mcp --transport grpc", "invalid choice: 'grpc'"),
    ("connect s --env NOEQUALS -- python", "invalid --env 'NOEQUALS'"),
    ("connect s --env 9X=1 -- python", "invalid --env '9X'"),
    ("connect s --cwd /no/such/dir -- python", "--cwd '/no/such/dir' is not a directory"),
    ("connect s --", "missing server command"),
    ("connect s", "missing server for 's'"),
    ("connect s http://127.0.0.1:9/mcp -- python", "either a URL or -- COMMAND"),
    ("connect s --transport sse -- python", "--header and --transport are for a URL"),
    ("connect s --header 'A: b' -- python", "--header and --transport are for a URL"),
    ("connect s http://127.0.0.1:9/mcp --env A=b", "--env and --cwd are for a -- COMMAND"),
]


@pytest.mark.parametrize("line,message", BAD_OPTIONS, ids=[b[0] for b in BAD_OPTIONS])
def test_bad_connect_options_are_one_usage_line(kept, mcp, line, message):
    with pytest.raises(UsageError) as info:
        mcp(line)
    assert message in one_line(str(info.value))
    assert mcp("call keep.echo text=ok") == "ok"


def test_a_command_that_is_not_installed_says_so(kept, mcp):
    with pytest.raises(McpRuntimeError) as info:
        mcp("connect s -- no-such-mcp-server --flag")
    text = one_line(str(info.value))
    assert text == "could not connect 's': 'no-such-mcp-server' not found on PATH", text
    assert mcp("call keep.echo text=ok") == "ok"


@pytest.fixture
def no_uv(monkeypatch, tmp_path):
    """A machine without uv: not on PATH, not next to the kernel's Python either."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "executable", str(empty / "python"))


def test_the_readme_example_without_uv_says_how_to_get_it(kept, mcp, no_uv, tmp_path):
    line = f"connect db -- uvx --with 'mcp<2' mcp-server-sqlite --db-path {tmp_path / 's.db'}"
    with pytest.raises(McpRuntimeError) as info:
        mcp(line)
    assert one_line(str(info.value)) == (
        "could not connect 'db': uvx not found: pip install uv "
        "(or see https://docs.astral.sh/uv/)"
    )


def test_npx_missing_points_to_node(no_uv):
    with pytest.raises(ConfigError, match=r"^npx not found: install Node.js"):
        config.resolve_command(config.stdio_spec(["npx", "-y", "some-server"]))


def test_host_connect_without_uv_is_one_line(no_uv):
    with Host() as host, pytest.raises(McpError) as info:
        host.connect("db", ["uvx", "mcp-server-sqlite"])
    assert "uvx not found: pip install uv" in one_line(str(info.value))


def test_a_command_next_to_the_kernels_python_is_found_without_path(mcp, monkeypatch, tmp_path):
    # Jupyter started from another environment: the kernel's bin/ is not on PATH.
    monkeypatch.setenv("PATH", str(tmp_path))
    python = Path(sys.executable).name
    mcp(f"connect f -- {python} {FAULT_SERVER}")
    assert mcp("call f.echo text=found") == "found"


def test_a_script_without_execute_permission(mcp, tmp_path):
    script = tmp_path / "server.py"
    script.write_text("print('hi')\n")
    with pytest.raises(McpRuntimeError) as info:
        mcp(f"connect s -- {script}")
    assert "is not executable (run it with python: -- python" in one_line(str(info.value))


def test_config_file_entries_fail_one_by_one(mcp, tmp_path, capsys):
    file = tmp_path / "mcp.json"
    file.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "good": {"command": sys.executable, "args": [str(FAULT_SERVER)]},
                    "ipv6": {"url": "http://[::1/mcp"},
                    "port": {"url": "http://127.0.0.1:123456/mcp"},
                    "nocmd": {"command": "no-such-mcp-server"},
                    "nocwd": {"command": sys.executable, "cwd": "/no/such/dir"},
                    "intcwd": {"command": sys.executable, "cwd": 5},
                    "header": {"url": "http://127.0.0.1:9/mcp", "headers": {"Bad Name": "v"}},
                    "envname": {"command": sys.executable, "env": {"1A": "x"}},
                }
            }
        )
    )
    mcp(f"connect --config {file}")
    lines = capsys.readouterr().out.strip().splitlines()
    assert "Connected 'good'" in lines[0]
    assert "could not connect 'ipv6': invalid URL 'http://[::1/mcp': unbalanced brackets" in (
        "\n".join(lines)
    )
    assert any("'port'" in line and "out of range" in line for line in lines), lines
    assert any("'nocmd'" in line and "not found on PATH" in line for line in lines), lines
    assert any("'nocwd'" in line and "does not exist" in line for line in lines), lines
    assert any("'intcwd': server 'intcwd': 'cwd' must be a string" in line for line in lines)
    assert any("'header': invalid header 'Bad Name'" in line for line in lines), lines
    assert any("'1A' in 'env' is not a variable name" in line for line in lines), lines
    assert len(lines) == 8 and not any("Traceback" in line for line in lines), lines
    assert mcp("call good.echo text=ok") == "ok"


# -- servers that die ------------------------------------------------------------------


def test_a_server_that_exits_at_start_gives_its_code_and_last_words(mcp):
    script = "import sys; print('bad config: no token', file=sys.stderr); sys.exit(2)"
    with pytest.raises(McpRuntimeError) as info:
        mcp(f'connect s -- {sys.executable} -c "{script}"')
    assert one_line(str(info.value)) == (
        "could not connect 's': the server exited with code 2 before answering "
        "(server said: bad config: no token)"
    )


def test_a_server_killed_at_start_names_the_signal(mcp):
    with pytest.raises(McpRuntimeError) as info:
        mcp(f"connect s -- {sys.executable} -c 'import os; os.kill(os.getpid(), 9)'")
    assert str(info.value) == (
        "could not connect 's': the server was killed by SIGKILL before answering"
    )


def test_a_failed_connect_does_not_quote_an_earlier_run(mcp):
    script = "import sys; print('first run', file=sys.stderr); sys.exit(1)"
    with pytest.raises(McpRuntimeError, match="first run"):
        mcp(f'connect s -- {sys.executable} -c "{script}"')
    with pytest.raises(McpRuntimeError) as info:
        mcp(f'connect s -- {sys.executable} -c "raise SystemExit(4)"')
    assert str(info.value) == (
        "could not connect 's': the server exited with code 4 before answering"
    )


def test_a_killed_builtin_server_names_the_signal(mcp):
    mcp("connect data --builtin")
    session = mcp_magic._magics.manager.get("data")
    os.kill(session.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while session.state == "connected" and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(McpRuntimeError) as info:
        mcp("call data.query_db sql='select 1'")
    text = one_line(str(info.value))
    assert text == "server 'data' is dead: killed by SIGKILL; try %mcp reconnect data", text
    state = next(row[2] for row in mcp("list").rows if row[0] == "data")
    assert state == "dead: killed by SIGKILL"
    assert "[mcp_magic]" not in mcp("log data")
    mcp("reconnect data")
    assert mcp("call data.query_db sql='select 7 as n'")["n"][0] == 7


def test_a_crashed_server_names_its_exit_code_and_last_words(mcp, fault_cmd):
    mcp(f"connect f -- {fault_cmd}")
    with pytest.raises(McpRuntimeError) as info:
        mcp("call f.crash after=0.1")
    expected = "exited with code 3 (last stderr line: fault-server: crashing on purpose)"
    assert one_line(str(info.value)) == f"server 'f' went away during crash: {expected}"
    with pytest.raises(McpRuntimeError) as info:
        mcp("call f.echo text=x")
    assert str(info.value) == f"server 'f' is dead: {expected}; try %mcp reconnect f"
    state = next(row[2] for row in mcp("list").rows if row[0] == "f")
    assert state == "dead: exited with code 3"


def test_a_dead_server_through_the_api(fault_cmd):
    with Host() as host:
        host.connect("f", [sys.executable, str(FAULT_SERVER)])
        with pytest.raises(McpError, match=r"went away during crash: exited with code 3"):
            host.call("f.crash", after=0.1)


@pytest.mark.parametrize(
    "code,text",
    [(0, "exited with code 0"), (1, "exited with code 1"), (-9, "killed by SIGKILL"),
     (-15, "killed by SIGTERM"), (-200, "killed by signal 200")],
)  # fmt: skip
def test_exit_status_wording(code, text):
    assert exit_status(code) == text


# -- the log of a server on the 1.x SDK ---------------------------------------------------


PLAIN_PROBE_NOISE = """\
server starting on stdio
WARNING:root:Failed to validate request: 3 validation errors for ClientRequest
PingRequest.method
  Input should be 'ping' [type=literal_error, input_value='server/discover', input_type=str]
    For further information visit https://errors.pydantic.dev/2.14/v/literal_error
InitializeRequest.params.protocolVersion
  Field required [type=missing, input_value={'_meta': {}}, input_type=dict]
    For further information visit https://errors.pydantic.dev/2.14/v/missing
ListToolsRequest.method
  Input should be 'tools/list' [type=literal_error, input_value='server/discover', input_type=str]
    For further information visit https://errors.pydantic.dev/2.14/v/literal_error
Ready
listing tables""".splitlines()

RICH_PROBE_NOISE = """\
[12/03/26 09:11:51] WARNING  Failed to validate request: 31       session.py:383
                             validation errors for ClientRequest
                             PingRequest.method
                               Input should be 'ping'
                             [type=literal_error,
                             input_value='server/discover',
                             input_type=str]
                    INFO     Processing request of type           server.py:624
                             ListToolsRequest""".splitlines()


def test_probe_noise_folds_into_one_line_and_the_servers_lines_stay():
    folded = fold_probe_noise(PLAIN_PROBE_NOISE, "2025-11-25")
    assert folded == [
        "server starting on stdio",
        "[mcp_magic] server speaks protocol 2025-11-25 (10 lines of version-probe errors folded)",
        "Ready",
        "listing tables",
    ]
    rich = fold_probe_noise(RICH_PROBE_NOISE, "2025-11-25")
    assert rich[0].endswith("(7 lines of version-probe errors folded)")
    assert rich[1:] == RICH_PROBE_NOISE[7:]


def test_other_validation_warnings_are_left_alone():
    lines = [
        "WARNING:root:Failed to validate request: 1 validation error for ClientRequest",
        "CallToolRequest.params.name",
        "  Field required [type=missing, input_value={}, input_type=dict]",
    ]
    assert fold_probe_noise(lines, "2025-11-25") == lines


def test_last_server_line_skips_the_hosts_notes():
    lines = ["boom: disk full", "", "[mcp_magic] tool change events unavailable: x"]
    assert last_server_line(lines) == "boom: disk full"
    assert last_server_line(["x" * 500])[-1] == "…"


def test_sqlite_server_on_the_1x_sdk_log_leads_with_one_line(mcp, tmp_path):
    """`uvx --with "mcp<2" mcp-server-sqlite` (cached by setup): 90+ lines of probe errors."""
    mcp(f"connect db -- uvx --with 'mcp<2' mcp-server-sqlite --db-path {tmp_path / 'x.db'}")
    session = mcp_magic._magics.manager.get("db")
    raw = session.log_path.read_text()
    assert raw.count("\n") > 60 and "server/discover" in raw  # the noise is really there
    log = mcp("log db").splitlines()
    assert log[0].startswith("[mcp_magic] server speaks protocol 2025-11-25 (")
    assert log[0].endswith(" lines of version-probe errors folded)")
    assert not any("validation error" in line or "pydantic" in line for line in log), log
    assert len(log) <= 3, log


# -- Ctrl-C ---------------------------------------------------------------------------------

INTERRUPTED_CONNECT = """
import os, signal, sys, threading
from mcp_magic.api import Host
from mcp_magic.host.sessions import Interrupted

host = Host()
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    host.connect("hung", [sys.executable, "-c", "import sys\\nfor _ in sys.stdin: pass"])
except Interrupted as exc:
    assert isinstance(exc, KeyboardInterrupt)
    print("INTERRUPTED", exc)
print("SESSIONS", sorted(host.manager.sessions))
host.close()
"""


def test_ctrl_c_during_host_connect_is_an_interrupted_and_leaves_no_warning():
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_CONNECT],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert done.returncode == 0, done.stderr
    assert "INTERRUPTED connecting 'hung' cancelled" in done.stdout
    assert "SESSIONS []" in done.stdout
    assert done.stderr == "", done.stderr  # no "Future exception was never retrieved"


# -- what answered at a URL ------------------------------------------------------------------


class _HtmlPage(http.server.BaseHTTPRequestHandler):
    """A web server that is not an MCP server: every request gets an HTML page."""

    def do_GET(self) -> None:
        body = b"<html><body>Welcome</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


class _StatusPage(_HtmlPage):
    """Answers every request with the status its path starts with: /401/mcp gives 401."""

    def do_GET(self) -> None:
        if not self.path.startswith(("/401/", "/403/", "/502/")):
            return super().do_GET()
        self.send_response(int(self.path[1:4]))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_GET


@pytest.fixture(scope="module")
def html_site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatusPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"  # closed again: refused


def test_what_answered_at_a_url_is_named(mcp, fault_http, html_site):
    url = _refused_url()
    cases = [
        (url, f"nothing is listening at {url} (connection refused): is the server running?"),
        (fault_http.replace("/mcp", "/wrong"), "answered 404 Not Found: check the path"),
        (f"{html_site}/mcp", "answered with an HTML page, not MCP"),
        (f"{html_site}/sse", "answered with an HTML page, not MCP"),
        (fault_http.replace("http://", "https://"), "the server may speak http, not https"),
        (f"{html_site}/401/mcp", "answered HTTP 401 Unauthorized: it wants credentials, e.g. "
         "--header 'Authorization: Bearer $TOKEN'"),
        (f"{html_site}/401/sse", "answered HTTP 401 Unauthorized: it wants credentials"),
        (f"{html_site}/403/mcp", "answered HTTP 403 Forbidden: the credentials were refused"),
        (f"{html_site}/502/mcp", "answered HTTP 502 Bad Gateway"),
    ]  # fmt: skip
    for target, message in cases:
        with pytest.raises(McpRuntimeError) as info:
            mcp(f"connect r {target}")
        assert message in one_line(str(info.value)), (target, str(info.value))


def test_a_refused_token_says_so_and_hides_only_the_token(mcp, html_site):
    with pytest.raises(McpRuntimeError) as info:
        mcp(f"connect r {html_site}/401/mcp --header 'Authorization: Bearer wrong-token'")
    message = one_line(str(info.value))
    assert message.endswith(
        "answered HTTP 401 Unauthorized: the credentials sent were refused "
        "(check the --header value)"
    ), message
    assert "wrong-token" not in message and "***" not in message


SSE_TO_A_WEB_PAGE = """
import sys
from mcp_magic.api import Host
from mcp_magic.host.sessions import McpError

with Host(connect_timeout=20) as host:
    try:
        host.connect("r", url=sys.argv[1])
    except McpError as exc:
        print("ERROR", exc)
"""


def test_the_sdks_logged_tracebacks_stay_out_of_the_output(html_site):
    """Outside pytest (whose log capture would hide them), as in a kernel or a script."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", SSE_TO_A_WEB_PAGE, f"{html_site}/sse"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert "answered with an HTML page, not MCP" in done.stdout, done.stdout + done.stderr
    assert done.stderr == "", done.stderr  # was: "Encountered SSE exception" + traceback


# -- fuzzed URLs --------------------------------------------------------------------------

URL_PIECES = [
    "http://", "https://", "ftp://", "http:", "//", "/", "[", "]", "::1", "[::1]", ":",
    ":80", ":0", ":65536", ":99999", ":abc", "@", "user:pw@", "127.0.0.1", "localhost",
    "999.1.1.1", "ex ample", "%41", "bücher.de", "-", "_", ".", "..", "?", "#", "mcp", "sse",
    "\x00", "\t", "\n", "\x7f", "'", '"', "\\", "{", "}", "|", "^", "`", "<", ">", "😀",
]  # fmt: skip


def test_fuzzed_urls_are_refused_in_one_line_or_usable(token_env):
    """Whatever `check_url` accepts, the HTTP client accepts too: no ValueError later."""
    import random

    import httpx2

    rng = random.Random(20261203)
    accepted = 0
    for _ in range(3000):
        if rng.random() < 0.5:  # noise
            url = "".join(rng.choice(URL_PIECES) for _ in range(rng.randint(1, 8)))
        else:  # the shape of a URL, each part sometimes odd
            url = (
                rng.choice(["http://", "https://", "HTTP://", "http:/", "ws://"])
                + rng.choice(["", "", "user:pw@", "user@", "u:pw@x@"])
                + rng.choice(["127.0.0.1", "localhost", "[::1]", "bücher.de", "h_st", "a.b",
                              "[::1", "999.1.1.1", "😀", "", "ex ample"])
                + rng.choice(["", "", ":8000", ":0", ":65535", ":65536", ":x", ":"])
                + rng.choice(["/mcp", "/sse", "", "/a b", "?q=1", "#f", "/mcp/"])
            )  # fmt: skip
        url = url.replace("pw@", f"{token_env}@")
        try:
            config.check_url(url)
        except ConfigError as exc:
            message = str(exc)
            assert "\n" not in message and len(message) < 400, repr(url)
            assert token_env not in message, repr(url)
            continue
        accepted += 1
        httpx2.URL(url)  # would raise InvalidURL at connect time
        spec = config.http_spec(url)
        assert token_env not in spec.target and token_env not in repr(spec)
    assert accepted > 50  # the fuzz reaches valid URLs too, not only refusals
