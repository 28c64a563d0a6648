"""The tutorials in a real browser: JupyterLab + Debian's Chromium driven by Playwright.

The package's JupyterLab server (tests/browser/conftest.py, labserver.py) serves a copy
of `notebooks/` plus two generated notebooks in a directory of their own: one whose
`%%agent` cell is answered by a scripted OpenAI-compatible endpoint in this process, one
code-mode block. The tutorials' own agent cells go to `tests/fakes/notebook_model.py`,
which the server's kernels are pointed at.

For each notebook: open it, clear outputs, run all, wait for the kernel to finish, then
assert that tool calls show as ipywidgets Accordions that expand on a click to show
their arguments and result, that a DataFrame renders as a table, that no cell failed and
that the page had no JavaScript error; its kernel is shut down after it. Executed
notebooks are saved, exported with `jupyter nbconvert --to html`, and the export is
checked in the same browser for the static `<details>` fallback. Screenshots go to
`test-artifacts/screenshots/`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .labserver import (
    MODEL,
    NOTEBOOK_MODEL,
    ROOT,
    UI_TIMEOUT_MS,
    WIDGETS_PLUGIN,
    JupyterServer,
    ScriptedModel,
    new_context,
    python_notebook,
)

NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
GENERATED = "browser-check/agent_check.ipynb"  # written by this test, beside the tutorials
GENERATED_CODE = "browser-check/code_check.ipynb"  # one code-mode block, no approval asked
RUN_TIMEOUT_MS = 120_000  # one notebook, run all (builtin server start-up included)
EXPORTS: dict[str, Export] = {}  # HTML exports of notebooks saved after a run in the lab


# ---------------------------------------------------------------------------
# which notebooks, and what each should show


def tutorials() -> list[str]:
    """Paths under the server's root: the tutorials sit in `notebooks/` there too."""
    return sorted(f"notebooks/{path.name}" for path in NOTEBOOKS.glob("*.ipynb"))


def short(name: str) -> str:
    return Path(name).stem


def notebook_source(path: Path) -> str:
    notebook = nbformat.read(path, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def has_agent_cells(path: Path) -> bool:
    """Whether a notebook runs the agent (so tool-call widgets must appear)."""
    return re.search(r"^\s*%%?agent\b", notebook_source(path), re.MULTILINE) is not None


@dataclass
class Export:
    """`jupyter nbconvert --to html` of a saved notebook, running in the background (while
    the next notebook runs in the browser); `wait` gives the HTML file."""

    name: str
    target: Path
    process: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, lab: JupyterServer, name: str, source: Path, target: Path) -> Export:
        target.mkdir(parents=True, exist_ok=True)
        log = target / "nbconvert.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html"]
                + ["--output-dir", str(target), str(source)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=lab.env,
            )
        return cls(name, target, process, log)

    def wait(self, timeout: float = 120) -> Path:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            self.stop()
        assert code == 0, f"nbconvert failed ({code}):\n{self.log.read_text()[-3000:]}"
        return self.target / (short(self.name) + ".html")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def generated_notebook(base_url: str) -> nbformat.NotebookNode:
    """A small notebook with one `%%agent` call, answered by the scripted endpoint."""
    cells = [
        nbformat.v4.new_markdown_cell("Browser check: one `%%agent` run with a tool call."),
        nbformat.v4.new_code_cell("%load_ext mcp_magic"),
        nbformat.v4.new_code_cell("%mcp connect data --builtin"),
        nbformat.v4.new_code_cell(
            f"%%agent {MODEL} --new --base-url {base_url}\nWhich region had the most revenue?"
        ),
        nbformat.v4.new_code_cell("result_1"),
        nbformat.v4.new_code_cell("%mcp disconnect --all"),
    ]
    return python_notebook(cells)


def generated_code_notebook() -> nbformat.NotebookNode:
    """One `%%agent --code` run answered by the tutorial model (its code-mode rules)."""
    cells = [
        nbformat.v4.new_markdown_cell("Browser check: one code-mode block."),
        nbformat.v4.new_code_cell(
            "from pathlib import Path\nimport pandas as pd\nimport mcp_magic\n%load_ext mcp_magic"
        ),
        nbformat.v4.new_code_cell(
            'FILES = Path(mcp_magic.__file__).parent / "data" / "files"\n'
            "%mcp connect data --builtin --root $FILES"
        ),
        nbformat.v4.new_code_cell(
            f"%%agent {MODEL} --code --approve never --new\n"
            "Compare 2025 revenue with the targets, per region and quarter."
        ),
        nbformat.v4.new_code_cell("by_region"),
        nbformat.v4.new_code_cell("%mcp disconnect --all"),
    ]
    return python_notebook(cells)


@pytest.fixture(scope="module")
def scripted_model() -> Iterator[ScriptedModel]:
    with ScriptedModel() as server:
        yield server


@pytest.fixture(scope="module")
def lab(jupyter: JupyterServer, scripted_model: ScriptedModel) -> Iterator[JupyterServer]:
    """The package's server, with the tutorials and the generated notebooks in its root."""
    root = jupyter.root
    # The tutorials' own directory holds nothing else, so what `list_files` shows in them
    # is what a user sees; the generated notebooks get a directory of their own.
    shutil.copytree(
        NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints")
    )
    (root / GENERATED).parent.mkdir(parents=True)
    nbformat.write(generated_notebook(scripted_model.url + "/api/v1"), root / GENERATED)
    nbformat.write(generated_code_notebook(), root / GENERATED_CODE)
    yield jupyter
    for export in EXPORTS.values():  # not waited for (their tests deselected, or failed)
        export.stop()
    EXPORTS.clear()
    for directory in ("notebooks", str(Path(GENERATED).parent)):
        with contextlib.suppress(OSError):
            jupyter.shutdown_kernels(directory)


# ---------------------------------------------------------------------------
# the browser


BLOCKED: list[str] = []


@pytest.fixture(scope="module")
def browser(chromium: Any) -> Iterator[Any]:
    """This module's browser context in the package's Chromium."""
    context = new_context(chromium, {"width": 1400, "height": 1000}, BLOCKED)
    try:
        yield context
    finally:
        context.close()





@dataclass
class PageErrors:
    errors: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def attach(self, page: Any, benign: tuple[re.Pattern[str], ...] = ()) -> None:
        def on_console(message: Any) -> None:
            if message.type != "error":
                return
            text = f"console.error: {message.text} ({message.location.get('url', '')})"
            if any(pattern.search(message.text) for pattern in benign):
                self.ignored.append(text)
            else:
                self.errors.append(text)

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))


# Console errors that are not failures, each with its reason.
LAB_BENIGN: tuple[re.Pattern[str], ...] = ()
HTML_BENIGN = (
    # The export links require.js, MathJax and the widget manager from CDNs; the route
    # above blocks every non-local request, and Chromium logs each refusal.
    re.compile(r"Failed to load resource: net::ERR_FAILED"),
)


@pytest.fixture
def page(browser) -> Iterator[Any]:
    page = browser.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    yield page
    with contextlib.suppress(Exception):
        page.close()


def report(name: str, errors: PageErrors) -> None:
    """What was let through or blocked (shown by pytest when a test fails, or with -s)."""
    for line in errors.ignored:
        print(f"{name}: ignored {line}")
    for url in BLOCKED:
        print(f"{name}: blocked request to {url}")
    BLOCKED.clear()


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


# ---------------------------------------------------------------------------
# JupyterLab steps

# Where "run all" is, read from the notebook's model: "stdin" while a cell waits for an
# answer, "done" once every non-empty code cell has an execution count (or a cell failed
# that is not tagged `raises-exception`, which stops "run all"), else false. Nothing may
# be queued or running ([*]) and the kernel must be idle.
RUN_STATE = """name => {
    const panel = window.jupyterapp.shell.currentWidget;
    if (!panel || !panel.context || panel.context.path !== name) return false;
    if (panel.node.querySelector('.jp-Stdin-input')) return 'stdin';
    if (panel.node.querySelector('.mcp-magic-question button:not([disabled])')) return 'ask';
    const indicator = panel.node.querySelector('.jp-Notebook-ExecutionIndicator');
    if (!indicator || indicator.getAttribute('data-status') !== 'idle') return false;
    let pending = false;
    let stopped = false;
    for (const cell of panel.content.widgets) {
        if (cell.model.type !== 'code' || !cell.model.sharedModel.getSource().trim()) continue;
        const prompt = cell.node.querySelector('.jp-InputPrompt');
        if (prompt && prompt.textContent.includes('*')) return false;
        if (cell.model.executionCount === null) pending = true;
        const tags = cell.model.getMetadata('tags') || [];
        const outputs = cell.model.outputs.toJSON();
        if (!tags.includes('raises-exception') && outputs.some(o => o.output_type === 'error')) {
            stopped = true;
        }
    }
    return pending && !stopped ? false : 'done';
}"""

# Every code cell that raised: its index, tags, first line, and the error.
CELL_ERRORS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const found = [];
    panel.content.widgets.forEach((cell, index) => {
        if (cell.model.type !== 'code') return;
        for (const output of cell.model.outputs.toJSON()) {
            if (output.output_type !== 'error') continue;
            found.push({
                index,
                tags: cell.model.getMetadata('tags') || [],
                source: cell.model.sharedModel.getSource(),
                error: `${output.ename}: ${output.evalue}`,
            });
        }
    });
    return found;
}"""
STDIN_ANSWER = "n"  # approval prompts (`--approve writes`): deny, as the tutorials expect


def run_command(page: Any, command: str, wait: bool = True) -> None:
    """Execute a JupyterLab command; `wait=False` does not wait for the promise it returns
    (run-all's resolves only when every cell has run, and a cell may be waiting for input).
    A command that fails is logged as a console error, so the test sees it."""
    page.evaluate(
        """([command, wait]) => {
            const done = window.jupyterapp.commands.execute(command)
                .catch(error => console.error(`command ${command} failed: ${error}`));
            return wait ? done.then(() => null) : null;
        }""",
        [command, wait],
    )


# The notebook can run: its document is loaded and every cell rendered, its kernel
# session is ready with a Python kernel whose websocket is connected and idle (as the
# toolbar's indicator also says), and the run-all command is enabled for it. An idle
# indicator alone is not enough: it shows before the kernel's connection is up, and a
# run-all sent then is lost (the notebook stays unrun until the timeout).
READY_STATE = """name => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    if (!panel || !panel.context || panel.context.path !== name) return false;
    if (!panel.context.isReady || !panel.content || !panel.content.model) return false;
    const cells = panel.content.model.cells.length;
    if (!cells || panel.content.widgets.length !== cells) return false;
    if (panel.node.querySelectorAll('.jp-Cell').length !== cells) return false;
    const session = panel.sessionContext;
    const kernel = session && session.session && session.session.kernel;
    if (!session.isReady || session.isRestarting || !kernel) return false;
    if (kernel.connectionStatus !== 'connected' || kernel.status !== 'idle') return false;
    if (!/python/i.test(session.kernelDisplayName || kernel.name)) return false;
    const indicator = panel.node.querySelector('.jp-Notebook-ExecutionIndicator');
    if (!indicator || indicator.getAttribute('data-status') !== 'idle') return false;
    return app.commands.isEnabled('notebook:run-all-cells');
}"""

# Run-all has begun: the kernel is busy, or a code cell is queued, running or has run.
RUN_STARTED = """name => {
    const panel = window.jupyterapp.shell.currentWidget;
    if (!panel || !panel.context || panel.context.path !== name) return false;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (kernel && kernel.status === 'busy') return true;
    return panel.content.widgets.some(cell => cell.model.type === 'code' && (
        cell.model.executionCount !== null
        || (cell.node.querySelector('.jp-InputPrompt')?.textContent || '').includes('*')));
}"""


def open_notebook(page: Any, lab: JupyterServer, name: str) -> Any:
    """Open `/lab/tree/NAME` in a reset workspace; wait until it can run (READY_STATE)."""
    page.goto(lab.lab_url(name))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands")
    # The ipywidgets extension comes from sys.prefix/share/jupyter/labextensions.
    page.wait_for_function(f"() => window.jupyterapp.isPluginActivated('{WIDGETS_PLUGIN}')")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Cell").first.wait_for()
    # Commands act on the current widget: it must be this notebook.
    page.wait_for_function(
        "name => window.jupyterapp.shell.currentWidget?.context?.path === name", arg=name
    )
    state = page.wait_for_function(READY_STATE, arg=name, polling=250)
    assert state.json_value() is True
    return panel


def run_all(page: Any, panel: Any, name: str) -> None:
    run_command(page, "notebook:clear-all-cell-outputs")
    page.wait_for_function(
        """() => !document.querySelector(
            '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output')"""
    )
    page.wait_for_function(READY_STATE, arg=name, polling=250)  # clearing kept it ready
    run_command(page, "notebook:run-all-cells", wait=False)
    page.wait_for_function(RUN_STARTED, arg=name, polling=100)
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while True:
        left = max(1000, (deadline - time.monotonic()) * 1000)
        state = page.wait_for_function(RUN_STATE, arg=name, timeout=left, polling=250)
        if state.json_value() == "done":
            return
        if state.json_value() == "ask":  # approval buttons: deny, as the tutorials expect
            question = panel.locator(".mcp-magic-question").filter(
                has=page.locator("button:not([disabled])")).first
            print(f"{name}: denied: {question.inner_text()[:400].strip()!r}")
            question.get_by_role("button", name=re.compile("^(Deny|Decline)$")).click()
            question.locator("button:not([disabled])").first.wait_for(state="detached")
            continue
        # A cell asks at an input prompt: answer it as a user would, in the input box.
        box = panel.locator("input.jp-Stdin-input").first
        area = box.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea ')][1]")
        print(f"{name}: answered {STDIN_ANSWER!r} to: {area.inner_text()[-400:].strip()!r}")
        box.fill(STDIN_ANSWER)
        box.press("Enter")
        box.wait_for(state="detached")


def cell_errors(page: Any) -> list[str]:
    """Errors that mean the notebook is broken here.

    Cells tagged `raises-exception` may fail (a refused write, a provider without a key),
    except `%%agent` cells: the tag is there for readers with no key, and this run has a
    model endpoint, so an agent cell that raises is a failure.
    """
    failed = []
    for cell in page.evaluate(CELL_ERRORS):
        agent = re.match(r"\s*%%?agent\b", cell["source"]) is not None
        if agent or "raises-exception" not in cell["tags"]:
            first = cell["source"].strip().splitlines()[0] if cell["source"].strip() else ""
            failed.append(f"cell {cell['index']} ({first}): {cell['error']}")
    return failed


# How tall the window must be to show every cell: the notebook scrolls inside its panel
# (and has room to scroll past the last cell), so the page itself is never taller.
NOTEBOOK_HEIGHT = """() => {
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    const outer = panel.querySelector('.jp-WindowedPanel-outer');
    const cells = panel.querySelectorAll('.jp-Cell');
    const last = cells[cells.length - 1].getBoundingClientRect();
    const top = outer.getBoundingClientRect().top;
    const below = window.innerHeight - outer.getBoundingClientRect().bottom;
    return top + (last.bottom - top + outer.scrollTop) + below + 40;
}"""


def full_screenshot(page: Any, path: Path) -> None:
    """Grow the window to the notebook's height, scroll to the top, take the picture."""
    size = page.viewport_size
    height = int(min(max(page.evaluate(NOTEBOOK_HEIGHT), size["height"]), 12000))
    page.set_viewport_size({"width": size["width"], "height": height})
    page.evaluate(
        """() => document.querySelector(
            '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer').scrollTo(0, 0)"""
    )
    page.wait_for_function(
        """() => document.querySelector(
            '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer').scrollTop === 0"""
    )
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


# ---------------------------------------------------------------------------
# the tests


NOTEBOOK_PARAMS = [pytest.param(name, id=short(name)) for name in tutorials()]
NOTEBOOK_PARAMS.append(pytest.param(GENERATED, id="generated-agent"))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", NOTEBOOK_PARAMS)
def test_notebook_runs_in_jupyterlab(lab, page, name, tmp_path):
    from playwright.sync_api import expect

    errors = PageErrors()
    errors.attach(page, LAB_BENIGN)
    agent = has_agent_cells(lab.root / name)
    panel = open_notebook(page, lab, name)
    try:
        run_all(page, panel, name)
        failed = cell_errors(page)
        assert not failed, f"{name}: cells failed:\n" + "\n".join(failed)

        # A DataFrame rendered as an HTML table in a cell's output.
        frames = panel.locator(".jp-RenderedHTMLCommon table.dataframe")
        expect(frames.first).to_be_visible()

        if agent:
            check_tool_call_widget(panel, expect)
        # Every widget view found its model: none is left loading or failed to show.
        broken = panel.get_by_text(re.compile("Error displaying widget|Loading widget"))
        expect(broken).to_have_count(0)

        run_command(page, "docmanager:save")
        page.wait_for_function(
            """() => {
                const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
                return panel && !panel.querySelector('.jp-mod-dirty')
                    && !document.querySelector('.lm-TabBar-tab.jp-mod-dirty');
            }"""
        )
        if name in STATIC_NAMES:  # exported while the next notebook runs
            EXPORTS[name] = Export.start(lab, name, lab.root / name, tmp_path / "export")
        full_screenshot(page, screenshot_path(short(name)))
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(screenshot_path(short(name) + ".failed")))
        raise
    finally:
        page.close()  # first, so a kernel going away cannot add to the errors
        with contextlib.suppress(OSError):  # not to hide the failure; the group dies later
            lab.shutdown_kernels(name)
    report(name, errors)
    assert not errors.errors, f"{name}: JavaScript errors:\n" + "\n".join(errors.errors)


def check_tool_call_widget(panel: Any, expect: Any) -> None:
    """An Accordion per tool call, collapsed; a click shows the arguments and result."""
    accordions = panel.locator(".widget-accordion")
    expect(accordions.first).to_be_visible()
    query = panel.locator(".widget-accordion", has_text=re.compile(r"query_db — ok"))
    accordion = query.first if query.count() else accordions.first
    header = accordion.locator(".jupyter-widget-Collapse-header").first
    contents = accordion.locator(".jupyter-widget-Collapse-contents").first
    expect(header).to_contain_text(re.compile(r"— (ok|error|denied)"))
    expect(contents).to_have_class(re.compile(r"\blm-mod-hidden\b"))
    expect(contents).to_be_hidden()

    header.click()
    expect(contents).not_to_have_class(re.compile(r"\blm-mod-hidden\b"))
    expect(contents).to_be_visible()
    expect(contents.locator(".mcp-magic-arguments")).to_contain_text("Arguments")
    expect(contents.locator(".mcp-magic-result")).to_be_visible()
    if query.count():
        expect(contents.locator(".mcp-magic-arguments")).to_contain_text("sql")
        table = contents.locator(".mcp-magic-result table")
        expect(table).to_be_visible()
        assert table.locator("tbody tr").count() >= 1

    # The static fallback in the same output stays out of sight while the widget shows.
    output = panel.locator(".jp-OutputArea-output", has=accordion)
    assert output.locator("details.mcp-magic-tool").count() == 0


@pytest.mark.timeout(240)
def test_code_block_renders_and_expands(lab, page, tmp_path):
    """A code-mode block: an Accordion, collapsed; a click shows the code, what it printed;
    the variables it made are in the notebook; the saved HTML has a `<details>` block."""
    from playwright.sync_api import expect

    if not NOTEBOOK_MODEL.exists():
        pytest.fail("tests/fakes/notebook_model.py answers the code-mode cell; it is missing")
    errors = PageErrors()
    errors.attach(page, LAB_BENIGN)
    name = GENERATED_CODE
    panel = open_notebook(page, lab, name)
    try:
        run_all(page, panel, name)
        failed = cell_errors(page)
        assert not failed, f"{name}: cells failed:\n" + "\n".join(failed)
        block = panel.locator(".widget-accordion.mcp-magic-code").first
        expect(block).to_be_visible()
        header = block.locator(".jupyter-widget-Collapse-header").first
        contents = block.locator(".jupyter-widget-Collapse-contents").first
        expect(header).to_contain_text(re.compile(r"run_python — ok .*→ .*by_region"))
        expect(contents).to_be_hidden()
        header.click()
        expect(contents).to_be_visible()
        expect(contents.locator(".mcp-magic-code-source")).to_contain_text("data.query_db(")
        expect(contents.locator(".mcp-magic-code-source")).to_contain_text("targets.merge(")
        expect(contents.locator(".mcp-magic-code-output")).to_contain_text("attainment")
        # The table the code made, shown by the next cell from the notebook's namespace.
        expect(panel.locator(".jp-RenderedHTMLCommon table.dataframe").first).to_be_visible()
        output = panel.locator(".jp-OutputArea-output", has=block)
        assert output.locator("details.mcp-magic-code").count() == 0  # the widget shows
        run_command(page, "docmanager:save")
        page.wait_for_function(
            """() => !document.querySelector('.lm-TabBar-tab.jp-mod-dirty')"""
        )
        full_screenshot(page, screenshot_path(short(name)))
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(screenshot_path(short(name) + ".failed")))
        raise
    finally:
        page.close()
        with contextlib.suppress(OSError):
            lab.shutdown_kernels(name)
    report(name, errors)
    assert not errors.errors, f"{name}: JavaScript errors:\n" + "\n".join(errors.errors)

    # The saved notebook's static fallback: a `<details>` with the same code and output.
    saved = nbformat.read(lab.root / name, as_version=4)
    html_outputs = [
        output.get("data", {}).get("text/html", "")
        for cell in saved.cells
        for output in cell.get("outputs", [])
    ]
    block_html = next(h for h in html_outputs if "mcp-magic-code" in h)
    assert block_html.startswith("<details class='mcp-magic-code mcp-magic-ok'")
    assert "data.query_db(" in block_html and "attainment" in block_html


STATIC_PARAMS = [
    pytest.param(name, id=short(name))
    for name in tutorials()
    if has_agent_cells(ROOT / name)
]
STATIC_PARAMS.append(pytest.param(GENERATED, id="generated-agent"))
STATIC_NAMES = {param.values[0] for param in STATIC_PARAMS}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", STATIC_PARAMS)
def test_static_fallback_in_html_export(lab, page, name, tmp_path):
    """The saved notebook, exported to HTML: each tool call is a `<details>` block."""
    export = EXPORTS.pop(name, None)
    if export is None:  # the JupyterLab run did not happen (e.g. -k): execute it here
        source = execute_with_nbclient(lab, name, tmp_path)
        export = Export.start(lab, name, source, tmp_path / "export")
    html_file = export.wait()
    exported = html_file.read_text(encoding="utf-8")
    assert re.search(r"<details class=[\"']mcp-magic-tool", exported), "no <details> block"

    from playwright.sync_api import expect

    errors = PageErrors()
    errors.attach(page, HTML_BENIGN)
    page.goto(html_file.as_uri())
    details = page.locator("details.mcp-magic-tool")
    block = details.filter(has_text="query_db").first if name == GENERATED else details.first
    expect(block).to_be_visible()
    summary = block.locator("summary")
    expect(summary).to_contain_text(re.compile(r"\.\w+ — (ok|error|denied)"))
    arguments = block.locator(".mcp-magic-arguments")
    expect(arguments).to_be_hidden()
    assert block.evaluate("node => node.open") is False

    summary.click()
    assert block.evaluate("node => node.open") is True
    expect(arguments).to_be_visible()
    expect(arguments).to_contain_text("Arguments")
    expect(block.locator(".mcp-magic-result")).to_be_visible()
    if name == GENERATED:
        expect(arguments).to_contain_text("group by region")
        expect(block.locator(".mcp-magic-result table")).to_be_visible()
    block.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_path(short(name) + ".html")), full_page=True)
    page.close()
    report(name + ".html", errors)
    assert not errors.errors, f"{name}.html: JavaScript errors:\n" + "\n".join(errors.errors)


def execute_with_nbclient(lab: JupyterServer, name: str, tmp_path: Path) -> Path:
    """Run a notebook headless, with the lab's environment (model endpoint, dirs)."""
    from nbclient import NotebookClient

    notebook = nbformat.read(lab.root / name, as_version=4)
    # No widget state in the metadata, like a notebook JupyterLab saves by default: with
    # it, nbconvert shows each output's widget view (drawn by a script from unpkg.com)
    # instead of its `text/html` fallback.
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        store_widget_state=False,
        resources={"metadata": {"path": str((lab.root / name).parent)}},
    )
    saved = dict(os.environ)
    os.environ.update(lab.env)
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    path = tmp_path / Path(name).name
    nbformat.write(notebook, path)
    return path
