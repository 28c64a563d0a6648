"""The command line: ``python -m mcp_magic.server`` and ``mcp-magic-server``."""

import argparse
from collections.abc import Sequence
from pathlib import Path

from .app import build_server
from .common import DEFAULT_DB, DEFAULT_TIMEOUT, Settings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mcp-magic-server",
        description="mcp_magic's built-in MCP server: SQL over SQLite and files under a root.")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help="SQLite database (default: the bundled sample sales database)")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="directory list_files and read_csv may see (default: cwd)")
    parser.add_argument("--allow-writes", action="store_true",
                        help="let query_db change the database (read-only by default)")
    parser.add_argument("--transport", choices=["stdio", "http", "sse"], default="stdio",
                        help="stdio (default), streamable HTTP at /mcp, or SSE at /sse")
    parser.add_argument("--host", default="127.0.0.1", help="host for http/sse")
    parser.add_argument("--port", type=int, default=8000, help="port for http/sse")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"stop a query after this many seconds (default {DEFAULT_TIMEOUT:g})")
    args = parser.parse_args(argv)
    if not args.allow_writes and not args.db.is_file():
        parser.error(f"database not found: {args.db}")
    if not args.root.is_dir():
        parser.error(f"root is not a directory: {args.root}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = Settings(db=args.db, root=args.root, allow_writes=args.allow_writes,
                        timeout=args.timeout)
    server = build_server(settings)
    try:
        if args.transport == "http":
            server.run("streamable-http", host=args.host, port=args.port,
                       streamable_http_path="/mcp")
        elif args.transport == "sse":
            server.run("sse", host=args.host, port=args.port, sse_path="/sse")
        else:
            server.run("stdio")
    except KeyboardInterrupt:
        pass

