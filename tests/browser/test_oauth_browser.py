"""A real OAuth round trip in JupyterLab 4 + Debian's Chromium (Playwright, executable_path).

On 127.0.0.1: the MCP server of tests/test_auth.py, protected by the SDK's server-side
OAuth (its authorization server consents by itself, registers clients dynamically and
issues access tokens that live a few seconds, with refresh tokens). In JupyterLab:

- `%mcp connect work URL` shows the "Authorize this server" link in the cell;
- the test clicks it: the authorization page opens in a new tab, redirects to the
  kernel's loopback listener, and the connect finishes in the cell;
- a tool call works; after the access token expired, another works with no new consent
  (the server saw one code exchange and at least one refresh);
- neither the saved notebook nor the page holds a token, the client secret or the code.

JupyterLab is started the way tests/browser/test_apps_views.py does (own config, data,
runtime and settings directories; the venv's extensions through sys.prefix).
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import nbformat
import pytest
from test_auth import _start_protected

from conftest import free_port

CHROMIUM = Path(os.environ.get("MCP_MAGIC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TOKEN = "oauth-test-" + os.urandom(8).hex()
NOTEBOOK = "oauth.ipynb"
UI_TIMEOUT_MS = 60_000
LIFETIME = 4  # seconds an access token lives


def stop_group(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _only_local(route: Any) -> None:
    parts = urlsplit(route.request.url)
    if parts.scheme in ("file", "data", "blob", "about") or parts.hostname in (
            "127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort()


@pytest.fixture(scope="module")
def protected(tmp_path_factory) -> Iterator[tuple[str, subprocess.Popen]]:
    process, url = _start_protected(tmp_path_factory.mktemp("protected"), lifetime=LIFETIME)
    yield url, process
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """JupyterLab's URL for the notebook, its root and the kernel's config directory."""
    base = tmp_path_factory.mktemp("oauth-lab")
    root = base / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    nbformat.write(notebook, root / NOTEBOOK)
    dirs = {name: base / name for name in ("config", "data", "runtime", "ipython", "workspaces",
                                           "xdg")}
    for directory in dirs.values():
        directory.mkdir()
    settings = dirs["config"] / "lab" / "user-settings"
    for name, value in {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "checkForUpdates": False, "fetchNews": "false"},
    }.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(value), encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTERHUB_", "BINDER_", "MCP_MAGIC_ASK"))}
    env.pop("JUPYTER_PATH", None)
    env.update({
        "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "IPYTHONDIR": str(dirs["ipython"]),
        "JUPYTER_PLATFORM_DIRS": "1", "PYTHONUNBUFFERED": "1",
        # The kernel keeps its tokens here, and opens no browser of its own: the test's
        # Chromium is the user's browser.
        "XDG_CONFIG_HOME": str(dirs["xdg"]), "MCP_MAGIC_NO_BROWSER": "1",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
    })
    port = free_port()
    log = base / "jupyterlab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
             "--ip=127.0.0.1", f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}",
             "--ServerApp.port_retries=0", f"--LabApp.user_settings_dir={settings}",
             f"--LabApp.workspaces_dir={dirs['workspaces']}",
             "--LabApp.expose_app_in_browser=True", "--allow-root"],
            stdout=out, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5).read()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    tail = log.read_text()[-3000:]
                    raise RuntimeError(f"jupyter lab not answering:\n{tail}") from None
                time.sleep(0.2)
        yield f"{url}/lab/tree/{NOTEBOOK}?reset&token={TOKEN}", root, dirs["xdg"]
    finally:
        with contextlib.suppress(Exception):
            request = urllib.request.Request(f"{url}/api/shutdown?token={TOKEN}", method="POST")
            urllib.request.urlopen(request, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        stop_group(process)


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Iterator[Any]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/setup.sh --test installs it"
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1300, "height": 1200},
        )
        browser.set_default_timeout(UI_TIMEOUT_MS)
        browser.route("**/*", _only_local)
        try:
            yield browser
        finally:
            browser.close()


READY = """name => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    if (!panel || !panel.context || panel.context.path !== name || !panel.context.isReady) {
        return false;
    }
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""
IDLE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return !!kernel && kernel.status === 'idle'
        && panel.content.activeCell.model.executionCount !== null;
}"""


def run_cell(page: Any, source: str, wait: bool = True) -> Any:
    """Type `source` into the last cell and run it; the cell's output area."""
    page.evaluate(
        """source => {
            const notebook = window.jupyterapp.shell.currentWidget.content;
            notebook.activeCellIndex = notebook.widgets.length - 1;
            notebook.activeCell.model.sharedModel.setSource(source);
        }""",
        source,
    )
    index = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex")
    # Not awaited: the command's promise settles when the cell has run, and a connect
    # runs until the consent given below.
    page.evaluate("() => { window.jupyterapp.commands.execute("
                  "'notebook:run-cell-and-insert-below'); return null; }")
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    if wait:
        page.wait_for_function(
            """index => {
                const panel = window.jupyterapp.shell.currentWidget;
                const kernel = panel.sessionContext.session.kernel;
                return kernel.status === 'idle'
                    && panel.content.widgets[index].model.executionCount !== null;
            }""", arg=index, polling=250, timeout=120_000)
    return cell.locator(".jp-OutputArea")


def test_connect_authorizes_in_the_browser_refreshes_and_saves_no_secret(
    protected, lab, context
) -> None:
    server_url, server = protected
    lab_url, root, xdg = lab
    page = context.new_page()
    page.goto(lab_url)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands")
    page.wait_for_function(READY, arg=NOTEBOOK, polling=250)
    run_cell(page, "%load_ext mcp_magic")

    # The connect waits for consent: the link shows in its cell.
    output = run_cell(page, f"%mcp connect work {server_url}", wait=False)
    link = output.get_by_role("link", name="Authorize this server")
    link.wait_for()
    href = link.get_attribute("href") or ""
    assert href.startswith(server_url.removesuffix("/mcp")) and "code_challenge=" in href
    with context.expect_page() as opened:
        link.click()
    consent = opened.value
    consent.wait_for_load_state()
    # The authorization server consented and sent the tab to the kernel's listener.
    consent.get_by_text("Authorized. You can close this tab").wait_for()
    redirected = urlsplit(consent.url)
    assert redirected.hostname == "127.0.0.1" and redirected.path == "/callback"
    code = parse_qs(redirected.query)["code"][0]
    consent.close()
    output.filter(has_text="Connected 'work'").wait_for(timeout=120_000)
    page.wait_for_function(IDLE, polling=250, timeout=120_000)

    assert "42" in run_cell(page, "%mcp call work.secret_number").inner_text()
    # The access token expires; the next call refreshes it without asking anyone.
    time.sleep(LIFETIME + 1.5)
    second = run_cell(page, "%mcp call work.secret_number")
    assert "42" in second.inner_text()
    assert second.get_by_role("link", name="Authorize this server").count() == 0
    assert "refreshable" in run_cell(page, "%mcp auth").inner_text()

    # The tokens and registration are in the kernel's 0600 file, not in the notebook.
    stored = json.loads((xdg / "mcp_magic" / "oauth.json").read_text())[server_url]
    secrets = [stored["tokens"]["access_token"], stored["tokens"]["refresh_token"], code]
    if stored.get("client", {}).get("client_secret"):
        secrets.append(stored["client"]["client_secret"])
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save').then(() => null)")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", polling=250)
    saved = (root / NOTEBOOK).read_text()
    assert "Connected 'work'" in saved and "Authorize this server" in saved
    shown = page.locator(".jp-Notebook").inner_text()
    for secret in secrets:
        assert secret not in saved
        assert secret not in shown
    page.close()

    server.kill()
    log = server.communicate()[0]
    assert log.count("issued by code") == 1, log
    assert "issued by refresh" in log, log
