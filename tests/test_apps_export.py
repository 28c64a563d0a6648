"""A tool's view where no live view can be: a notebook run by nbclient and saved, its
HTML export (nbconvert), and terminal IPython. Each shows the tool's result plus one line
saying the view exists, and the saved notebook does not carry the view's code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
APP_SERVER = ROOT / "tests" / "servers" / "app_server.py"
LINE = "▣ counter.show_counter has a view (ui://counter/view.html)"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def cells() -> list[str]:
    return [
        "%load_ext mcp_magic",
        f"%mcp connect counter -- {sys.executable} {APP_SERVER}",
        "%mcp call counter.show_counter label=taps",
        "%mcp disconnect --all",
    ]


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells()])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env_path) if p)
    try:
        # store_widget_state is nbclient's default: the widget's state is saved too.
        NotebookClient(notebook, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        os.environ["PYTHONPATH"] = env_path
    path = tmp_path_factory.mktemp("apps-export") / "views.ipynb"
    nbformat.write(notebook, path)
    return path


def test_the_saved_call_has_the_line_the_view_and_the_result(executed: Path) -> None:
    notebook = nbformat.read(executed, as_version=4)
    outputs = notebook.cells[2].outputs
    kinds = [(o.output_type, sorted(o.get("data", {}))) for o in outputs]
    assert kinds[0] == ("display_data", ["text/html", "text/plain"])
    assert outputs[0].data["text/plain"].startswith(LINE)
    assert WIDGET_VIEW in outputs[1].data
    assert outputs[2].output_type == "execute_result"
    assert outputs[2].data["text/plain"] == "'taps: counter is 0'" or (
        "taps: counter is 0" in outputs[2].data["text/plain"])


def test_the_saved_widget_state_holds_no_view_code(executed: Path) -> None:
    text = executed.read_text(encoding="utf-8")
    assert len(text) < 60_000, len(text)
    state = json.loads(text)["metadata"]["widgets"]
    assert "Increment</button>" not in json.dumps(state)  # the view's HTML is not saved


@pytest.mark.parametrize("keep_state", [True, False], ids=["with-state", "without-state"])
def test_the_html_export_shows_the_result_and_the_line(executed: Path, keep_state: bool) -> None:
    notebook = nbformat.read(executed, as_version=4)
    if not keep_state:  # as JupyterLab saves by default
        notebook.metadata.pop("widgets", None)
    body, _ = HTMLExporter().from_notebook_node(notebook)
    assert LINE in body
    assert "taps: counter is 0" in body
    assert "Increment</button>" not in body


def test_terminal_ipython_shows_the_line_and_the_value() -> None:
    code = "\n".join([*cells()[:2], "value = %mcp call counter.show_counter label=taps",
                      "print(repr(value))", cells()[3]])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", "-c", code],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith(LINE) for line in lines), done.stdout
    assert "'taps: counter is 0'" in lines
    assert "Traceback" not in done.stdout + done.stderr
