"""The command line: ``python -m mcp_magic.server`` and ``mcp-magic-server``."""

import argparse
import logging
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .app import build_server
from .arrow import warm_up_arrow
from .common import (
    DEFAULT_DB,
    DEFAULT_MAX_ANSWER_BYTES,
    DEFAULT_MAX_VALUE_BYTES,
    DEFAULT_TIMEOUT,
    Settings,
)
from .http import DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_IDLE_TIMEOUT, TOKEN_VARIABLE, serve_http


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
        return value

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mcp-magic-server",
        description="mcp_magic's built-in MCP server: SQL over SQLite and files under a root.",
        epilog=f"Over HTTP on anything but loopback, clients must send a bearer token: the "
               f"value of {TOKEN_VARIABLE}, or one generated and printed at start.")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help="SQLite database (default: the bundled sample sales database)")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="directory list_files and read_csv may see (default: cwd)")
    parser.add_argument("--allow-writes", action="store_true",
                        help="let query_db change the database (read-only by default)")
    parser.add_argument("--transport", choices=["stdio", "http", "sse"], default="stdio",
                        help="stdio (default), streamable HTTP at /mcp, or SSE at /sse")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address for http/sse (default 127.0.0.1; any other requires a "
                             "bearer token)")
    parser.add_argument("--port", type=int, default=8000, help="port for http/sse")
    parser.add_argument("--allowed-hosts", action="append", default=[], metavar="NAME[,NAME]",
                        help="more Host names the HTTP server answers to (DNS-rebinding "
                             "protection; loopback names are always allowed); '*' allows any")
    parser.add_argument("--timeout", type=_positive(float), default=DEFAULT_TIMEOUT,
                        help="seconds any one tool call may work "
                             f"(default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--max-value-bytes", type=_positive(int),
                        default=DEFAULT_MAX_VALUE_BYTES,
                        help="largest SQL value or CSV line, in bytes "
                             f"(default {DEFAULT_MAX_VALUE_BYTES:,})")
    parser.add_argument("--max-answer-bytes", type=_positive(int),
                        default=DEFAULT_MAX_ANSWER_BYTES,
                        help="rows of one answer, in bytes as JSON (as Arrow data for a "
                             "client that asked for Arrow); more are cut with a note "
                             f"(default {DEFAULT_MAX_ANSWER_BYTES:,})")
    parser.add_argument("--session-idle-timeout", type=_positive(float),
                        default=DEFAULT_SESSION_IDLE_TIMEOUT,
                        help="close a streamable-HTTP session idle this many seconds "
                             f"(default {DEFAULT_SESSION_IDLE_TIMEOUT:g})")
    parser.add_argument("--max-sessions", type=_positive(int), default=DEFAULT_MAX_SESSIONS,
                        help="open streamable-HTTP sessions at most "
                             f"(default {DEFAULT_MAX_SESSIONS})")
    args = parser.parse_args(argv)
    if args.db.exists() and not args.db.is_file():
        parser.error(f"database is not a regular file: {args.db}")
    if not args.allow_writes and not args.db.is_file():
        parser.error(f"database not found: {args.db}")
    if not args.root.is_dir():
        parser.error(f"root is not a directory: {args.root}")
    return args


class _ArgumentLogWording(logging.Filter):
    """The SDK logs "Tool 'x' rejected arguments: ['sql']" for a missing argument too.

    Its record is written inside the `except` that caught the validation error, so the
    error is at hand: say which arguments were missing and which had a wrong value.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Tool %r rejected arguments: %r" or not isinstance(record.args, tuple):
            return True
        cause = getattr(sys.exc_info()[1], "__cause__", None)
        errors = getattr(cause, "errors", None)
        if not callable(errors):
            record.msg = "Tool %r: missing or invalid arguments: %s"
            record.args = (record.args[0], ", ".join(map(str, record.args[1])))
            return True
        missing: set[str] = set()
        invalid: set[str] = set()
        for error in errors():
            field = ".".join(str(part) for part in error.get("loc", ()))
            (missing if error.get("type") == "missing" else invalid).add(field)
        parts = [f"missing {', '.join(sorted(missing))}"] if missing else []
        parts += [f"invalid {', '.join(sorted(invalid))}"] if invalid else []
        record.msg = "Tool %r: arguments refused (%s)"
        record.args = (record.args[0], "; ".join(parts) or "invalid")
        return True


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.getLogger("mcp.server.mcpserver.server").addFilter(_ArgumentLogWording())
    settings = Settings(db=args.db, root=args.root, allow_writes=args.allow_writes,
                        timeout=args.timeout, max_value_bytes=args.max_value_bytes,
                        max_answer_bytes=args.max_answer_bytes)
    server = build_server(settings)
    warm_up_arrow()
    try:
        if args.transport == "stdio":
            import anyio

            from .stdio import run_stdio

            anyio.run(run_stdio, server)
        else:
            serve_http(server, args.transport, args.host, args.port, args.allowed_hosts,
                       args.session_idle_timeout, args.max_sessions)
    except KeyboardInterrupt:
        pass
