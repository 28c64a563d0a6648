"""Terminal IPython driven through a pseudo-terminal, as a person at a keyboard uses it.

Ctrl-C here is the real thing: the terminal turns it into SIGINT for IPython's
process group (the servers run in their own sessions and do not get it).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pytest

ROOT = Path(__file__).resolve().parent.parent
FAULT_SERVER = Path(__file__).resolve().parent / "servers" / "fault_server.py"
PROMPT = r"In \[\d+\]: "


@pytest.fixture
def ipython(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "dumb"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "IPython", "--simple-prompt", "--no-banner", "--colors=NoColor"],
        env=env,
        cwd=str(tmp_path),
        encoding="utf-8",
        codec_errors="replace",
        timeout=60,
        dimensions=(50, 200),
    )
    child.expect(PROMPT)
    yield child
    if child.isalive():
        child.sendline("exit")
        child.expect(pexpect.EOF, timeout=20)
    child.close(force=True)


def run(child: pexpect.spawn, line: str, timeout: float = 60) -> str:
    """Type a line, wait for the next prompt, return what was printed in between."""
    child.sendline(line)
    child.expect(PROMPT, timeout=timeout)
    return child.before


def wait_for(path: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_ctrl_c_during_a_call_is_one_line_and_the_session_lives_on(ipython, tmp_path):
    events = tmp_path / "events"
    run(ipython, "%load_ext mcp_magic")
    out = run(
        ipython,
        f"%mcp connect f --env FAULT_SERVER_EVENTS={events} -- {sys.executable} {FAULT_SERVER}",
    )
    assert "Connected 'f'" in out, out
    ipython.sendline("%mcp call f.sleep seconds=60")
    wait_for(events, "start sleep")
    ipython.sendintr()
    ipython.expect(PROMPT, timeout=10)
    out = ipython.before
    assert "Interrupted: call to f.sleep cancelled" in out, out
    assert "Traceback" not in out, out
    assert "KeyboardInterrupt" not in out, out
    assert len([line for line in out.splitlines() if line.strip()]) <= 2, out
    # The server heard the cancellation, and the same session answers the next call.
    wait_for(events, "cancelled sleep")
    assert "still here" in run(ipython, "%mcp call f.echo text='still here'")
    assert "connected" in run(ipython, "%mcp list")
    out = run(ipython, "%mcp disconnect --all")
    assert "Disconnected f" in out, out
