"""`%mcp`: parse the line, call the session manager, display the answer."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.utils.text import dedent
from traitlets import Bool, Float, Unicode

from . import config
from .arguments import parse_target, parse_tool_arguments
from .sessions import McpError, SessionManager, UnknownServer, UnknownTool


def _split(line: str) -> list[str]:
    """Shell-like words: `sql="select * from t"` is one word, quotes removed."""
    if not any(char in line for char in "'\"\\"):
        return line.split()  # what shlex gives for such a line, ~20x faster
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"cannot parse arguments: {exc}") from None


def _parse(parser: Any, rest: str) -> Any:
    return parser.parser.parse_args(_split(rest))


class McpRuntimeError(Exception):
    """A server or tool failed: shown as one red line, no traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31m{type(self).__name__}: {self}\x1b[0m"]


# -- subcommand parsers (they also write the help that `%mcp?` shows) ------------


@magic_arguments(name="%mcp connect")
@argument("name", nargs="?", help="Name for the server in this notebook.")
@argument("url", nargs="?", help="http(s) URL of a remote server (streamable HTTP or SSE).")
@argument("--header", action="append", metavar="'K: V'", help="HTTP header; $VAR expands.")
@argument(
    "--transport",
    choices=["http", "sse"],
    help="Remote transport (default: http, or sse when the URL ends in /sse).",
)
@argument("--env", action="append", metavar="K=V", help="Environment variable for a stdio server.")
@argument("--cwd", help="Working directory for a stdio server.")
@argument("--builtin", action="store_true", help="Start the built-in data server.")
@argument("--db", help="SQLite database for the built-in server (default: the sample).")
@argument("--root", help="Root directory for the built-in server's list_files.")
@argument("--allow-writes", action="store_true", help="Let the built-in server write the db.")
@argument(
    "--config",
    metavar="FILE",
    help="An mcpServers JSON file (Claude Desktop, mcphost, "
    "Cursor, VS Code); NAME then selects servers from it.",
)
@argument("names", nargs="*", help="With --config: which servers to connect (default: all).")
def _connect_args(line: str) -> None:
    """Connect a server: `NAME -- COMMAND [ARGS...]` (stdio), `NAME URL` (remote),
    `NAME --builtin`, or `--config FILE [NAME...]`."""


@magic_arguments(name="%mcp list")
def _list_args(line: str) -> None:
    """Show connected servers: transport, state, protocol, tools, pid, uptime."""


@magic_arguments(name="%mcp tools")
@argument("name", nargs="?", help="Only this server's tools.")
@argument("--refresh", action="store_true", help="Ask the server again.")
def _tools_args(line: str) -> None:
    """List tools with their parameters (`?` marks optional ones)."""


@magic_arguments(name="%mcp call")
@argument("target", help="SERVER.TOOL")
@argument("arguments", nargs="*", help="key=value ... or one JSON object.")
@argument("--raw", action="store_true", help="Return the MCP CallToolResult unchanged.")
def _call_args(line: str) -> None:
    """Call a tool. Tabular answers come back as a pandas DataFrame, others as text or
    JSON: `df = %mcp call data.query_db sql="select * from customers"`."""


@magic_arguments(name="%mcp resources")
@argument("name", nargs="?", help="Only this server's resources.")
def _resources_args(line: str) -> None:
    """List the resources servers offer."""


@magic_arguments(name="%mcp read")
@argument("uri", help="Resource URI (see %%mcp resources).")
@argument("--server", help="Which server to ask (default: the one that lists the URI).")
def _read_args(line: str) -> None:
    """Read a resource."""


@magic_arguments(name="%mcp prompts")
@argument("name", nargs="?", help="Only this server's prompts.")
def _prompts_args(line: str) -> None:
    """List the prompts servers offer."""


@magic_arguments(name="%mcp prompt")
@argument("target", help="SERVER.PROMPT")
@argument("arguments", nargs="*", help="key=value ...")
def _prompt_args(line: str) -> None:
    """Get a prompt's messages."""


@magic_arguments(name="%mcp log")
@argument("name", help="Server name.")
@argument("--lines", "-n", type=int, default=200, help="How many lines from the end.")
def _log_args(line: str) -> None:
    """Show what a server wrote to stderr and its log messages."""


@magic_arguments(name="%mcp disconnect")
@argument("name", nargs="?", help="Server name.")
@argument("--all", action="store_true", help="Disconnect every server.")
def _disconnect_args(line: str) -> None:
    """Close a session and stop its server process."""


@magic_arguments(name="%mcp reconnect")
@argument("name", help="Server name.")
def _reconnect_args(line: str) -> None:
    """Close and start a session again with the same settings."""


SUBCOMMANDS = {
    "connect": _connect_args,
    "list": _list_args,
    "status": _list_args,
    "tools": _tools_args,
    "call": _call_args,
    "resources": _resources_args,
    "read": _read_args,
    "prompts": _prompts_args,
    "prompt": _prompt_args,
    "log": _log_args,
    "disconnect": _disconnect_args,
    "reconnect": _reconnect_args,
}


def _help_text() -> str:
    parts = [
        "Connect MCP servers and use their tools: %mcp SUBCOMMAND ...",
        "",
        "Subcommands: " + ", ".join(SUBCOMMANDS),
    ]
    seen = set()
    for func in SUBCOMMANDS.values():
        if func in seen:
            continue
        seen.add(func)
        parts += ["", dedent(func.__doc__ or "").strip()]
    return "\n".join(parts)


@magics_class
class McpMagics(Magics):
    """The `%mcp` line magic. Settings work with `%config McpMagics.<name> = ...`."""

    connect_timeout = Float(60.0, help="Seconds to wait for a server to start.").tag(config=True)
    show_progress = Bool(True, help="Show a progress bar when a tool reports progress.").tag(
        config=True
    )
    default_model = Unicode("", help="Model for %%agent, as provider:model.").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.manager = SessionManager(connect_timeout=self.connect_timeout)
        self.observe(self._timeout_changed, names="connect_timeout")

    def _timeout_changed(self, change: dict[str, Any]) -> None:
        self.manager.connect_timeout = change["new"]

    @line_magic
    def mcp(self, line: str) -> Any:
        command, _, rest = line.strip().partition(" ")
        if not command:
            raise UsageError("usage: %mcp SUBCOMMAND ... (see %mcp? for the list)")
        parser = SUBCOMMANDS.get(command)
        if parser is None:
            raise UsageError(
                f"unknown subcommand {command!r}; expected one of: {', '.join(SUBCOMMANDS)}"
            )
        handler = getattr(self, f"_do_{'list' if command == 'status' else command}")
        try:
            return handler(parser, rest)
        except (config.ConfigError, UnknownServer, UnknownTool) as exc:
            raise UsageError(str(exc)) from None
        except McpError as exc:
            raise McpRuntimeError(str(exc)) from None

    mcp.__doc__ = _help_text()

    # -- subcommands ---------------------------------------------------------

    def _do_connect(self, parser: Any, rest: str) -> None:
        words = _split(rest)
        command: list[str] | None = None
        if "--" in words:
            at = words.index("--")
            words, command = words[:at], words[at + 1 :]
        args = parser.parser.parse_args(words)
        if args.config:
            specs = config.load_config_file(args.config)
            wanted = ([args.name] if args.name else []) + ([args.url] if args.url else [])
            wanted += args.names
            unknown = [n for n in wanted if n not in specs]
            if unknown:
                raise UsageError(f"{args.config} has no server named {', '.join(unknown)}")
            selected = {n: specs[n] for n in (wanted or specs)}
            self._connect_many(selected)
            return
        if not args.name:
            raise UsageError("usage: %mcp connect NAME -- COMMAND | NAME URL | NAME --builtin")
        name = config.check_name(args.name)
        if args.names:
            raise UsageError(f"unexpected arguments: {' '.join(args.names)}")
        if args.builtin:
            spec = config.builtin_spec(args.db, args.root, args.allow_writes)
        elif command is not None:
            if args.url:
                raise UsageError("give either a URL or -- COMMAND, not both")
            spec = config.stdio_spec(command, args.env, args.cwd)
        elif args.url:
            spec = config.http_spec(args.url, args.header, args.transport)
        else:
            raise UsageError(
                f"missing server for {name!r}: use -- COMMAND [ARGS...], a URL, or --builtin"
            )
        self._connect_many({name: spec})

    def _connect_many(self, specs: dict[str, Any]) -> None:
        ready = {n: s for n, s in specs.items() if not isinstance(s, Exception)}
        for name in ready:
            if name in self.manager.sessions and self.manager.sessions[name].state == "connected":
                raise UsageError(
                    f"a server named {name!r} is already connected "
                    f"(%mcp disconnect {name} first, or pick another name)"
                )
        outcomes: dict[str, Any] = dict(self.manager.connect_many(ready)) if ready else {}
        failures = []
        for name, spec in specs.items():
            outcome = spec if isinstance(spec, Exception) else outcomes[name]
            if isinstance(outcome, Exception):
                failures.append(
                    str(outcome)
                    if not isinstance(spec, Exception)
                    else f"could not connect {name!r}: {outcome}"
                )
            else:
                s = outcome
                who = f"{s.server_name} {s.server_version or ''}".strip() or "server"
                print(
                    f"Connected {name!r}: {who}, {len(s.tools)} tools, "
                    f"protocol {s.protocol_version}, {s.transport}"
                )
        if failures and len(failures) == len(specs):
            raise McpRuntimeError("; ".join(failures))
        for failure in failures:
            print(failure)

    def _do_list(self, parser: Any, rest: str) -> Any:
        _parse(parser, rest)
        from .render import status_table

        return status_table(list(self.manager.sessions.values()))

    def _do_tools(self, parser: Any, rest: str) -> Any:
        args = _parse(parser, rest)
        from .render import tools_table

        names = (
            [args.name]
            if args.name
            else [n for n, s in self.manager.sessions.items() if s.state == "connected"]
        )
        tools = {}
        for name in names:
            if args.refresh:
                self.manager.refresh_tools(name)
            tools[name] = self.manager.tools(name)
        return tools_table(tools)

    def _do_call(self, parser: Any, rest: str) -> Any:
        words = _split(rest)
        if words and not any(word.startswith("-") for word in words):
            # The common case has no options: skip argparse on this hot path.
            args = argparse.Namespace(target=words[0], arguments=words[1:], raw=False)
        else:
            args = parser.parser.parse_args(words)
        server, tool_name = parse_target(args.target)
        tool = self.manager.tool(server, tool_name)
        arguments = parse_tool_arguments(args.arguments, tool.input_schema)
        progress = self._progress(f"{server}.{tool_name}")
        try:
            result = self.manager.call_tool(
                server, tool_name, arguments, on_progress=progress.update if progress else None
            )
        finally:
            if progress is not None:
                progress.close()
        if args.raw:
            return result
        return self._tool_value(server, tool_name, result)

    def _progress(self, label: str) -> Any:
        if not self.show_progress:
            return None
        from .render import Progress

        return Progress(label, terminal=type(self.shell).__name__ == "TerminalInteractiveShell")

    def _tool_value(self, server: str, tool: str, result: Any) -> Any:
        from .render import ToolText
        from .results import interpret

        outcome = interpret(result, tool)
        if outcome.error is not None:
            raise McpRuntimeError(f"{server}.{tool}: {outcome.error}")
        return ToolText(outcome.value) if isinstance(outcome.value, str) else outcome.value

    def _do_resources(self, parser: Any, rest: str) -> Any:
        args = _parse(parser, rest)
        from .render import Table

        rows = []
        for name in self._server_names(args.name):
            result = self.manager.request(name, lambda c: c.list_resources())
            for res in result.resources:
                rows.append(
                    [
                        name,
                        str(res.uri),
                        res.name,
                        res.mime_type or "",
                        (res.description or "").strip().split("\n")[0],
                    ]
                )
        return Table(["server", "uri", "name", "mime type", "description"], rows)

    def _do_read(self, parser: Any, rest: str) -> Any:
        args = _parse(parser, rest)
        from .render import ToolText

        server = args.server or self._server_for_resource(args.uri)
        result = self.manager.request(server, lambda c: c.read_resource(args.uri))
        texts = [getattr(c, "text", None) for c in result.contents]
        if all(t is not None for t in texts):
            return ToolText("\n".join(texts))
        import base64

        blobs = [base64.b64decode(c.blob) for c in result.contents if getattr(c, "blob", None)]
        return blobs[0] if len(blobs) == 1 else blobs

    def _server_for_resource(self, uri: str) -> str:
        names = self._server_names(None)
        if len(names) == 1:
            return names[0]
        for name in names:
            result = self.manager.request(name, lambda c: c.list_resources())
            if any(str(r.uri) == uri for r in result.resources):
                return name
        raise UsageError(f"no connected server lists {uri!r}; pass --server NAME")

    def _do_prompts(self, parser: Any, rest: str) -> Any:
        args = _parse(parser, rest)
        from .render import Table

        rows = []
        for name in self._server_names(args.name):
            result = self.manager.request(name, lambda c: c.list_prompts())
            for prompt in result.prompts:
                params = ", ".join(
                    a.name + ("" if a.required else "?") for a in prompt.arguments or []
                )
                rows.append(
                    [
                        f"{name}.{prompt.name}",
                        params,
                        (prompt.description or "").strip().split("\n")[0],
                    ]
                )
        return Table(["prompt", "arguments", "description"], rows)

    def _do_prompt(self, parser: Any, rest: str) -> Any:
        args = _parse(parser, rest)
        from .render import ToolText

        server, prompt = parse_target(args.target)
        arguments = {k: str(v) for k, v in parse_tool_arguments(args.arguments).items()}
        result = self.manager.request(server, lambda c: c.get_prompt(prompt, arguments))
        lines = []
        for message in result.messages:
            content = message.content
            body = getattr(content, "text", None) or f"({getattr(content, 'type', '?')})"
            lines.append(f"[{message.role}] {body}")
        return ToolText("\n\n".join(lines))

    def _do_log(self, parser: Any, rest: str) -> Any:
        args = _parse(parser, rest)
        from .render import ToolText

        session = self.manager.get(args.name)
        return ToolText(session.log_tail(args.lines) or f"(nothing logged by {args.name!r} yet)")

    def _do_disconnect(self, parser: Any, rest: str) -> None:
        args = _parse(parser, rest)
        if args.all == bool(args.name):
            raise UsageError("usage: %mcp disconnect NAME | --all")
        if args.all:
            names = self.manager.disconnect_all()
            print(f"Disconnected {', '.join(names)}." if names else "No servers were connected.")
        else:
            self.manager.disconnect(args.name)
            print(f"Disconnected {args.name!r}.")

    def _do_reconnect(self, parser: Any, rest: str) -> None:
        args = _parse(parser, rest)
        session = self.manager.reconnect(args.name)
        print(f"Reconnected {args.name!r}: {len(session.tools)} tools, pid {session.pid or '-'}")

    def _server_names(self, name: str | None) -> list[str]:
        if name:
            self.manager.connected(name)
            return [name]
        return [n for n, s in self.manager.sessions.items() if s.state == "connected"]

    def close(self) -> None:
        self.manager.close()
