"""One JupyterLab server and one Chromium for every browser test, started together once
and stopped after the last of them (package scope); the tutorial model the kernels talk
to starts alongside. See `labserver.py`."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .labserver import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NOTEBOOK_MODEL,
    ROOT,
    JupyterServer,
    ScriptedModel,
    start_jupyter,
    stop_group,
)
from conftest import free_port, wait_for_port


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless; tests open contexts in it (`labserver.new_context`)."""
    # A missing browser is a failed install step, not a reason to skip: say so and fail.
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/setup.sh --test installs it"
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="package")
def jupyter(request, tmp_path_factory) -> Iterator[JupyterServer]:
    """The JupyterLab server, its kernels' model endpoint (the tutorial model) running."""
    base = tmp_path_factory.mktemp("jupyter")
    with contextlib.ExitStack() as stack:
        model: subprocess.Popen | None = None
        if NOTEBOOK_MODEL.exists():
            model_port = free_port()
            model_log = stack.enter_context((base / "notebook_model.log").open("wb"))
            model = subprocess.Popen(
                [sys.executable, str(NOTEBOOK_MODEL), "--port", str(model_port)],
                stdout=model_log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
            stack.callback(stop_group, model)
            model_url = f"http://127.0.0.1:{model_port}/api/v1"
        else:  # the tutorials' agent cells still get answers, by the conversation
            model_url = stack.enter_context(ScriptedModel()).url + "/api/v1"
        server = start_jupyter(base, free_port(), model_url)
        stack.callback(server.stop)
        # Chromium starts while the server and the model do (every user of one uses both).
        request.getfixturevalue("chromium")
        if model is not None:
            wait_for_port(model_port, model, timeout=60)
        server.wait_until_up()
        yield server
