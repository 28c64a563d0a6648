"""Shared fixtures: real servers, an in-process IPython shell, free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["postgres"]  # the throwaway PostgreSQL cluster (tests/postgres.py)

ROOT = Path(__file__).resolve().parent.parent
SERVERS = Path(__file__).resolve().parent / "servers"
FAULT_SERVER = SERVERS / "fault_server.py"
NODE_BIN = Path(__file__).resolve().parent / "node" / "node_modules" / ".bin"


def node_server(name: str) -> str:
    """Path of an npm reference server installed by .ci/run (tests/node)."""
    path = NODE_BIN / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `npm ci --prefix tests/node` (see .ci/run)")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def start_http_server(args: list[str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    try:
        wait_for_port(port, process)
    except Exception:
        process.kill()
        process.wait()
        raise
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _fault_server(option: str, path: str) -> Iterator[str]:
    """The fault server on a loopback port (`--http` or `--sse`); yields its URL."""
    port = free_port()
    process = start_http_server([sys.executable, str(FAULT_SERVER), option, str(port)], port)
    yield f"http://127.0.0.1:{port}{path}"
    stop(process)


@pytest.fixture(scope="session")
def fault_http() -> Iterator[str]:
    yield from _fault_server("--http", "/mcp")


@pytest.fixture(scope="session")
def fault_sse() -> Iterator[str]:
    yield from _fault_server("--sse", "/sse")


def global_ipython():
    """The in-process test shell; `start_ipython` returns it only on its first call."""
    from IPython.testing.globalipapp import get_ipython, start_ipython

    return start_ipython() or get_ipython()


@pytest.fixture(scope="session")
def shell():
    """One in-process IPython shell with the extension loaded."""
    ip = global_ipython()
    ip.run_line_magic("load_ext", "mcp_magic")
    yield ip
    ip.run_line_magic("unload_ext", "mcp_magic")


@pytest.fixture
def mcp(shell):
    """Run `%mcp ...` lines; every server connected in a test is closed after it."""
    import mcp_magic

    sessions = mcp_magic._magics.manager.sessions
    before = set(sessions)

    def run(line: str):
        return shell.run_line_magic("mcp", line)

    yield run
    for name in set(sessions) - before:
        run(f"disconnect {name}")


@pytest.fixture
def fault_cmd() -> str:
    return f"{sys.executable} {FAULT_SERVER}"


@pytest.fixture
def token_env(monkeypatch) -> str:
    secret = "tok-" + os.urandom(8).hex()
    monkeypatch.setenv("MCP_MAGIC_TEST_TOKEN", secret)
    return secret


# -- a scripted model endpoint, and a kernel for replaying exported runs -----------------


@pytest.fixture(scope="module")
def model_endpoint() -> Iterator[Any]:
    """One scripted OpenAI-compatible endpoint on 127.0.0.1 for a module's tests (and its
    kernel); tests take it as `endpoint`, which empties it first."""
    from fakes.scripted_http import ScriptedServer

    with ScriptedServer() as server:
        yield server


@pytest.fixture
def endpoint(model_endpoint: Any) -> Any:
    """The module's scripted endpoint, with no reply queued and no request recorded."""
    model_endpoint.replies.clear()
    model_endpoint.requests.clear()
    return model_endpoint


USER_NAMES = "print(sorted(n for n in globals() if not n.startswith('_')))"


@pytest.fixture(scope="module")
def _replay_kernel(tmp_path_factory) -> Iterator[Any]:
    # Once a module, not a session: its data server must not outlive the module, whose
    # check that no server is left behind would find it (and kill it).
    from kernel_utils import ok, replay_kernel

    with replay_kernel(tmp_path_factory.mktemp("replay-kernel")) as (km, kc):
        yield km, kc, ok(kc, USER_NAMES)  # the names a kernel starts with


@pytest.fixture
def replay(_replay_kernel: Any) -> Any:
    """(km, kc) of a kernel that has never had a model (no key, no default model), the
    built-in data server connected as `data` and its namespace emptied (`%reset -f`) to
    what a new kernel has: where an exported run is rerun. It starts once a module."""
    from kernel_utils import ok

    km, kc, names = _replay_kernel
    ok(kc, "%reset -f")
    assert ok(kc, USER_NAMES) == names
    return km, kc
