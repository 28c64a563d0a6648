"""Helpers to drive a real Jupyter kernel (ipykernel) from tests with jupyter_client.

The kernel always runs this interpreter (`sys.executable`): a kernelspec is written
into a temporary directory and handed to the KernelManager, so neither the user's
nor the venv's installed kernelspecs (whose `python` depends on PATH) matter.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

KERNEL_NAME = "mcp-magic-test"
OUTPUT_TYPES = frozenset(
    {"stream", "display_data", "update_display_data", "execute_result", "error"}
)


def write_kernelspec(directory: Path) -> KernelSpecManager:
    """A kernelspec for `sys.executable` in `directory`, and a manager that only sees it."""
    spec_dir = directory / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "mcp_magic tests",
        "language": "python",
        "interrupt_mode": "signal",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(directory / "kernels")])


def start_kernel(
    directory: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[KernelManager, BlockingKernelClient]:
    """Start a kernel running `sys.executable` with its cwd and IPython dir in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ipython_dir = directory / "ipython"
    ipython_dir.mkdir(exist_ok=True)
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=write_kernelspec(directory))
    kernel_env = dict(os.environ)
    kernel_env.update({"IPYTHONDIR": str(ipython_dir), "PYTHONUNBUFFERED": "1"})
    kernel_env.pop("MPLBACKEND", None)
    # Questions at the input prompt, which tests answer over stdin; widget tests say so.
    kernel_env.setdefault("MCP_MAGIC_ASK", "prompt")
    kernel_env.update(env or {})
    km.start_kernel(env=kernel_env, cwd=str(directory))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=timeout)
    except BaseException:
        stop_kernel(km, kc)
        raise
    return km, kc


def stop_kernel(km: KernelManager, kc: BlockingKernelClient | None = None) -> None:
    """Shut the kernel down (politely, then by force) and close the client's channels."""
    if kc is not None:
        kc.stop_channels()
    if km.has_kernel:
        try:
            km.shutdown_kernel(now=False)
        except Exception:
            km.shutdown_kernel(now=True)
    with contextlib.suppress(Exception):
        km.cleanup_resources()


def collect(
    kc: BlockingKernelClient, msg_id: str, timeout: float = 30
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Outputs of the request `msg_id` (iopub, until the kernel is idle) and its reply.

    Each output is the iopub message's content with `msg_type` added.
    """
    deadline = time.monotonic() + timeout
    outputs: list[dict[str, Any]] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no idle status within {timeout} s; outputs so far: {outputs}")
        try:
            msg = kc.get_iopub_msg(timeout=remaining)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        msg_type = msg["msg_type"]
        if msg_type in OUTPUT_TYPES:
            outputs.append({"msg_type": msg_type, **msg["content"]})
        elif msg_type == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no execute_reply within {timeout} s")
        try:
            reply = kc.get_shell_msg(timeout=remaining)
        except queue.Empty:
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            return outputs, reply


def execute(
    kc: BlockingKernelClient, code: str, timeout: float = 30
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run `code` in the kernel and return (outputs, execute_reply message)."""
    return collect(kc, kc.execute(code, store_history=True), timeout)


def text_of(outputs: list[dict[str, Any]], streams: tuple[str, ...] = ("stdout",)) -> str:
    """The text a user would read: the chosen streams plus text/plain of results."""
    parts = []
    for out in outputs:
        if out["msg_type"] == "stream" and out["name"] in streams:
            parts.append(out["text"])
        elif out["msg_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", "") + "\n")
    return "".join(parts)


def stderr_of(outputs: list[dict[str, Any]]) -> str:
    return "".join(
        out["text"] for out in outputs if out["msg_type"] == "stream" and out["name"] == "stderr"
    )


def ok(kc: BlockingKernelClient, code: str, timeout: float = 30) -> str:
    """Run `code`, insist that it succeeded, and return what it printed/returned."""
    outputs, reply = execute(kc, code, timeout)
    content = reply["content"]
    assert content["status"] == "ok", (
        f"cell failed: {code!r}\n{content.get('ename')}: {content.get('evalue')}\n"
        + "\n".join(content.get("traceback", []))
        + f"\noutputs: {outputs}"
    )
    return text_of(outputs)


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def wait_for(predicate: Any, timeout: float, interval: float = 0.02) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@contextlib.contextmanager
def model_kernel(
    directory: Path, base_url: str, key: str, setup: str = ""
) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A kernel whose `openrouter:` models are answered at `base_url` (the scripted
    endpoint's URL + "/api/v1") with `key`; the extension loaded, `setup` run and the
    built-in data server connected as `data`."""
    env = {"OPENROUTER_API_KEY": key, "OPENROUTER_BASE_URL": base_url}
    km, kc = start_kernel(directory, env=env)
    try:
        ok(kc, "%load_ext mcp_magic" + (f"\n{setup}" if setup else ""))
        ok(kc, "%mcp connect data --builtin", timeout=60)
        yield km, kc
    finally:
        stop_kernel(km, kc)


@contextlib.contextmanager
def replay_kernel(directory: Path) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A kernel with no model configured at all (so an exported run must rebuild its tables
    by itself); the extension loaded and the built-in data server connected as `data`."""
    km, kc = start_kernel(directory, env={"OPENROUTER_API_KEY": "", "MCP_MAGIC_MODEL": ""})
    try:
        ok(kc, "%load_ext mcp_magic")
        ok(kc, "%mcp connect data --builtin", timeout=60)
        yield km, kc
    finally:
        stop_kernel(km, kc)
