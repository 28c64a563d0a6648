"""The conformance harness's client, driving mcp_magic's public API (`Host`).

The harness (`conformance client --command "python client.py"`) appends the server URL
as the last argument and names the scenario in `MCP_CONFORMANCE_SCENARIO`; credential
scenarios also pass `MCP_CONFORMANCE_CONTEXT` (JSON). Exit 0 when the scenario's steps
ran; the harness judges what the server saw.
"""

from __future__ import annotations

import os
import sys

from mcp_magic import Host


def main() -> int:
    url = sys.argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    with Host(connect_timeout=20) as host:
        host.connect("s", url=url)
        tools = host.tools("s")
        if scenario == "tools_call":
            host.call("s.add_numbers", a=5, b=3)
        elif scenario == "sse-retry":
            host.call("s.test_reconnection")
        elif scenario.startswith("elicitation"):
            host.call("s.test_client_elicitation_defaults")
        elif scenario.startswith("auth/") and tools:
            host.call(f"s.{next(iter(tools))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
