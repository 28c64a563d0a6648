"""One JupyterLab server and one Chromium for all the browser tests (started by
`conftest.py`), and the small steps the tests share.

The server has its own config, data, runtime, settings, workspace and IPython
directories (the venv's kernelspec and lab extensions stay reachable through
`sys.prefix/share/jupyter`). Each test module writes its notebooks into a directory of
its own under `root` and shuts down the kernels it started there; kernels run in the
server's environment (`env`). Notebook 7 gets a server of its own, `jupyter notebook`,
as its users start it: served by `jupyter lab`, its page reads JupyterLab's settings and
shows errors of its own.

Chromium comes from Debian (`apt-get install chromium`, done by `scripts/setup.sh
--test`), not from Playwright's download, which does not work here. Each module opens
its own browser context (its own cookies, storage and pages) in the one Chromium.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import nbformat
from fakes import openai_wire as wire
from fakes.scripted_http import Recorded, Reply, ScriptedServer

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("MCP_MAGIC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "browser-test-" + os.urandom(8).hex()
API_KEY = "sk-browser-test-dummy"
UI_TIMEOUT_MS = 60_000  # JupyterLab loading, a kernel starting, a widget appearing
WIDGETS_PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"
# User settings for JupyterLab: every cell in the DOM (no windowing), no news or update
# checks. Notebook 7 gets none.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}
NOTEBOOK_MODEL = ROOT / "tests" / "fakes" / "notebook_model.py"
MODEL = "openrouter:openai/gpt-4o-mini"
SQL = "select region, round(sum(amount), 2) as total from sales group by region order by total desc"
ANSWER = "East had the most revenue; the table is bound to result_1."
PYTHON_KERNELSPEC = {
    "name": "python3",
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
}


# The notebook `name` is open, its kernel connected and idle, and it can run.
READY = """name => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    if (!panel || !panel.context || panel.context.path !== name || !panel.context.isReady) {
        return false;
    }
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle'
        && app.commands.isEnabled('notebook:run-all-cells');
}"""


class ScriptedModel(ScriptedServer):
    """An OpenAI-compatible endpoint that answers by the conversation, not by a queue.

    A request whose last message is a tool result gets the final text answer; any other
    gets one `query_db` tool call. So reruns, retries and extra requests all get a
    sensible reply, whatever order they come in.
    """

    def _next(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
        body = recorded.body if isinstance(recorded.body, dict) else {}
        messages = body.get("messages") or [{}]
        streaming = bool(body.get("stream"))
        if messages[-1].get("role") == "tool":
            text, calls = ANSWER, []
        else:
            text, calls = "", [wire.Call("call_sql_1", "data__query_db", {"sql": SQL})]
        usage = wire.usage(40, 12)
        if streaming:
            return wire.stream(text=text, calls=calls, usage_block=usage)
        return wire.completion_reply(text or None, calls, usage)


def stop_group(process: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a process we started in its own session, then anything left in its group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    # Kernels and the servers they started are in the same process group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def only_local(blocked: list[str] | None = None) -> Callable[[Any], None]:
    """A Playwright route handler: nothing leaves the machine (CI may have no network, and
    must not need it); refused URLs are appended to `blocked`."""

    def route(route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("file", "data", "blob", "about") or parts.hostname in (
            "127.0.0.1",
            "localhost",
        ):
            route.continue_()
        else:
            if blocked is not None:
                blocked.append(url)
            route.abort()

    return route


def new_context(chromium: Any, viewport: dict[str, int], blocked: list[str] | None = None) -> Any:
    """A fresh browser context in the shared Chromium: hermetic, with the UI timeout."""
    context = chromium.new_context(viewport=viewport)
    context.set_default_timeout(UI_TIMEOUT_MS)
    context.route("**/*", only_local(blocked))
    return context


def python_notebook(cells: list[Any]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = dict(PYTHON_KERNELSPEC)
    return notebook


@dataclass
class JupyterServer:
    url: str
    root: Path  # the server's root directory; each module uses a directory of its own
    process: subprocess.Popen
    log: Path
    env: dict[str, str]  # the server's environment, which its kernels inherit
    xdg: Path  # the kernels' XDG_CONFIG_HOME (mcp_magic's OAuth token file lives there)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def lab_url(self, path: str) -> str:
        """JupyterLab 4 with `path` open, in a reset workspace."""
        return f"{self.url}/lab/tree/{quote(path)}?reset&token={TOKEN}"

    def notebook_url(self, path: str) -> str:
        """Notebook 7 (a `jupyter notebook` server) with `path` open."""
        return f"{self.url}/notebooks/{quote(path)}?token={TOKEN}"

    def shutdown_kernels(self, under: str) -> None:
        """Shut down the kernel of every session whose notebook is `under` (a path below
        the root, or a directory there): the tests of other modules keep theirs."""
        prefix = under.rstrip("/")
        for session in self.api("GET", "/api/sessions") or []:
            path = session.get("path", "")
            if path == prefix or path.startswith(prefix + "/"):
                with contextlib.suppress(urllib.error.URLError):
                    self.api("DELETE", f"/api/sessions/{session['id']}")

    def wait_until_up(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited:\n{self.log.read_text()[-3000:]}")
            try:
                self.api("GET", "/api/status")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                if time.monotonic() > deadline:
                    tail = self.log.read_text()[-3000:]
                    raise RuntimeError(f"jupyter lab not answering:\n{tail}") from error
                time.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            for session in self.api("GET", "/api/sessions") or []:
                self.api("DELETE", f"/api/sessions/{session['id']}")
        with contextlib.suppress(Exception):
            self.api("POST", "/api/shutdown")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)
        stop_group(self.process)


def start_jupyter(base: Path, port: int, model_url: str, app: str = "lab") -> JupyterServer:
    """Start `jupyter lab` (JupyterLab 4) or `jupyter notebook` (Notebook 7) in `base`, the
    kernels' models answered at `model_url`; do not wait for it to answer."""
    root = base / "root"
    root.mkdir()
    dirs = {
        name: base / name for name in ("config", "data", "runtime", "ipython", "workspaces", "xdg")
    }
    for directory in dirs.values():
        directory.mkdir()
    settings = dirs["config"] / "lab" / "user-settings"
    settings.mkdir(parents=True)
    for name, value in (LAB_SETTINGS if app == "lab" else {}).items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTERHUB_", "BINDER_", "MCP_MAGIC_ASK"))
    }
    for name in ("MPLBACKEND", "JUPYTER_PATH", "MCP_MAGIC_MODEL"):
        env.pop(name, None)  # JUPYTER_PATH: sys.prefix/share/jupyter (kernelspec, extensions)
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "IPYTHONDIR": str(dirs["ipython"]),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
            "PYTHONUNBUFFERED": "1",
            # The providers the tutorials name all go to the local model (as in test.sh).
            "OPENROUTER_BASE_URL": model_url,
            "OPENROUTER_API_KEY": API_KEY,
            "OPENAI_BASE_URL": model_url,
            "OPENAI_API_KEY": API_KEY,
            # The kernels keep OAuth tokens here, in no keyring, and open no browser of
            # their own: the test's Chromium is the user's browser.
            "XDG_CONFIG_HOME": str(dirs["xdg"]),
            "MCP_MAGIC_NO_BROWSER": "1",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        }
    )
    app_class = "LabApp" if app == "lab" else "JupyterNotebookApp"
    log = base / f"jupyter-{app}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                app,
                "--no-browser",
                f"--port={port}",
                "--ip=127.0.0.1",
                f"--ServerApp.token={TOKEN}",
                f"--ServerApp.root_dir={root}",
                "--ServerApp.port_retries=0",
                f"--{app_class}.user_settings_dir={settings}",
                f"--{app_class}.workspaces_dir={dirs['workspaces']}",
                f"--{app_class}.expose_app_in_browser=True",
                "--allow-root",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=env,
            start_new_session=True,  # one process group: the server, its kernels, their children
        )
    return JupyterServer(f"http://127.0.0.1:{port}", root, process, log, env, dirs["xdg"])
