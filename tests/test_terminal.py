"""Terminal IPython driven through a pseudo-terminal, as a person at a keyboard uses it.

Ctrl-C here is the real thing: the terminal turns it into SIGINT for IPython's
process group (the servers run in their own sessions and do not get it). Both the
full prompt_toolkit prompt and `--simple-prompt` are driven.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import time
from pathlib import Path

import pexpect
import pytest

ROOT = Path(__file__).resolve().parent.parent
FAULT_SERVER = Path(__file__).resolve().parent / "servers" / "fault_server.py"
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """IPython in a pty. Each line typed is followed by a marker cell, so the output of
    the line is what came before the marker, however the prompt redraws itself."""

    def __init__(self, options: list[str], cwd: Path) -> None:
        # A real terminal answers prompt_toolkit's cursor position request at once; a pty
        # does not, and while prompt_toolkit waits for the answer (about 2 s after each
        # prompt) it takes Ctrl-C for itself. So the request is switched off.
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "IPython", "--no-banner", "--colors=NoColor", *options],
            env=env,
            cwd=str(cwd),
            encoding="utf-8",
            codec_errors="replace",
            timeout=60,
            dimensions=(50, 200),
        )
        self._marks = itertools.count()
        self.settle()

    def settle(self, timeout: float = 60) -> str:
        """Everything shown since the last call, escape sequences removed."""
        mark = next(self._marks)
        self.child.send(f"print('MARK', {mark} * 1)\r")  # the echo shows `{mark} * 1`
        self.child.expect(f"MARK {mark}\r", timeout=timeout)
        return ESCAPES.sub("", self.child.before)

    def interrupt(self, shown: str, timeout: float = 60) -> str:
        """Ctrl-C, then everything shown up to the next marker. The marker is typed only
        once `shown` and the next prompt have appeared: typed while the interrupted line
        still runs, the terminal echoes it in the middle of the output."""
        self.child.sendintr()
        self.child.expect_exact(shown, timeout=timeout)
        seen = self.child.before + self.child.after
        self.child.expect(r"In \[\d+\]", timeout=timeout)
        seen += self.child.before + self.child.after
        return ESCAPES.sub("", seen) + self.settle(timeout)

    def run(self, line: str, timeout: float = 60) -> str:
        self.child.send(line + "\r")
        return self.settle(timeout)

    def close(self) -> None:
        if self.child.isalive():
            self.child.send("exit\r")
            self.child.expect(pexpect.EOF, timeout=60)
        self.child.close(force=True)


@pytest.fixture(params=[[], ["--simple-prompt"]], ids=["prompt_toolkit", "simple-prompt"])
def terminal(request, tmp_path):
    term = Terminal(request.param, tmp_path)
    yield term
    term.close()


def wait_for(path: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_ctrl_c_during_a_call_is_one_line_and_the_session_lives_on(terminal, tmp_path):
    events = tmp_path / "events"
    terminal.run("%load_ext mcp_magic")
    out = terminal.run(
        f"%mcp connect f --env FAULT_SERVER_EVENTS={events} -- {sys.executable} {FAULT_SERVER}"
    )
    assert "Connected 'f'" in out, out
    terminal.child.send("%mcp call f.sleep seconds=60\r")
    wait_for(events, "start sleep", timeout=60)
    out = terminal.interrupt("Interrupted: call to f.sleep cancelled")
    assert "Interrupted: call to f.sleep cancelled" in out, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    shown = [line for line in out.splitlines() if line.strip() and "In [" not in line]
    assert shown == ["^CInterrupted: call to f.sleep cancelled"], out
    # The server heard the cancellation, and the same session answers the next call.
    wait_for(events, "cancelled sleep", timeout=60)
    assert "Out[" in (out := terminal.run("%mcp call f.echo text='still here'")), out
    assert "still here" in out, out
    assert re.search(r"^f\s+stdio\s+connected\b", terminal.run("%mcp list"), re.M)
    assert "Disconnected f" in terminal.run("%mcp disconnect --all")
    assert "No MCP servers connected." in terminal.run("%mcp list")


def test_ctrl_c_during_a_connect_is_one_line(terminal, tmp_path):
    hung = tmp_path / "hung_server.py"
    heard = tmp_path / "heard"
    # The server notes each request it reads (the first is `initialize`) and answers none.
    hung.write_text("import sys\nprint('hung server up', file=sys.stderr, flush=True)\n"
                    "for line in sys.stdin:\n"
                    f"    with open({str(heard)!r}, 'a') as out:\n"
                    "        out.write(line)\n")  # fmt: skip
    terminal.run("%load_ext mcp_magic")
    terminal.child.send(f"%mcp connect hung -- {sys.executable} {hung}\r")
    # Ctrl-C once the connect is waiting on the handshake, however long that took to begin.
    wait_for(heard, '"initialize"', timeout=60)
    out = terminal.interrupt("Interrupted: connecting 'hung' cancelled")
    assert "Interrupted: connecting 'hung' cancelled" in out, out
    assert "Traceback" not in out, out
    out = terminal.run("%mcp list") + terminal.run("import gc; gc.collect()")
    assert "No MCP servers connected." in out
    assert "never retrieved" not in out, out  # the abandoned handshake leaves no warning
