"""Starting the built-in data server for real, and reading its answers, in tests."""

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import mcp
import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DB = REPO / "mcp_magic" / "data" / "sample.db"
SAMPLE_FILES = REPO / "mcp_magic" / "data" / "files"
TABLE_KEYS = {"columns", "types", "rows", "row_count", "truncated"}


def server_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def stdio_params(*args: str) -> mcp.StdioServerParameters:
    return mcp.StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_magic.server", *args], env=server_env())


class LiveClient:
    """An `mcp.Client` kept open by an owner task on a background event loop.

    Tests call it synchronously; the session is entered and exited in the owner task.
    """

    def __init__(self, server: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stop: asyncio.Event | None = None
        self.owner: asyncio.Future[None] | None = None
        try:
            self.client: mcp.Client = self.run(self._open(server))
        except BaseException:
            self._stop_loop()
            raise

    async def _open(self, server: Any) -> mcp.Client:
        self.stop = asyncio.Event()
        ready: asyncio.Future[mcp.Client] = asyncio.get_running_loop().create_future()
        self.owner = asyncio.ensure_future(self._own(server, ready))
        return await ready

    async def _own(self, server: Any, ready: asyncio.Future[mcp.Client]) -> None:
        try:
            async with mcp.Client(server) as client:
                ready.set_result(client)
                assert self.stop is not None
                await self.stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, tool: str, **arguments: Any) -> mcp.types.CallToolResult:
        return self.run(self.client.call_tool(tool, arguments))

    def close(self) -> None:
        async def finish() -> None:
            assert self.stop is not None and self.owner is not None
            self.stop.set()
            await self.owner

        try:
            self.run(finish())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def server_processes() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "mcp_magic.server" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


@pytest.fixture(scope="module", autouse=True)
def no_server_left_behind() -> Iterator[None]:
    """Set up first, torn down last: every server started in this module must be gone."""
    yield
    deadline = time.monotonic() + 10
    while server_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    leftovers = server_processes()
    for proc in leftovers:
        proc.kill()
    assert not leftovers, f"server processes left behind: {leftovers}"


def table(result: mcp.types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    data = result.structured_content
    assert data is not None and set(data) >= TABLE_KEYS
    assert data["row_count"] == len(data["rows"])
    assert len(data["types"]) == len(data["columns"])
    assert all(len(row) == len(data["columns"]) for row in data["rows"])
    return data


def error_text(result: mcp.types.CallToolResult) -> str:
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    assert "\n" not in text.strip()
    return text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(proc: subprocess.Popen[bytes], port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"server did not listen on port {port}")


class HttpServer:
    """The server over HTTP (or SSE) as a child process, its stderr kept in a file."""

    def __init__(self, log: Path, *args: str, host: str = "127.0.0.1",
                 env: dict[str, str] | None = None, transport: str = "http") -> None:
        self.port = free_port()
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}/{'mcp' if transport == 'http' else 'sse'}"
        base = {k: v for k, v in os.environ.items() if k != "MCP_MAGIC_SERVER_TOKEN"}
        with open(log, "wb") as errlog:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mcp_magic.server", "--transport", transport,
                 "--host", host, "--port", str(self.port), *args],
                env={**base, **server_env(), **(env or {})}, stdin=subprocess.DEVNULL,
                stdout=errlog, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.proc, self.port)
        except BaseException:
            self.stop()
            raise

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def wait_until(condition: Any, what: str, timeout: float = 60) -> None:
    """Poll `condition` (no sleeping a fixed time in place of a state)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
