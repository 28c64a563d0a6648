"""A stdio MCP server that writes lines that are not JSON-RPC to its stdout first.

Many real servers print a banner or progress to stdout before they start. This one
writes a text line and a JSON line that is not JSON-RPC and, with `--bad-utf8`, a line
of invalid UTF-8 bytes, then serves normally. (Once running, the SDK's stdio server
points fd 1 at stderr, so noise mid-session is covered by the reader's unit tests.)
"""

from __future__ import annotations

import argparse
import os

from mcp.server.mcpserver import MCPServer

server = MCPServer(name="noisy-server")

NOISE = b'noisy-server: loading, please wait\n{"hello": "not json-rpc"}\n'
BAD_UTF8 = b"noisy-server: \xff\xfe\xc3 bad bytes\n"


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bad-utf8", action="store_true", help="also print invalid UTF-8")
    args = parser.parse_args()
    os.write(1, NOISE + (BAD_UTF8 if args.bad_utf8 else b""))
    server.run()


if __name__ == "__main__":
    main()
