"""OAuth for remote servers: token storage, the loopback redirect, a real round trip.

The round trip runs a real MCP server on 127.0.0.1 protected by the SDK's server-side
OAuth (its authorization server consents by itself), and `Host` connects through the
loopback listener: the test's "browser" opens the authorization link. The official
conformance suite (tests/test_conformance.py) covers the other flows.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from mcp_magic import Host
from mcp_magic.host import config
from mcp_magic.host.auth import (
    AuthorizationFailed,
    LoopbackAuthorizer,
    OAuth,
    OAuthSettings,
    TokenStore,
    format_summary,
)
from mcp_magic.host.sessions import McpError

from conftest import free_port

PROTECTED_SERVER = '''
import secrets, sys, time
from mcp.server.auth.provider import (AccessToken, AuthorizationCode, RefreshToken,
    construct_redirect_uri)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.mcpserver import MCPServer

PORT = int(sys.argv[1])
LIFETIME = int(sys.argv[2])
BASE = f"http://127.0.0.1:{PORT}"


class Provider:
    def __init__(self):
        self.clients, self.codes, self.tokens, self.refresh = {}, {}, {}, {}

    async def get_client(self, client_id):
        return self.clients.get(client_id)

    async def register_client(self, info):
        self.clients[info.client_id] = info

    async def authorize(self, client, params):  # consents at once
        code = secrets.token_hex(8)
        self.codes[code] = AuthorizationCode(
            code=code, scopes=params.scopes or ["read"], expires_at=time.time() + 60,
            client_id=client.client_id, code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource)
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(self, client, code):
        return self.codes.get(code)

    def _issue(self, client_id, scopes, resource):
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        self.tokens[access] = AccessToken(token=access, client_id=client_id, scopes=scopes,
            expires_at=int(time.time()) + LIFETIME, resource=resource)
        self.refresh[refresh] = RefreshToken(token=refresh, client_id=client_id,
            scopes=scopes, resource=resource)
        from mcp.shared.auth import OAuthToken
        return OAuthToken(access_token=access, expires_in=LIFETIME, scope=" ".join(scopes),
            refresh_token=refresh)

    async def exchange_authorization_code(self, client, code):
        del self.codes[code.code]
        print("issued by code", flush=True)
        return self._issue(client.client_id, code.scopes, code.resource)

    async def load_refresh_token(self, client, token):
        return self.refresh.get(token)

    async def exchange_refresh_token(self, client, token, scopes):
        del self.refresh[token.token]
        print("issued by refresh", flush=True)
        return self._issue(client.client_id, scopes or token.scopes, token.resource)

    async def load_access_token(self, token):
        found = self.tokens.get(token)
        if found and found.expires_at and found.expires_at < time.time():
            return None
        return found

    async def revoke_token(self, token):
        pass


server = MCPServer(
    name="protected",
    auth_server_provider=Provider(),
    auth=AuthSettings(
        issuer_url=BASE, resource_server_url=f"{BASE}/mcp",
        client_registration_options=ClientRegistrationOptions(
            enabled=True, valid_scopes=["read"], default_scopes=["read"]),
        required_scopes=["read"]),
)


@server.tool()
def secret_number() -> int:
    return 42


server.run("streamable-http", host="127.0.0.1", port=PORT)
'''


def _start_protected(tmp_path: Path, lifetime: int) -> tuple[subprocess.Popen, str]:
    script = tmp_path / "protected.py"
    script.write_text(PROTECTED_SERVER)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), str(lifetime)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server")
            return process, f"http://127.0.0.1:{port}/mcp"
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the protected server did not start")


@pytest.fixture
def protected(tmp_path):
    process, url = _start_protected(tmp_path, lifetime=3600)
    yield url, process
    process.kill()
    process.wait()


def _file(path: Path) -> TokenStore:
    """The 0600 file, whatever keyring this machine has (these tests read the file)."""
    return TokenStore(path, keyring=False)


def _browser(url: str) -> None:
    """A user who consents: follow the link, redirects included, to the loopback."""
    threading.Thread(
        target=lambda: httpx.get(url, follow_redirects=True, timeout=10), daemon=True
    ).start()


def test_connect_authorizes_through_the_loopback_and_keeps_tokens_in_a_0600_file(
    protected, tmp_path, capsys
):
    url, _ = protected
    store_path = tmp_path / "config" / "oauth.json"
    links: list[str] = []

    def authorizer() -> LoopbackAuthorizer:
        return LoopbackAuthorizer(show=lambda link: (links.append(link), _browser(link)))

    os.environ["MCP_MAGIC_NO_BROWSER"] = "1"
    try:
        with Host(connect_timeout=30, oauth=OAuth(_file(store_path), authorizer)) as host:
            host.connect("work", url=url)
            assert host.call("work.secret_number") in (42, "42")
            rows = host.auth()
            assert [(r["server"], r["scopes"], r["refreshable"]) for r in rows] == [
                ("work", "read", True)
            ]
            assert "work: " in format_summary(rows)
        assert len(links) == 1 and links[0].startswith(url.removesuffix("/mcp"))
        assert stat.S_IMODE(store_path.stat().st_mode) == 0o600
        access = json.loads(store_path.read_text())[url]["tokens"]["access_token"]
        assert access not in repr(rows) + format_summary(rows) + capsys.readouterr().out

        # A second host finds the tokens: no link this time.
        with Host(connect_timeout=30, oauth=OAuth(_file(store_path), authorizer)) as host:
            host.connect("work", url=url)
            assert host.call("work.secret_number") in (42, "42")
            assert len(links) == 1
            assert host.logout("work") and host.auth() == []
    finally:
        del os.environ["MCP_MAGIC_NO_BROWSER"]


def test_an_expired_token_is_refreshed_silently(tmp_path):
    process, url = _start_protected(tmp_path, lifetime=2)
    store_path = tmp_path / "oauth.json"
    os.environ["MCP_MAGIC_NO_BROWSER"] = "1"
    try:
        def authorizer() -> LoopbackAuthorizer:
            return LoopbackAuthorizer(show=_browser)

        with Host(connect_timeout=30, oauth=OAuth(_file(store_path), authorizer)) as host:
            host.connect("work", url=url)
        first = json.loads(store_path.read_text())[url]["tokens"]["access_token"]
        time.sleep(2.5)
        with Host(connect_timeout=30, oauth=OAuth(_file(store_path), authorizer)) as host:
            host.connect("work", url=url)
            assert host.call("work.secret_number") in (42, "42")
        assert json.loads(store_path.read_text())[url]["tokens"]["access_token"] != first
    finally:
        del os.environ["MCP_MAGIC_NO_BROWSER"]
        process.kill()
        output = process.communicate()[0]
    assert "issued by refresh" in output, output


def test_the_loopback_listener_catches_the_code_and_a_refusal():
    async def flow(query: str) -> object:
        authorizer = LoopbackAuthorizer(
            show=lambda link: _browser(f"{authorizer.redirect_uri}?{query}"), timeout=10
        )
        assert authorizer.redirect_uri.startswith("http://127.0.0.1:")
        os.environ["MCP_MAGIC_NO_BROWSER"] = "1"
        try:
            await authorizer.redirect("http://127.0.0.1:9/authorize")
        finally:
            del os.environ["MCP_MAGIC_NO_BROWSER"]
        return await authorizer.callback()

    result = asyncio.run(flow("code=abc&state=s1"))
    assert (result.code, result.state) == ("abc", "s1")
    with pytest.raises(AuthorizationFailed, match="access_denied"):
        asyncio.run(flow("error=access_denied"))


def test_the_token_file_is_private_and_logout_forgets(tmp_path):
    path = tmp_path / "oauth.json"
    store = TokenStore(path, keyring=False)
    store.put("http://x/mcp", name="x", tokens={"access_token": "SECRET", "scope": "a b"},
              expires_at=time.time() + 600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rows = OAuth(TokenStore(path, keyring=False)).summary()
    assert rows[0]["server"] == "x" and rows[0]["scopes"] == "a b"
    assert rows[0]["expires"].startswith("in ")
    assert "SECRET" not in repr(rows)
    oauth = OAuth(TokenStore(path, keyring=False))
    assert oauth.logout("x") and not oauth.logout("x")
    assert OAuth(TokenStore(path, keyring=False)).summary() == []


def test_mcpservers_entries_carry_oauth_settings_and_the_secret_is_hidden(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("WORK_SECRET", "s3cr3t-value")
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"work": {
        "type": "http", "url": "https://mcp.example.com/mcp",
        "oauth": {"clientId": "abc", "clientSecret": "${WORK_SECRET}",
                  "scopes": ["read", "write"]},
    }, "bad": {"url": "https://mcp.example.com/mcp", "oauth": "yes"}}}))
    specs = config.load_config_file(str(path))
    spec = specs["work"]
    assert spec.oauth.client_id == "abc" and spec.oauth.scopes == "read write"
    assert "s3cr3t-value" in spec.secrets()
    assert "s3cr3t-value" not in repr(spec)
    assert isinstance(specs["bad"], config.ConfigError)
    assert "'oauth' must be an object" in str(specs["bad"])


class _NoOAuth(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401 if self.path.startswith("/mcp") else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


def test_a_401_without_oauth_is_one_line_naming_the_fix():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoOAuth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with (
            Host(connect_timeout=20, oauth=OAuth(TokenStore(memory=True))) as host,
            pytest.raises(McpError) as info,
        ):
            host.connect("r", url=f"http://127.0.0.1:{server.server_address[1]}/mcp")
        message = str(info.value)
        assert "\n" not in message
        assert "answered HTTP 401 Unauthorized" in message
        assert "--header 'Authorization: Bearer $TOKEN'" in message
    finally:
        server.shutdown()
        server.server_close()


def test_mcp_auth_lists_and_logs_out_without_showing_tokens(mcp, capsys, monkeypatch):
    from IPython.core.error import UsageError

    import mcp_magic

    store = TokenStore(memory=True)
    monkeypatch.setattr(mcp_magic._magics.oauth, "store", store)
    mcp("auth")
    assert "No server holds OAuth tokens." in capsys.readouterr().out
    store.put("https://mcp.example.com/mcp", name="work",
              tokens={"access_token": "TOPSECRET", "scope": "read", "refresh_token": "R"},
              expires_at=time.time() + 3600)
    mcp("auth")
    out = capsys.readouterr().out
    assert "work: https://mcp.example.com/mcp  scopes: read  expires: in 59 min" in out
    assert "TOPSECRET" not in out
    mcp("auth logout work")
    assert "Forgot the OAuth tokens of 'work'." in capsys.readouterr().out
    assert store.servers() == []
    with pytest.raises(UsageError, match="--client-credentials needs --client-id"):
        mcp("connect svc https://mcp.example.com/mcp --client-credentials")


def test_the_connect_waits_for_the_users_consent_and_says_when_none_came(protected):
    url, _ = protected

    def slow_user(link: str) -> None:
        threading.Thread(
            target=lambda: (time.sleep(3), _browser(link)), daemon=True
        ).start()

    os.environ["MCP_MAGIC_NO_BROWSER"] = "1"
    try:
        # The connect timeout (2 s) counts the server, not the user reading the page.
        consent = OAuth(TokenStore(memory=True), lambda: LoopbackAuthorizer(show=slow_user))
        with Host(connect_timeout=2, oauth=consent) as host:
            host.connect("work", url=url)
            assert host.call("work.secret_number") in (42, "42")

        nobody = OAuth(
            TokenStore(memory=True),
            lambda: LoopbackAuthorizer(show=lambda link: None, timeout=1),
        )
        with Host(connect_timeout=2, oauth=nobody) as host, pytest.raises(McpError) as info:
            host.connect("work", url=url)
        assert "needs authorization, which did not complete: no authorization within 1 s" in str(
            info.value
        )
    finally:
        del os.environ["MCP_MAGIC_NO_BROWSER"]


# -- a kernel the browser cannot reach: the redirected address is pasted back ----------


def _redirected_address(link: str) -> str:
    """What a remote user's browser ends on: the authorization server's redirects
    followed up to the loopback address, which (on the user's machine) does not load."""
    while True:
        answer = httpx.get(link, follow_redirects=False, timeout=10)
        location = answer.headers.get("location", "")
        assert answer.is_redirect and location, (answer.status_code, answer.text[:200])
        if location.startswith("http://127.0.0.1:") and "/callback" in location:
            return location
        link = location


def test_the_pasted_redirect_completes_the_authorization(protected):
    url, _ = protected
    links: list[str] = []

    def user(link: str) -> str:
        links.append(link)
        return "  " + _redirected_address(link) + "\n"

    oauth = OAuth(TokenStore(memory=True), paste=True, ask_redirect=user)
    with Host(connect_timeout=30, oauth=oauth) as host:
        host.connect("work", url=url)
        assert host.call("work.secret_number") in (42, "42")
    assert len(links) == 1 and "state=" in links[0]


def test_a_pasted_address_from_another_authorization_or_no_address_is_one_line(protected):
    url, _ = protected
    for paste, expected in [
        (lambda link: _redirected_address(link).replace("state=", "state=x"),
         "answers another authorization (its state does not match); connect again"),
        (lambda link: "I clicked allow", "the pasted text is not the redirected address"),
        (lambda link: "http://127.0.0.1:8976/callback?error=access_denied",
         "authorization refused: access_denied"),
    ]:
        oauth = OAuth(TokenStore(memory=True), paste=True, ask_redirect=paste)
        with Host(connect_timeout=30, oauth=oauth) as host, pytest.raises(McpError) as info:
            host.connect("work", url=url)
        assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_jupyterhub_and_binder_are_taken_for_remote_kernels():
    from mcp_magic.host.auth import remote_kernel

    assert remote_kernel({"JUPYTERHUB_API_URL": "http://hub"})
    assert remote_kernel({"BINDER_LAUNCH_HOST": "https://mybinder.org/"})
    assert not remote_kernel({"HOME": "/root"})


@pytest.mark.parametrize("style", ["widgets", "prompt"])
def test_in_a_kernel_the_link_shows_and_the_pasted_address_is_asked_for(
    protected, tmp_path, style
):
    import queue
    import re

    from test_client_requests import WidgetFront

    from kernel_utils import collect, ok, start_kernel, stop_kernel

    url, _ = protected
    km, kc = start_kernel(tmp_path / "k", env={
        "MCP_MAGIC_NO_BROWSER": "1", "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "JUPYTERHUB_API_URL": "http://hub.invalid", "MCP_MAGIC_ASK": style,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})  # not the user's
    try:
        ok(kc, "%load_ext mcp_magic")
        msg_id = kc.execute(f"%mcp connect work {url}", allow_stdin=True)
        if style == "widgets":
            front = WidgetFront(kc, msg_id)
            front.pump(front.displayed)
            html = front.notes()
        else:
            prompt = kc.get_stdin_msg(timeout=60)["content"]["prompt"]
            assert prompt == "Redirected address: "
            html = ""
            while "href=" not in html:
                try:
                    message = kc.get_iopub_msg(timeout=10)
                except queue.Empty:
                    break
                html = message["content"].get("data", {}).get("text/html", "")
        found = re.search(r'href="([^"]+)"', html)
        assert found and "Authorize this server" in html, html
        address = _redirected_address(found.group(1).replace("&amp;", "&"))
        if style == "widgets":
            text_field = next(c for c, s in front.states.items()
                              if s.get("_model_name") == "TextModel")
            front.send(text_field, {"method": "update", "state": {"value": address},
                                    "buffer_paths": []})
            front.click("Submit")
        else:
            kc.input(address)
        outputs, reply = collect(kc, msg_id, 60)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "Connected 'work'" in "".join(o.get("text", "") for o in outputs)
        assert "42" in ok(kc, "%mcp call work.secret_number")
        # Ctrl-C while the address is asked for: one line.
        ok(kc, "%mcp auth logout work\n%mcp disconnect work")
        msg_id = kc.execute(f"%mcp connect again {url}", allow_stdin=True)
        if style == "widgets":
            front = WidgetFront(kc, msg_id)
            front.pump(front.displayed)
        else:
            kc.get_stdin_msg(timeout=60)
        km.interrupt_kernel()
        outputs, reply = collect(kc, msg_id, 30)
        assert reply["content"]["ename"] == "Interrupted"
        assert "connecting 'again' cancelled" in reply["content"]["evalue"]
    finally:
        stop_kernel(km, kc)


# -- a fixed redirect port (a client registered in advance with that redirect URI) ------


def test_a_fixed_redirect_port_is_used_and_a_taken_one_is_one_line(protected):
    import socket

    url, _ = protected
    port = free_port()
    os.environ["MCP_MAGIC_NO_BROWSER"] = "1"
    links: list[str] = []
    try:
        oauth = OAuth(TokenStore(memory=True), paste=False, redirect_port=port,
                      show=lambda link: (links.append(link), _browser(link)))
        with Host(connect_timeout=30, oauth=oauth) as host:
            host.connect("work", url=url)
            assert host.call("work.secret_number") in (42, "42")
        client = oauth.store.get(url)["client"]
        assert client["redirect_uris"] == [f"http://127.0.0.1:{port}/callback"]
        assert f"redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback" in links[0]

        with socket.socket() as taken:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
            taken.bind(("127.0.0.1", port))
            taken.listen()
            settings = OAuth(TokenStore(memory=True), paste=False)
            with Host(connect_timeout=30, oauth=settings) as host, pytest.raises(
                McpError
            ) as info:
                host.connect("work", url=url, oauth=OAuthSettings(redirect_port=port))
        message = str(info.value)
        assert f"the OAuth redirect port {port} on 127.0.0.1 is taken" in message, message
        assert "\n" not in message
    finally:
        del os.environ["MCP_MAGIC_NO_BROWSER"]


def test_redirect_port_and_paste_settings_from_magics_and_mcpservers(mcp, tmp_path):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="--redirect-port must be a port number"):
        mcp("connect svc https://mcp.example.com/mcp --redirect-port 70000")
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "work": {"url": "https://mcp.example.com/mcp",
                 "oauth": {"clientId": "abc", "redirectPort": 8765, "paste": True}},
        "bad": {"url": "https://mcp.example.com/mcp", "oauth": {"redirectPort": "x"}},
    }}))
    specs = config.load_config_file(str(path))
    assert specs["work"].oauth.redirect_port == 8765 and specs["work"].oauth.paste is True
    assert "oauth 'redirectPort' must be a port number" in str(specs["bad"])


def test_terminal_ipython_prints_the_link_and_reads_the_pasted_address(protected, tmp_path):
    import re

    from test_terminal import Terminal

    url, _ = protected
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    os.environ["MCP_MAGIC_NO_BROWSER"] = "1"
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"  # not the user's
    try:
        term = Terminal([], tmp_path)
    finally:
        del os.environ["XDG_CONFIG_HOME"], os.environ["MCP_MAGIC_NO_BROWSER"]
        del os.environ["PYTHON_KEYRING_BACKEND"]
    try:
        term.run("%load_ext mcp_magic")
        child = term.child
        child.send(f"%mcp connect work {url} --paste\r")
        child.expect(r"Authorize in your browser: (http\S+)")
        link = child.match.group(1)
        child.expect_exact("Redirected address: ")
        child.send(_redirected_address(link) + "\r")
        out = term.settle()
        assert "Connected 'work'" in out, out
        assert re.search(r"\b42\b", term.run("%mcp call work.secret_number"))
    finally:
        term.close()


# -- the OS keyring (the optional `keyring` package) ----------------------------------

KEYRING_SESSION = '''
import sys, threading, httpx
if sys.argv[3] == "uninstalled":
    sys.modules["keyring"] = None  # as if the package were not installed
from IPython.core.interactiveshell import InteractiveShell
import mcp_magic

url = sys.argv[1]
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "mcp_magic")
oauth = mcp_magic._magics.oauth
oauth.paste = False
def consent(link):
    print("CONSENT ASKED")
    threading.Thread(target=lambda: httpx.get(link, follow_redirects=True, timeout=10),
                     daemon=True).start()
oauth.show = consent
ip.run_line_magic("mcp", f"connect work {url}")
print("CALL", ip.run_line_magic("mcp", "call work.secret_number"))
print("BACKEND", type(oauth.store.keyring).__name__)
ip.run_line_magic("mcp", "auth")
if sys.argv[2] == "logout":
    ip.run_line_magic("mcp", "auth logout work")
ip.run_line_magic("mcp", "disconnect work")
'''


def _keyring_session(tmp_path: Path, url: str, then: str, backend: str | None) -> str:
    script = tmp_path / "session.py"
    script.write_text(KEYRING_SESSION)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTERHUB_", "BINDER_", "PYTHON_KEYRING_BACKEND"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"),
               MCP_MAGIC_NO_BROWSER="1")
    if backend:
        env["PYTHON_KEYRING_BACKEND"] = backend
    done = subprocess.run([sys.executable, str(script), url, then, backend or "uninstalled"],
                          env=env, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_tokens_go_to_the_keyring_when_one_is_set_up_and_logout_removes_them(
    protected, tmp_path
):
    pytest.importorskip("keyrings.alt")
    url, _ = protected
    out = _keyring_session(tmp_path, url, "stay", "keyrings.alt.file.PlaintextKeyring")
    assert "CALL 42" in out and "BACKEND PlaintextKeyring" in out and "CONSENT ASKED" in out
    assert "work: " + url + "  scopes: read  expires: in " in out and "(refreshable)" in out
    ring = next((tmp_path / "data").rglob("keyring_pass.cfg"))
    listed = json.loads((tmp_path / "config" / "mcp_magic" / "oauth.json").read_text())
    assert listed[url]["in_keyring"] and listed[url]["name"] == "work"
    assert "tokens" not in listed[url] and "client" not in listed[url]

    from keyrings.alt.file import PlaintextKeyring

    class Here(PlaintextKeyring):
        file_path = str(ring)

    saved = json.loads(Here().get_password("mcp_magic", url))
    access, refresh = saved["tokens"]["access_token"], saved["tokens"]["refresh_token"]
    for secret in (access, refresh):
        assert secret not in out
        assert secret not in (tmp_path / "config" / "mcp_magic" / "oauth.json").read_text()

    # A second session finds the tokens in the keyring (no new consent), then logs out.
    out = _keyring_session(tmp_path, url, "logout", "keyrings.alt.file.PlaintextKeyring")
    assert "CALL 42" in out and "Forgot the OAuth tokens of 'work'." in out, out
    assert "CONSENT ASKED" not in out
    assert Here().get_password("mcp_magic", url) is None
    assert url not in json.loads((tmp_path / "config" / "mcp_magic" / "oauth.json").read_text())


@pytest.mark.parametrize("backend", ["keyring.backends.null.Keyring", None])
def test_without_a_usable_keyring_tokens_go_to_the_0600_file(protected, tmp_path, backend):
    # keyring's null backend (nothing usable), or no keyring package at all.
    url, _ = protected
    out = _keyring_session(tmp_path, url, "stay", backend)
    assert "CALL 42" in out and "BACKEND NoneType" in out, out
    path = tmp_path / "config" / "mcp_magic" / "oauth.json"
    assert json.loads(path.read_text())[url]["tokens"]["access_token"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_keyring_picked_automatically_must_be_a_real_store():
    """keyrings.alt's plain-text file (priority 0.5) is no safer than the 0600 file."""
    pytest.importorskip("keyrings.alt")
    code = ("import keyring; from keyrings.alt.file import PlaintextKeyring; "
            "keyring.set_keyring(PlaintextKeyring()); "
            "from mcp_magic.host.auth import keyring_backend; print(keyring_backend())")
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_KEYRING_BACKEND"}
    env["XDG_CONFIG_HOME"] = "/nonexistent-config"  # no keyringrc.cfg
    done = subprocess.run([sys.executable, "-c", code], env=env, text=True,
                          capture_output=True, timeout=60)
    assert done.stdout.strip() == "None", done.stderr


def test_a_keyring_that_refuses_to_store_leaves_the_tokens_in_the_file(tmp_path):
    """A locked or refusing keyring must not lose a fresh token: the file takes it."""
    keyring = pytest.importorskip("keyring")
    from keyring.backend import KeyringBackend
    from keyring.errors import PasswordSetError

    class Refusing(KeyringBackend):
        priority = 5  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> None:
            return None

        def set_password(self, service: str, username: str, password: str) -> None:
            raise PasswordSetError("locked")

        def delete_password(self, service: str, username: str) -> None:
            raise PasswordSetError("locked")

    before = keyring.get_keyring()
    keyring.set_keyring(Refusing())
    try:
        path = tmp_path / "oauth.json"
        store = TokenStore(path)
        assert isinstance(store.keyring, Refusing)
        store.put("http://x/mcp", name="x", tokens={"access_token": "T", "scope": "a"})
        assert store.keyring is None
        assert json.loads(path.read_text())["http://x/mcp"]["tokens"]["access_token"] == "T"
    finally:
        keyring.set_keyring(before)
