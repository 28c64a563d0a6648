"""`%mcp` in a real Jupyter kernel (ipykernel), driven over ZMQ with jupyter_client.

These are the cases that only show up in a kernel: sessions living across cells,
the stop button (SIGINT) cancelling a call on the server, a server dying mid-call,
child processes after disconnect / unload / kernel shutdown, progress bars as
display updates, and one-line errors.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from pathlib import Path

import psutil
import pytest

try:
    from kernel_utils import (
        collect,
        execute,
        ok,
        read_lines,
        start_kernel,
        stderr_of,
        stop_kernel,
        text_of,
        wait_for,
    )
except ImportError:  # tests/ became a package
    from tests.kernel_utils import (
        collect,
        execute,
        ok,
        read_lines,
        start_kernel,
        stderr_of,
        stop_kernel,
        text_of,
        wait_for,
    )

FAULT_SERVER = Path(__file__).resolve().parent / "servers" / "fault_server.py"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Code run inside the kernel: its live (not zombie) child processes, as a JSON list.
CHILD_PIDS = """
import psutil as _psutil

def _live(p):
    try:
        return p.status() != _psutil.STATUS_ZOMBIE
    except _psutil.Error:
        return False

print(sorted(p.pid for p in _psutil.Process().children(recursive=True) if _live(p)))
"""


def connect_line(name: str, events: Path) -> str:
    return (
        f"%mcp connect {name} --env FAULT_SERVER_EVENTS={events} -- {sys.executable} {FAULT_SERVER}"
    )


def child_pids(kc) -> list[int]:
    return json.loads(ok(kc, CHILD_PIDS).strip())  # a printed list of ints


def wait_no_children(kc, timeout: float = 3.0) -> list[int]:
    """The kernel's children, polled until there are none (or `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = child_pids(kc)
        if not pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def plain(text: str) -> str:
    return ANSI.sub("", text)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """One kernel for the module, with the extension loaded."""
    km, kc = start_kernel(tmp_path_factory.mktemp("kernel"))
    try:
        ok(kc, "%load_ext mcp_magic")
        yield km, kc
    finally:
        stop_kernel(km, kc)


@pytest.fixture
def kc(kernel):
    """The shared kernel's client; every server is disconnected after the test."""
    _, client = kernel
    yield client
    execute(client, "%mcp disconnect --all", timeout=30)


@pytest.fixture
def events(tmp_path) -> Path:
    return tmp_path / "events.txt"


def test_session_lives_across_cells(kc, events):
    out = ok(kc, connect_line("f", events), timeout=60)
    assert "Connected 'f'" in out

    ok(kc, "df = %mcp call f.rows count=3")
    out = ok(kc, "print(type(df).__name__, list(df.columns), len(df))")
    assert out.strip() == "DataFrame ['id', 'name', 'value'] 3"
    assert ok(kc, "print(df['name'].tolist(), df['value'].sum())").strip() == (
        "['row 0', 'row 1', 'row 2'] 4.5"
    )

    listing = ok(kc, "%mcp list")
    assert re.search(r"^f\s+stdio\s+connected\b", listing, re.M), listing

    out = ok(kc, "%mcp disconnect f")
    assert "Disconnected 'f'" in out
    assert "No MCP servers connected" in ok(kc, "%mcp list")
    assert wait_no_children(kc) == []


def test_interrupt_cancels_the_call_on_the_server(kernel, kc, events):
    km, _ = kernel
    ok(kc, connect_line("f", events), timeout=60)

    msg_id = kc.execute("%mcp call f.sleep seconds=30")
    assert wait_for(lambda: "start sleep" in read_lines(events), timeout=15), read_lines(events)
    started = time.monotonic()
    km.interrupt_kernel()
    outputs, reply = collect(kc, msg_id, timeout=10)
    elapsed = time.monotonic() - started

    assert reply["content"]["status"] == "error"
    # One line naming what was cancelled, not a traceback through the waiting code.
    assert reply["content"]["ename"] == "Interrupted"
    assert reply["content"]["traceback"] == ["Interrupted: call to f.sleep cancelled"]
    assert "Traceback" not in stderr_of(outputs)
    assert elapsed < 1.0, f"the cell took {elapsed:.2f} s to stop after the interrupt"
    # The cancellation reached the server: its handler saw CancelledError.
    assert wait_for(lambda: "cancelled sleep" in read_lines(events), timeout=1.5), read_lines(
        events
    )
    assert "finished sleep" not in read_lines(events)

    # The session survives the interrupt.
    outputs, reply = execute(kc, "%mcp call f.echo text=ok")
    assert reply["content"]["status"] == "ok", reply["content"]
    results = [o for o in outputs if o["msg_type"] == "execute_result"]
    assert results and results[-1]["data"]["text/plain"] == "ok"
    assert re.search(r"^f\s+stdio\s+connected\b", ok(kc, "%mcp list"), re.M)


def test_server_dying_mid_call_is_one_line_and_reconnects(kc, events):
    ok(kc, connect_line("f", events), timeout=60)
    old_pids = child_pids(kc)
    assert len(old_pids) == 1

    started = time.monotonic()
    outputs, reply = execute(kc, "%mcp call f.crash", timeout=20)
    elapsed = time.monotonic() - started
    content = reply["content"]

    assert content["status"] == "error"
    assert elapsed < 2.0, f"a dead server took {elapsed:.2f} s to report"
    # One line, no Python traceback, and it names the server.
    assert len(content["traceback"]) == 1, content["traceback"]
    line = plain(content["traceback"][0])
    assert "\n" not in line.strip()
    assert "'f'" in line and "Traceback" not in line
    # It says how the process ended and what it said last, and nothing internal.
    assert "exited with code 3" in line, line
    assert "fault-server: crashing on purpose" in line, line
    assert "[mcp_magic]" not in line and "SubscriptionLost" not in line
    errors = [o for o in outputs if o["msg_type"] == "error"]
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1
    assert "Traceback" not in stderr_of(outputs)

    listing = ok(kc, "%mcp list")
    assert re.search(r"^f\s+stdio\s+dead: exited with code 3\s", listing, re.M), listing
    # A call to a dead server says so in one line instead of hanging.
    outputs, reply = execute(kc, "%mcp call f.echo text=x", timeout=10)
    assert reply["content"]["status"] == "error"
    assert len(reply["content"]["traceback"]) <= 1
    evalue = plain(reply["content"]["evalue"])
    assert "reconnect" in evalue
    assert "dead: exited with code 3" in evalue and "crashing on purpose" in evalue, evalue

    out = ok(kc, "%mcp reconnect f", timeout=60)
    assert "Reconnected 'f'" in out
    assert re.search(r"^f\s+stdio\s+connected\b", ok(kc, "%mcp list"), re.M)
    assert ok(kc, "_v = %mcp call f.echo text=back\nprint(_v)").strip() == "back"
    new_pids = child_pids(kc)
    assert len(new_pids) == 1 and new_pids != old_pids


def test_progress_is_a_live_display(kc, events):
    ok(kc, connect_line("f", events), timeout=60)
    outputs, reply = execute(kc, "%mcp call f.progress steps=20", timeout=30)
    assert reply["content"]["status"] == "ok", reply["content"]

    displays = [o for o in outputs if o["msg_type"] == "display_data"]
    assert len(displays) == 1, outputs
    first = displays[0]
    assert "<progress" in first["data"]["text/html"]
    display_id = first["transient"]["display_id"]
    assert display_id

    updates = [o for o in outputs if o["msg_type"] == "update_display_data"]
    assert updates, outputs
    assert all(u["transient"]["display_id"] == display_id for u in updates)
    assert any("<progress" in u["data"].get("text/html", "") for u in updates)
    # Updates come after the first display, and the final value is the result.
    assert outputs.index(first) < outputs.index(updates[0])
    results = [o for o in outputs if o["msg_type"] == "execute_result"]
    assert results and results[-1]["data"]["text/plain"] == "done 20"

    # Run as nbclient runs a notebook (no stdin): no bar, so saved outputs do not depend
    # on how fast the machine was.
    unattended = collect(kc, kc.execute("%mcp call f.progress steps=20", allow_stdin=False), 30)[0]
    assert [o["msg_type"] for o in unattended] == ["execute_result"], unattended


BAD_INPUT = [
    # (line, words the one-line message must contain)
    ("%mcp call nosuch.tool", ["nosuch"]),
    ("%mcp call f.nosuch", ["nosuch", "echo"]),
    ("%mcp call f", ["SERVER.TOOL"]),
    ("%mcp call f.echo notakeyvalue", ["key=value"]),
    ("%mcp frobnicate", ["frobnicate"]),
]


def test_bad_input_is_a_one_line_usage_error(kc, events):
    ok(kc, connect_line("f", events), timeout=60)
    for line, words in BAD_INPUT:
        outputs, reply = execute(kc, line)
        content = reply["content"]
        assert content["status"] == "error", line
        assert content["ename"] == "UsageError", (line, content)
        for word in words:
            assert word in content["evalue"], (line, content["evalue"])
        # IPython shows a UsageError as one stderr line and no traceback.
        assert [o for o in outputs if o["msg_type"] == "error"] == [], (line, outputs)
        shown = stderr_of(outputs).strip().splitlines()
        assert len(shown) == 1 and shown[0].startswith("UsageError: "), (line, shown)
        assert text_of(outputs) == "", (line, outputs)
    # None of that hurt the session.
    assert ok(kc, "_v = %mcp call f.echo text=fine\nprint(_v)").strip() == "fine"


def test_no_child_process_after_disconnect_all_or_unload(kc, tmp_path):
    ok(kc, connect_line("a", tmp_path / "a.txt"), timeout=60)
    ok(kc, connect_line("b", tmp_path / "b.txt"), timeout=60)
    assert len(child_pids(kc)) == 2

    out = ok(kc, "%mcp disconnect --all")
    assert "Disconnected a, b" in out
    assert wait_no_children(kc) == []

    ok(kc, connect_line("a", tmp_path / "a.txt"), timeout=60)
    ok(kc, connect_line("b", tmp_path / "b.txt"), timeout=60)
    pids = child_pids(kc)
    assert len(pids) == 2
    try:
        ok(kc, "%unload_ext mcp_magic")
        assert wait_no_children(kc) == []
        assert not any(psutil.pid_exists(p) and _alive(p) for p in pids)
        _, reply = execute(kc, "%mcp list")
        assert reply["content"]["status"] == "error"  # the magic is gone
    finally:
        ok(kc, "%load_ext mcp_magic")
    # Loaded again, it works again.
    ok(kc, connect_line("a", tmp_path / "a.txt"), timeout=60)
    assert ok(kc, "_v = %mcp call a.echo text=again\nprint(_v)").strip() == "again"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_no_server_outlives_kernel_shutdown(tmp_path):
    km, kc = start_kernel(tmp_path / "kernel")
    pids: list[int] = []
    try:
        ok(kc, "%load_ext mcp_magic")
        ok(kc, connect_line("a", tmp_path / "a.txt"), timeout=60)
        ok(kc, connect_line("b", tmp_path / "b.txt"), timeout=60)
        pids = child_pids(kc)
        assert len(pids) == 2
        kernel_pid = km.provisioner.process.pid
        assert all(psutil.Process(p).ppid() == kernel_pid for p in pids)

        km.shutdown_kernel(now=False)
        gone = wait_for(lambda: not any(_alive(p) for p in pids), timeout=5, interval=0.1)
        assert gone, [p for p in pids if _alive(p)]
        assert not _alive(kernel_pid)
    finally:
        stop_kernel(km, kc)
        for pid in pids:  # never leave a server behind, even when the test fails
            if _alive(pid):
                psutil.Process(pid).kill()


HUNG_SERVER = "import sys\nfor _ in sys.stdin:  # reads requests, never answers\n    pass\n"


def test_interrupted_connect_leaves_no_child_after_unload(tmp_path):
    script = tmp_path / "hung_server.py"
    script.write_text(HUNG_SERVER, encoding="utf-8")
    km, kc = start_kernel(tmp_path / "kernel")
    kernel = psutil.Process(km.provisioner.process.pid)
    try:
        ok(kc, "%load_ext mcp_magic")
        msg_id = kc.execute(f"%mcp connect hung -- {sys.executable} {script}")
        assert wait_for(lambda: kernel.children(recursive=True), timeout=15)
        time.sleep(0.3)  # let the client send `initialize`
        km.interrupt_kernel()
        _, reply = collect(kc, msg_id, timeout=15)
        assert reply["content"]["ename"] == "Interrupted"
        assert reply["content"]["traceback"] == ["Interrupted: connecting 'hung' cancelled"]
        ok(kc, "%unload_ext mcp_magic")
        assert wait_no_children(kc, timeout=3) == []
    finally:
        for child in kernel.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
        stop_kernel(km, kc)
