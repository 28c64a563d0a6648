"""The data server over HTTP: exposed means protected, and idle sessions do not pile up.

Servers bound to 0.0.0.0 are still only spoken to on 127.0.0.1; a foreign Host or Origin
is sent as a header, the way a DNS-rebinding page would send it.
"""

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mcp
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from server_utils import (
    HttpServer,
    LiveClient,
    no_server_left_behind,  # noqa: F401  (autouse fixture)
    table,
    wait_until,
)

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "test", "version": "1"}}}
EVIL = {"Host": "evil.example", "Origin": "http://evil.example"}
TOKEN_LINE = re.compile(r"'Authorization: Bearer ([A-Za-z0-9_-]+)'")


def initialize(url: str, **headers: str) -> httpx.Response:
    return httpx.post(url, json=INITIALIZE, headers={**HEADERS, **headers}, timeout=30)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def list_tables_with(url: str, headers: dict[str, str]) -> Any:
    """A real MCP client over streamable HTTP, sending `headers` with every request."""
    async def main() -> Any:
        transport = streamable_http_client(url, http_client=create_mcp_http_client(headers))
        async with mcp.Client(transport) as client:  # type: ignore[arg-type]
            return await client.call_tool("list_tables", {})

    return asyncio.run(main())


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start servers with given arguments; all are stopped after the test."""
    servers: list[HttpServer] = []

    def run(*args: str, **kwargs: Any) -> HttpServer:
        server = HttpServer(tmp_path / f"server{len(servers)}.log", "--root", str(tmp_path),
                            *args, **kwargs)
        servers.append(server)
        return server

    yield run
    for server in servers:
        server.stop()


# ------------------------------------------------------------------ exposed means protected


def test_loopback_needs_no_token_but_refuses_a_foreign_host_and_origin(start: Any) -> None:
    server = start()
    assert initialize(server.url).status_code == 200
    refused = initialize(server.url, **EVIL)
    assert refused.status_code == 421
    assert refused.text == ("Host 'evil.example' is not allowed; start the server with "
                            "--allowed-hosts NAME to accept it")
    origin = initialize(server.url, Origin="http://evil.example")
    assert origin.status_code == 403
    assert initialize(server.url, Origin=f"http://localhost:{server.port}").status_code == 200


def test_allowed_hosts_adds_names_explicitly(start: Any) -> None:
    server = start("--allowed-hosts", "data.example,other.example", "--allowed-hosts", "[::2]")
    for host in ("data.example", f"data.example:{server.port}", "OTHER.example", "[::2]:80"):
        assert initialize(server.url, Host=host).status_code == 200, host
    assert initialize(server.url, Host="data.example",
                      Origin="https://data.example").status_code == 200
    assert initialize(server.url, **EVIL).status_code == 421
    assert initialize(server.url, Host="data.example.evil").status_code == 421
    anything = start("--allowed-hosts", "*")
    assert initialize(anything.url, **EVIL).status_code == 200


def test_all_interfaces_require_a_generated_token_printed_once(start: Any) -> None:
    server = start(host="0.0.0.0")
    wait_until(lambda: TOKEN_LINE.search(server.output()), "the token line")
    match = TOKEN_LINE.search(server.output())
    assert match
    token = match.group(1)
    assert len(token) >= 32
    unauthorized = initialize(server.url)
    assert unauthorized.status_code == 401
    assert unauthorized.headers["www-authenticate"].startswith("Bearer")
    assert "bearer token" in unauthorized.text and token not in unauthorized.text
    assert initialize(server.url, **bearer("wrong")).status_code == 401
    assert initialize(server.url, Authorization=token).status_code == 401  # no scheme
    # The DNS-rebinding check holds on 0.0.0.0 too, even with the right token.
    assert initialize(server.url, **EVIL, **bearer(token)).status_code == 421
    assert initialize(server.url, Origin="http://evil.example",
                      **bearer(token)).status_code == 403
    assert initialize(server.url, **bearer(token)).status_code == 200
    tables = table(list_tables_with(server.url, bearer(token)))
    assert "orders" in [row[0] for row in tables["rows"]]
    assert server.output().count(token) == 1


def test_a_token_from_the_environment_is_required_and_never_printed(start: Any) -> None:
    token = "t0k-from-the-environment-123456789"
    server = start(host="0.0.0.0", env={"MCP_MAGIC_SERVER_TOKEN": token})
    assert initialize(server.url).status_code == 401
    assert initialize(server.url, **bearer(token)).status_code == 200
    tables = table(list_tables_with(server.url, bearer(token)))
    assert "orders" in [row[0] for row in tables["rows"]]
    assert "MCP_MAGIC_SERVER_TOKEN" in server.output()
    assert token not in server.output()
    # Set explicitly, the token guards a loopback server as well.
    local = start(env={"MCP_MAGIC_SERVER_TOKEN": token})
    assert initialize(local.url).status_code == 401
    assert initialize(local.url, **bearer(token)).status_code == 200


def test_sse_is_protected_the_same_way(start: Any) -> None:
    server = start(host="0.0.0.0", transport="sse")
    wait_until(lambda: TOKEN_LINE.search(server.output()), "the token line")
    with httpx.stream("GET", server.url, timeout=30) as response:
        assert response.status_code == 401
    token = TOKEN_LINE.search(server.output()).group(1)  # type: ignore[union-attr]
    with httpx.stream("GET", server.url, headers={**EVIL, **bearer(token)},
                      timeout=30) as response:
        assert response.status_code == 421
    with httpx.stream("GET", server.url, headers=bearer(token), timeout=30) as response:
        assert response.status_code == 200


# --------------------------------------------------------------------------- idle sessions


def test_idle_sessions_expire_but_a_connected_client_stays(start: Any) -> None:
    server = start("--session-idle-timeout", "0.5")
    # A client that keeps its session open (with its event stream) is never idle.
    client = LiveClient(server.url)
    try:
        assert table(client.call("list_tables"))["row_count"] > 0
        sessions = []
        for _ in range(5):
            response = initialize(server.url)
            assert response.status_code == 200
            sessions.append(response.headers["mcp-session-id"])
        wait_until(lambda: all(f"Session {sid} idle timeout" in server.output()
                               for sid in sessions), "the idle sessions to be closed")
        expired = httpx.post(server.url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                             headers={**HEADERS, "mcp-session-id": sessions[0]}, timeout=30)
        assert expired.status_code == 404
        assert table(client.call("list_tables"))["row_count"] > 0
        assert server.output().count("idle timeout") == len(sessions)
    finally:
        client.close()


def test_open_sessions_are_capped(start: Any) -> None:
    server = start("--max-sessions", "3")
    for _ in range(3):
        assert initialize(server.url).status_code == 200
    assert initialize(server.url).status_code == 503
