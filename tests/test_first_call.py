"""The first call after a connect: what it should not have to wait for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAULT_SERVER = ROOT / "tests" / "servers" / "fault_server.py"

PROBE = f"""
import sys, time
from mcp_magic.host.config import StdioSpec
from mcp_magic.host.sessions import OUTPUT_CHECK_MODULE, SessionManager

manager = SessionManager()
try:
    manager.connect("f", StdioSpec(command=sys.executable, args=({str(FAULT_SERVER)!r},)))
    deadline = time.monotonic() + 60
    while OUTPUT_CHECK_MODULE not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.05)
    print("imported before any call:", OUTPUT_CHECK_MODULE in sys.modules)
    result = manager.call_tool("f", "echo", {{"text": "hi"}})
    print("call:", result.structured_content)
finally:
    manager.close()
"""


def test_a_connect_imports_the_sdks_output_check_before_the_first_call():
    """The SDK imports jsonschema on the first call of a tool with an outputSchema (about
    a second with Jupyter's format checkers); a connect to such a server starts that
    import in the background, so the first call finds it done."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
        check=True, cwd=ROOT,
    ).stdout
    assert "imported before any call: True" in out
    assert "call: {'result': 'hi'}" in out
