"""Official MCP client conformance: mcp_magic's `Host` next to the raw `mcp` SDK client.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_conformance.py [scenario ...]

Needs the harness in tests/conformance (scripts/setup.sh installs it); the newest alpha:
MCP_CONFORMANCE_HOME=tests/conformance/next.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "conformance"))
import harness  # noqa: E402


def main(names: list[str]) -> None:
    if not harness.available():
        sys.exit("conformance harness not installed: run scripts/setup.sh")
    names = names or harness.scenarios()
    print(f"@modelcontextprotocol/conformance {harness.version()}")
    started = time.monotonic()
    results = {
        "mcp_magic": harness.run_all(harness.HOST_CLIENT, names),
        "mcp SDK": harness.run_all(harness.SDK_CLIENT, names),
    }
    width = max(map(len, names))
    print(f"{'scenario':<{width}}  mcp_magic  mcp SDK")
    for name in names:
        marks = ["pass" if results[c][name].passed else "FAIL" for c in results]
        print(f"{name:<{width}}  {marks[0]:<9}  {marks[1]}")
    for client, outcomes in results.items():
        print(f"{client}: {sum(o.passed for o in outcomes.values())}/{len(names)} scenarios pass")
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
