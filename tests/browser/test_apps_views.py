"""MCP Apps views in real JupyterLab 4 and Notebook 7 + Debian's Chromium (Playwright,
executable_path); every test runs in both frontends.

A notebook calls two tools that have views: `show_counter` of the Python SDK server in
tests/servers/app_server.py (a hand-written view with one button per bridge feature) and
`get-time` of the official ext-apps example (`@modelcontextprotocol/server-basic-vanillajs`,
whose view uses the official App SDK). Then, in the page:

- each view renders in a sandboxed iframe and got the tool's input and result;
- a read-only tool called from the view runs through the kernel, and its answer shows;
- a write tool called from the view asks in the cell first, and runs after Allow;
- the view cannot reach `parent.document`; open-link asks first; huge sizes are bounded;
  an unknown tool gives a one-line note; the theme follows a switch to JupyterLab Dark;
- the page had no JavaScript error.

JupyterLab is the package's server (tests/browser/conftest.py), the notebook in a
directory of its own; Notebook 7 is a `jupyter notebook` server of this module's. Each
frontend's kernel is shut down after its tests, and each has a browser context of its own.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from fakes import openai_wire as wire
from fakes.scripted_http import Recorded, Reply, ScriptedServer

from .labserver import (
    READY,
    ROOT,
    UI_TIMEOUT_MS,
    WIDGETS_PLUGIN,
    JupyterServer,
    new_context,
    python_notebook,
    start_jupyter,
)
from conftest import free_port

APP_SERVER = ROOT / "tests" / "servers" / "app_server.py"
CLOCK_SERVER = ROOT / "tests" / "node" / "node_modules" / ".bin" / "mcp-server-basic-vanillajs"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DIRECTORY = "apps"


def answer(recorded: Recorded) -> Reply:
    """The model: calls the counter's view tool once, then answers in text."""
    body = recorded.body if isinstance(recorded.body, dict) else {}
    messages = body.get("messages") or [{}]
    if messages[-1].get("role") == "tool":
        text, calls = "The counter is shown above.", []
    else:
        text, calls = "", [wire.Call("call_1", "counter__show_counter", {"label": "agent"})]
    if body.get("stream"):
        return wire.stream(text=text, calls=calls, usage_block=wire.usage(10, 5))
    return wire.completion_reply(text or None, calls, wire.usage(10, 5))


@pytest.fixture(scope="module")
def model() -> Iterator[str]:
    with ScriptedServer(responder=answer) as server:
        yield server.url + "/api/v1"


def views_notebook(model_url: str) -> nbformat.NotebookNode:
    cells = [
        nbformat.v4.new_code_cell("%load_ext mcp_magic"),
        nbformat.v4.new_code_cell(
            f"%mcp connect counter -- {sys.executable} {APP_SERVER}\n"
        ),
        nbformat.v4.new_code_cell(f"%mcp connect clock -- {CLOCK_SERVER} --stdio"),
        nbformat.v4.new_code_cell("%mcp call counter.show_counter label=taps"),
        nbformat.v4.new_code_cell("%mcp call clock.get-time"),
        nbformat.v4.new_code_cell(
            f"%%agent openai:gpt-4o-mini --base-url {model_url} --new\nShow the counter."
        ),
    ]
    return python_notebook(cells)


# The frontends: JupyterLab 4 and Notebook 7 (the same widget manager and anywidget).
FRONTENDS = ("lab", "notebook")


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory, jupyter: JupyterServer) -> Iterator[JupyterServer]:
    """`jupyter notebook`, started with the module (while the JupyterLab tests run) and
    waited for when its frontend's turn comes; its models are JupyterLab's kernels'."""
    base = tmp_path_factory.mktemp("notebook7")
    server = start_jupyter(base, free_port(), jupyter.env["OPENAI_BASE_URL"], app="notebook")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", params=FRONTENDS)
def frontend(
    request, jupyter: JupyterServer, notebook7: JupyterServer, model: str
) -> Iterator[tuple[str, str]]:
    """(the frontend's URL for its notebook, the notebook's path); its kernel stops after."""
    if request.param == "lab":
        server, path = jupyter, f"{DIRECTORY}/views.ipynb"
    else:
        server, path = notebook7, "views.ipynb"
        server.wait_until_up()
    (server.root / path).parent.mkdir(exist_ok=True)
    nbformat.write(views_notebook(model), server.root / path)
    url = server.lab_url(path) if request.param == "lab" else server.notebook_url(path)
    yield url, path
    server.shutdown_kernels(path)


@pytest.fixture(scope="module")
def page(chromium: Any, frontend: tuple[str, str]) -> Iterator[Any]:
    """A browser context of its own for each frontend (no page of the other one left)."""
    context = new_context(chromium, {"width": 1300, "height": 1600})
    try:
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        yield page
    finally:
        context.close()


RUN_DONE = """name => {
    const panel = window.jupyterapp.shell.currentWidget;
    if (!panel || !panel.context || panel.context.path !== name) return false;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (!kernel || kernel.status !== 'idle') return false;
    return panel.content.widgets.every(cell => cell.model.type !== 'code'
        || cell.model.executionCount !== null);
}"""


def command(page: Any, name: str, args: dict[str, Any] | None = None) -> None:
    page.evaluate(
        """([name, args]) => window.jupyterapp.commands.execute(name, args)
            .then(() => null)
            .catch(error => console.error(`command ${name} failed: ${error}`))""",
        [name, args or {}],
    )


@pytest.fixture(scope="module")
def ran(frontend: tuple[str, str], page: Any) -> dict[str, list[str]]:
    """The notebook, run all in JupyterLab; yields the page's JavaScript errors."""
    problems: dict[str, list[str]] = {"errors": []}

    def on_console(message: Any) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            problems["errors"].append(f"console.error: {message.text} ({where})")

    page.on("console", on_console)
    # Errors thrown inside a view are reported too; their stack names about:srcdoc.
    page.on("pageerror", lambda error: problems["errors"].append(
        f"pageerror: {error} {error.stack or ''}"))
    url, path = frontend
    page.goto(url)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands")
    page.wait_for_function(f"() => window.jupyterapp.isPluginActivated('{WIDGETS_PLUGIN}')")
    page.wait_for_function(READY, arg=path, polling=250)
    command(page, "notebook:run-all-cells")
    page.wait_for_function(RUN_DONE, arg=path, polling=250, timeout=120_000)
    return problems


def view(page: Any, index: int) -> Any:
    return page.frame_locator(".mcp-magic-app iframe").nth(index)


def cell_of(page: Any, index: int) -> Any:
    return page.locator(".mcp-magic-app").nth(index)


def test_the_views_render_with_the_tool_input_and_result(ran: dict, page: Any) -> None:
    counter = view(page, 0)
    assert counter.locator("#out").inner_text(timeout=30_000) != ""
    counter.locator("#result").filter(has_text="taps: counter is 0").wait_for()
    assert '"taps"' in counter.locator("#input").inner_text()
    assert counter.locator("#theme").inner_text() == "light"
    frame = page.locator(".mcp-magic-app iframe").first
    assert frame.get_attribute("sandbox") == "allow-scripts"
    # The text result is still the cell's value, with the line that stays when saved.
    outputs = page.locator(".jp-Cell").nth(3).locator(".jp-OutputArea").inner_text()
    assert "taps: counter is 0" in outputs
    assert "▣ counter.show_counter has a view (ui://counter/view.html)" in outputs
    # The official example's view (the official App SDK) got its result too.
    clock = view(page, 1)
    clock.locator("#server-time").filter(has_text=re.compile(r"\d{4}-\d\d-\d\dT")).wait_for()


def test_a_read_only_tool_from_the_view_runs_through_the_kernel(ran: dict, page: Any) -> None:
    counter = view(page, 0)
    counter.locator("#peek").click()
    counter.locator("#out").filter(has_text="peek: counter is 0").wait_for()
    assert cell_of(page, 0).locator(".mcp-magic-app-ask").count() == 0


def test_a_write_tool_from_the_view_asks_first(ran: dict, page: Any) -> None:
    counter = view(page, 0)
    counter.locator("#increment").click()
    ask = cell_of(page, 0).locator(".mcp-magic-app-ask")
    ask.filter(has_text="counter.increment").wait_for()
    assert "may change data" in ask.inner_text()
    assert counter.locator("#out").inner_text() != "increment: counter is 1"
    ask.get_by_role("button", name="Allow").click()
    counter.locator("#out").filter(has_text="increment: counter is 1").wait_for()
    # Denied: nothing runs, the view is told.
    counter.locator("#increment").click()
    ask.get_by_role("button", name="Deny").click()
    counter.locator("#out").filter(has_text="declined").wait_for()
    counter.locator("#peek").click()
    counter.locator("#out").filter(has_text="peek: counter is 1").wait_for()


def test_the_official_example_calls_its_tool_from_a_button(ran: dict, page: Any) -> None:
    clock = view(page, 1)
    before = clock.locator("#server-time").inner_text()
    clock.locator("#get-time-btn").click()
    ask = cell_of(page, 1).locator(".mcp-magic-app-ask")  # get-time does not say read-only
    ask.filter(has_text="clock.get-time").wait_for()
    ask.get_by_role("button", name="Allow").click()
    clock.locator("#server-time").filter(has_not_text=before).wait_for()


def test_the_view_cannot_reach_the_notebook_page(ran: dict, page: Any) -> None:
    counter = view(page, 0)
    counter.locator("#parent").click()
    counter.locator("#out").filter(has_text="parent: blocked SecurityError").wait_for()


def test_resources_links_sizes_and_unknown_tools(ran: dict, page: Any) -> None:
    counter = view(page, 0)
    counter.locator("#read").click()
    counter.locator("#out").filter(has_text="read: hello from the server").wait_for()
    counter.locator("#open").click()
    ask = cell_of(page, 0).locator(".mcp-magic-app-ask").filter(has_text="example.org")
    ask.get_by_role("button", name="Cancel").click()
    counter.locator("#out").filter(has_text='open: {"isError":true}').wait_for()
    counter.locator("#unknown").click()
    counter.locator("#out").filter(has_text="error:").wait_for()
    note = cell_of(page, 0).locator(".mcp-magic-app-note")
    note.filter(has_text="no_such_tool").wait_for()
    counter.locator("#grow").click()
    note.filter(has_text="100000 px").wait_for()
    height = page.locator(".mcp-magic-app iframe").first.evaluate("f => f.clientHeight")
    assert height <= 1600


def test_a_flood_is_cut_and_the_page_survives(ran: dict, page: Any) -> None:
    counter = view(page, 0)
    counter.locator("#flood").click()
    note = cell_of(page, 0).locator(".mcp-magic-app-note")
    note.filter(has_text="messages in a second").wait_for()
    page.wait_for_timeout(1500)  # the guard's window is one second: a new one has begun
    counter.locator("#peek").click()
    counter.locator("#out").filter(has_text="peek: counter is").wait_for()


def switch_theme(page: Any, theme: str) -> None:
    """Switch and wait until JupyterLab's splash (shown while the theme loads) is gone:
    a switch during another one's splash trips JupyterLab itself."""
    command(page, "apputils:change-theme", {"theme": theme})
    light = "true" if "Light" in theme else "false"
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
    page.wait_for_function("() => !document.querySelector('#jupyterlab-splash')")


def test_the_theme_follows_jupyterlab(ran: dict, page: Any) -> None:
    switch_theme(page, "JupyterLab Dark")
    view(page, 0).locator("#theme").filter(has_text="dark").wait_for()
    # The official example applies the theme with the App SDK's applyDocumentTheme.
    view(page, 1).locator("html[data-theme=dark]").wait_for(state="attached")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "apps-views-dark.png"), full_page=True)
    switch_theme(page, "JupyterLab Light")
    view(page, 0).locator("#theme").filter(has_text="light").wait_for()


def test_an_agent_tool_call_shows_the_view(ran: dict, page: Any) -> None:
    agent = view(page, 2)
    agent.locator("#result").filter(has_text="agent: counter is").wait_for()
    assert '"agent"' in agent.locator("#input").inner_text()
    agent.locator("#peek").click()
    agent.locator("#out").filter(has_text="peek: counter is").wait_for()


# Notebook 7.6 itself throws this while loading its settings, with any notebook (seen
# with a one-cell `1+1` notebook and no views): not a failure of the views.
NOTEBOOK_BENIGN = re.compile(r"reading 'schema'.*static/notebook/notebook_core", re.DOTALL)


def own_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if not NOTEBOOK_BENIGN.search(e)]


def test_no_javascript_errors(ran: dict, page: Any) -> None:
    assert own_errors(ran["errors"]) == []


def test_a_broken_view_and_teardown_leave_the_page_whole(ran: dict, page: Any) -> None:
    counter = view(page, 0)
    counter.locator("#throw").click()  # its message handler throws from now on
    counter.locator("#out").filter(has_text="throwing").wait_for()
    switch_theme(page, "JupyterLab Dark")
    switch_theme(page, "JupyterLab Light")
    # Clearing the outputs tears the views down and removes their frames.
    command(page, "notebook:clear-all-cell-outputs")
    page.wait_for_function("() => !document.querySelector('.mcp-magic-app iframe')")
    own = [e for e in own_errors(ran["errors"]) if "about:srcdoc" not in e]
    assert own == []
