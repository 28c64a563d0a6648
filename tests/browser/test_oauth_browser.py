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

JupyterLab is the package's server (tests/browser/conftest.py): its kernels keep their
tokens in a config directory of their own (`XDG_CONFIG_HOME`), in no keyring, and open
no browser themselves. The notebook is in a directory of its own; its kernel is shut
down after the test, and the test has a browser context of its own.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import nbformat
import pytest
from test_auth import _start_protected

from .labserver import READY, JupyterServer, new_context, python_notebook

NOTEBOOK = "oauth/oauth.ipynb"
LIFETIME = 4  # seconds an access token lives


@pytest.fixture(scope="module")
def protected(tmp_path_factory) -> Iterator[tuple[str, subprocess.Popen]]:
    process, url = _start_protected(tmp_path_factory.mktemp("protected"), lifetime=LIFETIME)
    yield url, process
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def lab(jupyter: JupyterServer) -> Iterator[tuple[str, Path, Path]]:
    """JupyterLab's URL for the notebook, the server's root and the kernel's config dir."""
    path = jupyter.root / NOTEBOOK
    path.parent.mkdir()
    nbformat.write(python_notebook([nbformat.v4.new_code_cell("")]), path)
    yield jupyter.lab_url(NOTEBOOK), jupyter.root, jupyter.xdg
    jupyter.shutdown_kernels(NOTEBOOK)


@pytest.fixture(scope="module")
def context(chromium: Any) -> Iterator[Any]:
    browser = new_context(chromium, {"width": 1300, "height": 1200})
    try:
        yield browser
    finally:
        browser.close()


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
