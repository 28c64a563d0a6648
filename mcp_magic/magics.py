"""`%mcp`: parse the line, call the session manager, display the answer."""

from __future__ import annotations

import argparse
import contextlib
import re
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    line_cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
)
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.utils.text import dedent
from traitlets import Bool, Dict, Float, Int, List, TraitError, Unicode, validate

from .apps import view_uri
from .display.render import Progress, tool_value
from .host import config
from .host.arguments import (
    LINE_LIMIT,
    check_line_length,
    expand_variables,
    missing_message,
    parse_target,
    parse_tool_arguments,
    split_words,
    strip_comment,
)
from .host.auth import OAuth, OAuthSettings, format_summary
from .host.sessions import McpError, SessionManager, UnknownServer, UnknownTool


def _split(line: str) -> list[str]:
    """Shell-like words: `sql="select * from t"` is one word, quotes removed."""
    try:
        return split_words(line)
    except config.ConfigError as exc:
        raise UsageError(str(exc)) from None


_CELL_HELP = re.compile(r"\s*%%agent\s*(\?\??)\s*")


def agent_questions(lines: list[str]) -> list[str]:
    """An IPython input transformer: `%agent what is x?` asks the model.

    IPython reads a line ending in `?` as a help request, and questions end in `?`;
    so such a line is turned into the magic call before help detection sees it.
    A cell that is only `%%agent?` is the help request: terminal IPython would wait for
    the cell's body (a cell magic ends at a blank line), so it becomes the help call here.
    """
    body = [line for line in lines if line.strip()]
    if len(body) == 1 and (match := _CELL_HELP.fullmatch(body[0])):
        kind = "pinfo2" if match.group(1) == "??" else "pinfo"
        return [f"get_ipython().run_line_magic({kind!r}, '%%agent')\n"]
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("%agent ") and stripped.endswith("?"):
            indent = line[: len(line) - len(line.lstrip())]
            argument = stripped[len("%agent ") :]
            line = f"{indent}get_ipython().run_line_magic('agent', {argument!r})\n"
        out.append(line)
    return out


MESSAGE_LIMIT = 600


def _one_line(message: str) -> str:
    """An error message as one bounded line, however much input it quotes."""
    message = " ".join(message.split()) if "\n" in message or "\r" in message else message
    if len(message) > MESSAGE_LIMIT:
        message = f"{message[: MESSAGE_LIMIT - 40]}… ({len(message):,} characters)"
    return message


def _positive_int(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{option} must be 1 or more, not {value}")
    return value


_MODEL_WORD = re.compile(r"[a-z][a-z0-9_.-]*:[^\s/:][^\s]*")
"""A word shaped like provider:model (a URL's `http://...` is not; provider names are
lower case, so a question starting `Note:this` stays a question)."""


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"expected SERVER=TEXT, got {text!r}")
    return key, value


def _parse(parser: Any, rest: str) -> Any:
    return parser.parser.parse_args(_split(rest))


class McpRuntimeError(Exception):
    """A server or tool failed: shown as one red line, no traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31m{type(self).__name__}: {self}\x1b[0m"]


# -- subcommand parsers (they also write the help that `%mcp?` shows) ------------


@magic_arguments(name="mcp connect")
@argument("name", nargs="?", help="Name for the server in this notebook.")
@argument("url", nargs="?", help="http(s) URL of a remote server (streamable HTTP or SSE).")
@argument("--header", action="append", metavar="'K: V'", help="HTTP header; $VAR expands.")
@argument(
    "--transport",
    choices=["http", "sse"],
    help="Remote transport (default: http, or sse when the URL ends in /sse).",
)
@argument("--client-id", help="OAuth: a client registered with the server's authorization server.")
@argument("--client-secret", help="OAuth: that client's secret ($VAR expands).")
@argument("--scopes", help="OAuth: scopes to ask for (default: what the server names).")
@argument(
    "--client-credentials",
    action="store_true",
    help="OAuth: authorize as the client itself (no user), with --client-id/--client-secret.",
)
@argument(
    "--redirect-port",
    type=int,
    help="OAuth: listen for the redirect on this 127.0.0.1 port (a pre-registered redirect URI).",
)
@argument(
    "--paste",
    action="store_true",
    help="OAuth: the browser cannot reach this kernel (JupyterHub, Binder): paste the address "
    "it was redirected to.",
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


@magic_arguments(name="mcp list")
def _list_args(line: str) -> None:
    """Show connected servers: transport, state, protocol, tools, pid, uptime."""


@magic_arguments(name="mcp functions")
@argument("name", nargs="*", help="Only these servers (default: every connected one).")
def _functions_args(line: str) -> None:
    """Make servers' tools Python functions in the notebook: `data.query_db(sql=...)`
    returns what `%mcp call data.query_db sql=...` returns. A server whose name is taken
    by a variable of yours is reachable as `mcp_servers.NAME`."""


@magic_arguments(name="mcp tools")
@argument("name", nargs="?", help="Only this server's tools.")
@argument("--refresh", action="store_true", help="Ask the server again.")
def _tools_args(line: str) -> None:
    """List tools with their parameters (`?` marks optional ones)."""


@magic_arguments(name="mcp call")
@argument("target", help="SERVER.TOOL")
@argument("arguments", nargs="*", help="key=value ... or one JSON object.")
@argument("--raw", action="store_true", help="Return the MCP CallToolResult unchanged.")
@argument("--all", action="store_true",
          help="Every row of a paged table tool (limit=/offset=, as query_db), page by page.")
def _call_args(line: str) -> None:
    """Call a tool. Tabular answers come back as a pandas DataFrame, others as text or
    JSON: `df = %mcp call data.query_db sql="select * from customers"`."""


@magic_arguments(name="mcp resources")
@argument("name", nargs="?", help="Only this server's resources.")
def _resources_args(line: str) -> None:
    """List the resources servers offer."""


@magic_arguments(name="mcp read")
@argument("uri", help="Resource URI (see %%mcp resources).")
@argument("--server", help="Which server to ask (default: the one that lists the URI).")
def _read_args(line: str) -> None:
    """Read a resource."""


@magic_arguments(name="mcp prompts")
@argument("name", nargs="?", help="Only this server's prompts.")
def _prompts_args(line: str) -> None:
    """List the prompts servers offer."""


@magic_arguments(name="mcp prompt")
@argument("target", help="SERVER.PROMPT")
@argument("arguments", nargs="*", help="key=value ...")
def _prompt_args(line: str) -> None:
    """Get a prompt's messages."""


@magic_arguments(name="mcp log")
@argument("name", help="Server name.")
@argument("--lines", "-n", type=int, default=200, help="How many lines from the end.")
def _log_args(line: str) -> None:
    """Show what a server wrote to stderr and its log messages."""


@magic_arguments(name="mcp disconnect")
@argument("name", nargs="?", help="Server name.")
@argument("--all", action="store_true", help="Disconnect every server.")
def _disconnect_args(line: str) -> None:
    """Close a session and stop its server process."""


@magic_arguments(name="mcp auth")
@argument("action", nargs="?", choices=["logout"], help="logout NAME: forget its tokens.")
@argument("name", nargs="?", help="Server name (or URL) for logout.")
def _auth_args(line: str) -> None:
    """Servers holding OAuth tokens: scopes and expiry, never the tokens. Tokens live in
    a 0600 file under ~/.config/mcp_magic, outside the notebook."""


@magic_arguments(name="mcp reconnect")
@argument("name", help="Server name.")
def _reconnect_args(line: str) -> None:
    """Close and start a session again with the same settings."""


@magic_arguments(name="%agent")
@argument(
    "model",
    nargs="?",
    help="provider:model, e.g. openrouter:openai/gpt-4o-mini "
    "(default: %%config McpMagics.default_model).",
)
@argument("--base-url", help="Any OpenAI-compatible endpoint (vLLM, LM Studio, a proxy).")
@argument(
    "--allow",
    action="append",
    metavar="GLOB",
    help="Servers or server.tool the model may use (repeatable; default: all).",
)
@argument("--deny", action="append", metavar="GLOB", help="Servers or server.tool it may not use.")
@argument(
    "--max-steps",
    type=lambda text: _positive_int(text, "--max-steps"),
    help="Model requests per run before stopping (default 10).",
)
@argument(
    "--approve",
    choices=["never", "always", "writes"],
    help="Ask before running: never, always, or for tools not marked read-only.",
)
@argument("--system", help="System prompt (server instructions are added to it).")
@argument(
    "--code",
    action="store_true",
    default=None,
    help="Code mode: the model runs Python in the kernel, where each server is an object "
    "whose tools are functions (default: %%config McpMagics.code_mode). Each block is shown "
    "for approval unless --approve never.",
)
@argument("--no-code", dest="code", action="store_false", help="Tool calls, not code mode.")
@argument("--new", action="store_true", help="Start a new conversation.")
@argument("--temperature", type=float, help="Sampling temperature.")
@argument("--no-stream", action="store_true", help="Wait for whole replies.")
@argument("--out", help="Variable for the final answer (default: answer).")
@argument(
    "--results",
    metavar="PREFIX",
    help="Names for tables the model does not name: PREFIX_1, PREFIX_2, ... (default: result).",
)
@argument(
    "--max-tokens-total",
    type=lambda text: _positive_int(text, "--max-tokens-total"),
    metavar="N",
    help="Tokens (in + out) the run may use; a request that would pass it is not sent.",
)
@argument(
    "--describe",
    action="append",
    metavar="SERVER=TEXT",
    help="Tell the model what a server is for.",
)
@argument(
    "--hosted",
    choices=["auto", "always", "never"],
    help="Responses API only: let the provider call remote servers itself (auto: public URLs).",
)
def _agent_args(line: str) -> None:
    """Ask a model to answer the cell's text, using the connected servers' tools.

    The answer streams into the cell; each tool call shows as a collapsible block, and
    table results are bound to notebook variables. `{name}` fills in a notebook variable
    ({{ for a brace). The conversation continues in the next %%agent cell until --new.
    One-line form: %agent [MODEL] [options] PROMPT.

    The model names its tables (a variable a user made is never overwritten: the table
    gets another name and the cell says so). `%agent log` shows what every run did,
    `%agent export` turns a run into %mcp call lines and code that rerun without a model."""


@magic_arguments(name="agent log")
@argument("--run", type=int, metavar="N", help="Only run N (default: every run).")
@argument("--save", metavar="FILE", help="Write the rows as JSON Lines to FILE.")
def _agent_log_args(line: str) -> None:
    """What each agent run did, one row per step: prompt, model replies, tool calls,
    code blocks, notices; with arguments, result previews, variables, timings, tokens
    and cost. Secrets (keys, header values, tokens) are never in it."""


@magic_arguments(name="agent export")
@argument("--run", type=int, metavar="N", help="Which run (default: the last one).")
@argument("--to", metavar="FILE", help="Write the code to FILE (e.g. replay.ipy) instead.")
def _agent_export_args(line: str) -> None:
    """A run as code that needs no model: `%mcp call` lines binding the same variables
    and the code blocks that ran, in the next cell (Jupyter, terminal IPython) or FILE."""


AGENT_SUBCOMMANDS = {"log": _agent_log_args, "export": _agent_export_args}


def agent_subcommand(line: str) -> tuple[str, str] | None:
    """`%agent log ...` / `%agent export ...`: (name, the rest); None for a prompt.

    Only the bare word or the word followed by options counts, so a question such as
    `%agent log the sales per region` is still a question.
    """
    word, _, rest = line.strip().partition(" ")
    if word not in AGENT_SUBCOMMANDS:
        return None
    rest = rest.strip()
    if rest and not rest.startswith("-"):
        return None
    return word, rest


SUBCOMMANDS = {
    "connect": _connect_args,
    "list": _list_args,
    "status": _list_args,
    "tools": _tools_args,
    "functions": _functions_args,
    "call": _call_args,
    "resources": _resources_args,
    "read": _read_args,
    "prompts": _prompts_args,
    "prompt": _prompt_args,
    "log": _log_args,
    "disconnect": _disconnect_args,
    "reconnect": _reconnect_args,
    "auth": _auth_args,
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
    default_approval = Unicode("never", help="%%agent approval: never, always, writes.").tag(
        config=True
    )
    max_steps = Int(10, help="%%agent: model requests per run before stopping.").tag(config=True)
    code_mode = Bool(
        False, help="%%agent: the model runs Python in the kernel instead of calling tools."
    ).tag(config=True)
    display_limit = Int(
        20_000,
        help="Characters of a text or JSON answer shown in a cell (0: all); the value "
        "returned keeps everything.",
    ).tag(config=True)
    line_limit = Int(
        LINE_LIMIT,
        help="Longest %mcp line, in characters, before and after $name expansion (0: none).",
    ).tag(config=True)
    idle_timeout = Float(
        60.0, help="%%agent: seconds a model reply may go without data before it fails."
    ).tag(config=True)
    run_timeout = Float(
        600.0, help="%%agent: seconds a whole run may take (waiting for approval aside)."
    ).tag(config=True)
    max_tokens_total = Int(
        0, help="%%agent: tokens (in + out) one run may use (0: no limit)."
    ).tag(config=True)
    ask_with = Unicode(
        "auto",
        help="How questions are asked in Jupyter (servers' forms and links, approval of "
        "sampling, of %%agent tool calls and code): 'auto' (widgets where the kernel "
        "allows) or 'prompt' (input prompts).",
    ).tag(config=True)
    oauth_paste = Unicode(
        "auto",
        help="OAuth redirect: 'yes' to paste the redirected address (a kernel the browser "
        "cannot reach), 'no' for the loopback listener, 'auto' (paste on JupyterHub/Binder).",
    ).tag(config=True)
    oauth_redirect_port = Int(
        0, help="OAuth: a fixed 127.0.0.1 port for the redirect (0: any free port)."
    ).tag(config=True)
    roots = List(
        Unicode(), default_value=None, allow_none=True,
        help="Directories offered to servers as roots, e.g. ['.'] (the notebook's "
        "directory, resolved when a server asks); [] offers none. None (the default): a "
        "local server started with directories on its command line gets those (a server "
        "told of roots may use them instead of its arguments), any other local server "
        "the notebook's directory, a remote one none. For servers connected after the "
        "change.",
    ).tag(config=True)
    endpoints = Dict(
        help="Aliases for OpenAI-compatible endpoints: {'lmstudio': 'http://localhost:1234/v1'}"
        " makes 'lmstudio:MODEL' work."
    ).tag(config=True)

    @validate("connect_timeout", "idle_timeout", "run_timeout", "max_steps")
    def _check_positive(self, proposal: Any) -> Any:
        # Refused at `%config` time, in one line; the old value stays.
        if not proposal["value"] > 0:
            name = proposal["trait"].name
            raise TraitError(f"McpMagics.{name} must be above 0, got {proposal['value']!r}")
        return proposal["value"]

    @validate("max_tokens_total")
    def _check_budget(self, proposal: Any) -> Any:
        if not proposal["value"] >= 0:
            raise TraitError(
                "McpMagics.max_tokens_total must be 0 (no limit) or more, "
                f"got {proposal['value']!r}"
            )
        return proposal["value"]

    @validate("default_approval")
    def _check_approval(self, proposal: Any) -> Any:
        if proposal["value"] not in ("never", "always", "writes"):
            raise TraitError(
                f"McpMagics.default_approval must be never, always or writes, "
                f"got {proposal['value']!r}"
            )
        return proposal["value"]

    @validate("ask_with")
    def _check_ask_with(self, proposal: Any) -> Any:
        if proposal["value"] not in ("auto", "prompt"):
            raise TraitError(
                f"McpMagics.ask_with must be auto or prompt, got {proposal['value']!r}"
            )
        from .display import asking

        asking.STYLE = proposal["value"]
        return proposal["value"]

    @validate("oauth_paste")
    def _check_paste(self, proposal: Any) -> Any:
        if proposal["value"] not in ("auto", "yes", "no"):
            raise TraitError(
                f"McpMagics.oauth_paste must be auto, yes or no, got {proposal['value']!r}"
            )
        return proposal["value"]

    @validate("endpoints")
    def _check_endpoints(self, proposal: Any) -> Any:
        for name, url in proposal["value"].items():
            if not isinstance(name, str) or not isinstance(url, str) or not url.startswith(
                ("http://", "https://")
            ):
                raise TraitError(
                    f"McpMagics.endpoints maps a name to an http(s) URL, got {name!r}: {url!r}"
                )
        return proposal["value"]

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        from .agent.sampling import model_sampler
        from .display import asking

        self.oauth = OAuth(ask_redirect=asking.pasted_redirect)
        self.manager = SessionManager(
            connect_timeout=self.connect_timeout, oauth=self.oauth.for_session
        )
        # Servers' questions reach the user in the running cell (or a terminal prompt).
        self.oauth.on_main = self.manager.on_main
        requests = self.manager.client_requests
        requests.elicit = asking.elicit
        requests.approve = asking.approve
        requests.sample = model_sampler(self._sampling_model, lambda: dict(self.endpoints))
        self.observe(self._oauth_changed, names=["oauth_paste", "oauth_redirect_port"])
        self._oauth_changed({})
        self.observe(self._set_roots, names="roots")
        self._set_roots({"new": self.roots})
        self.agent: Any = None
        self.observe(self._timeout_changed, names="connect_timeout")
        self.observe(self._set_display_limit, names="display_limit")
        self._set_display_limit({"new": self.display_limit})

    def _oauth_changed(self, change: dict[str, Any]) -> None:
        self.oauth.paste = {"yes": True, "no": False}.get(self.oauth_paste)
        self.oauth.redirect_port = self.oauth_redirect_port or None

    def _sampling_model(self) -> Any:
        """The model that answers servers' sampling requests: `default_model` when set,
        else the one the notebook's %%agent uses, else `MCP_MAGIC_MODEL`."""
        from .agent.providers import default_model

        current = getattr(getattr(self.agent, "provider", None), "config", None)
        return self.default_model or current or default_model()

    def _set_roots(self, change: dict[str, Any]) -> None:
        new = change["new"]
        self.manager.client_requests.roots = None if new is None else list(new)

    def _timeout_changed(self, change: dict[str, Any]) -> None:
        self.manager.connect_timeout = change["new"]

    def _set_display_limit(self, change: dict[str, Any]) -> None:
        from .display import render

        render.DISPLAY_LIMIT = change["new"]

    def _expand(self, line: str) -> str:
        """IPython's `$name` / `{expr}` expansion, one word at a time, in linear time.

        IPython expands a whole line or, if one name is unknown, none of it; then a
        header's `$TOKEN` (meant for the environment) stopped `$url` from expanding.
        Word by word, a name the notebook does not define stays for the kernel-side
        environment expansion of headers and env values.
        """
        return expand_variables(line, self.shell.user_ns)

    @no_var_expand
    @line_magic
    def mcp(self, line: str) -> Any:
        limit = self.line_limit
        try:
            check_line_length(line, limit)
            line = self._expand(strip_comment(line))  # `%mcp connect ...  # why`
            check_line_length(line, limit)
        except config.ConfigError as exc:
            raise UsageError(str(exc)) from None
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
            raise UsageError(_one_line(str(exc))) from None
        except UsageError as exc:
            raise UsageError(_one_line(str(exc))) from None
        except McpError as exc:
            raise McpRuntimeError(_one_line(str(exc))) from None

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
            if args.header or args.transport:
                raise UsageError("--header and --transport are for a URL, not a -- COMMAND")
            spec = config.stdio_spec(command, args.env, args.cwd)
        elif args.url:
            if args.env or args.cwd:
                raise UsageError("--env and --cwd are for a -- COMMAND, not a URL")
            spec = config.http_spec(args.url, args.header, args.transport, oauth_settings(args))
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
        from .display.render import status_table

        return status_table(list(self.manager.sessions.values()))

    def _do_functions(self, parser: Any, rest: str) -> None:
        from .agent.code_mode import bind_servers, python_name, signature

        args = _parse(parser, rest)
        wanted = set(args.name or self.manager.sessions)
        for name in wanted:
            self.manager.get(name)  # an unknown server is one line
        bound = bind_servers(
            self.manager, self.shell.user_ns, lambda server, tool: server in wanted
        )
        if not bound:
            print("no connected server to bind: %mcp connect one first")
        for server, expression in bound.items():
            calls = [
                signature(server, tool).replace(python_name(server), expression, 1)
                for tool in self.manager.sessions[server].tools.values()
            ]
            print(f"{expression}: " + ", ".join(calls))

    def _do_tools(self, parser: Any, rest: str) -> Any:
        args = _parse(parser, rest)
        from .display.render import tools_table

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
            args = argparse.Namespace(target=words[0], arguments=words[1:], raw=False, all=False)
        else:
            args = parser.parser.parse_args(words)
        server, tool_name = parse_target(args.target)
        tool = self.manager.tool(server, tool_name)
        arguments = parse_tool_arguments(args.arguments, tool.input_schema)
        missing = missing_message(f"{server}.{tool_name}", arguments, tool.input_schema)
        if missing:
            raise UsageError(missing)
        progress = self._progress(f"{server}.{tool_name}")
        if args.all:
            return self._call_all(server, tool_name, tool, arguments, progress, args.raw)
        try:
            result = self.manager.call_tool(
                server, tool_name, arguments, on_progress=progress.update
            )
        finally:
            progress.close()
        if args.raw:
            from .tables.big_json import plain_rows

            return plain_rows(result)
        if view_uri(tool):  # the tool has a view (MCP Apps): show it above the value
            from .apps.widget import show_view

            show_view(self.manager, server, tool_name, arguments, result)
        return self._tool_value(server, tool_name, result, tool)

    def _call_all(self, server: str, name: str, tool: Any, arguments: dict[str, Any],
                  progress: Progress, raw: bool) -> Any:
        from .host.paging import call_pages, page_tool_problem

        problem = page_tool_problem(tool.input_schema) or ("--raw and --all do not go together"
                                                           if raw else None)
        if problem:
            progress.close()
            raise UsageError(f"--all: {problem}")
        try:
            frame = call_pages(lambda page: self._page_value(server, name, page), arguments,
                               progress=progress.update)
        finally:
            progress.close()
        return tool_value(frame)

    def _page_value(self, server: str, tool: str, arguments: dict[str, Any]) -> Any:
        from .tables.results import interpret

        result = self.manager.call_tool(server, tool, arguments)
        definition = self.manager.sessions[server].tools.get(tool)
        outcome = interpret(result, tool, getattr(definition, "output_schema", None))
        if outcome.error is not None:
            raise McpRuntimeError(f"{server}.{tool}: {outcome.error}")
        return outcome.value

    def _progress(self, label: str) -> Progress:
        return Progress(label, self._progress_place)

    def _progress_place(self) -> str | None:
        """Where a call's progress bar goes: asked only when a slow call reports progress."""
        if not self.show_progress:
            return None
        kernel = getattr(self.shell, "kernel", None)
        if kernel is not None and not getattr(kernel, "_allow_stdin", True):
            # Run by nbclient (nbval, papermill): nobody watches the bar, and whether it
            # appeared would depend on the machine's speed, changing the saved outputs.
            return None
        return "terminal" if type(self.shell).__name__ == "TerminalInteractiveShell" else "notebook"

    def _tool_value(self, server: str, tool: str, result: Any, definition: Any = None) -> Any:
        from .tables.results import interpret

        if definition is None:
            definition = self.manager.sessions[server].tools.get(tool)
        outcome = interpret(result, tool, getattr(definition, "output_schema", None))
        if outcome.error is not None:
            raise McpRuntimeError(f"{server}.{tool}: {outcome.error}")
        if outcome.notices:
            from IPython.display import display

            from .display.render import ServerNotes

            display(ServerNotes(outcome.notices))
        return tool_value(outcome.value)

    def _do_resources(self, parser: Any, rest: str) -> Any:
        args = _parse(parser, rest)
        from .display.render import Table

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
        from .display.render import ToolText

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
        from .display.render import Table

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
        from .display.render import ToolText

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
        from .display.render import ToolText

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

    def _do_auth(self, parser: Any, rest: str) -> None:
        args = _parse(parser, rest)
        if args.action == "logout":
            if not args.name:
                raise UsageError("usage: %mcp auth logout NAME")
            found = self.oauth.logout(args.name)
            print(f"Forgot the OAuth tokens of {args.name!r}." if found
                  else f"{args.name!r} holds no OAuth tokens.")
            return
        print(format_summary(self.oauth.summary()))

    def _do_reconnect(self, parser: Any, rest: str) -> None:
        args = _parse(parser, rest)
        session = self.manager.reconnect(args.name)
        print(f"Reconnected {args.name!r}: {len(session.tools)} tools, pid {session.pid or '-'}")

    def _server_names(self, name: str | None) -> list[str]:
        if name:
            self.manager.connected(name)
            return [name]
        return [n for n, s in self.manager.sessions.items() if s.state == "connected"]

    # -- %%agent -----------------------------------------------------------------

    @no_var_expand
    @line_cell_magic
    def agent(self, line: str, cell: str | None = None) -> None:
        from .agent.loop import PromptError
        from .agent.providers.base import ProviderError

        if cell is None and (sub := agent_subcommand(line)) is not None:
            return self._agent_subcommand(*sub)
        line = self._expand(line)
        try:
            args, prompt = self._agent_line(line, cell)
            self._run_agent(args, prompt, _cell_key(line, cell))
        except (PromptError, config.ConfigError) as exc:
            raise UsageError(str(exc)) from None
        except (ProviderError, McpError) as exc:
            raise McpRuntimeError(str(exc)) from None

    agent.__doc__ = "\n\n".join(
        dedent(f.__doc__ or "") for f in (_agent_args, _agent_log_args, _agent_export_args)
    )

    def _agent_line(self, line: str, cell: str | None) -> tuple[Any, str]:
        if cell is not None:
            return _agent_args.parser.parse_args(_split(line)), cell
        return self._agent_one_line(line)

    def _agent_one_line(self, line: str) -> tuple[Any, str]:
        """`%agent [MODEL] [options] PROMPT`: the prompt is the raw rest of the line.

        Only the leading model and options are split like a shell, so a prompt with an
        apostrophe ("what's ...") needs no quoting.
        """
        parser = _agent_args.parser
        takes_value = {
            flag: action.nargs != 0 for action in parser._actions for flag in action.option_strings
        }
        tokens = list(re.finditer(r"\"[^\"]*\"|'[^']*'|\S+", line))
        leading: list[str] = []
        prompt = ""
        index = 0
        has_model = False
        while index < len(tokens):
            word = tokens[index].group()
            flag = word.split("=", 1)[0]
            if word == "--":
                prompt = line[tokens[index].end() :]
                break
            if flag in takes_value:
                leading.append(word)
                if takes_value[flag] and "=" not in word and index + 1 < len(tokens):
                    index += 1
                    leading.append(tokens[index].group())
            elif not has_model and self._looks_like_model(word):
                leading.append(word)  # before or after the options
                has_model = True
            else:
                prompt = line[tokens[index].start() :]
                break
            index += 1
        return parser.parse_args(_split(" ".join(leading))), prompt.strip()

    def _looks_like_model(self, word: str) -> bool:
        from .agent.providers import PROVIDERS

        provider, sep, model = word.partition(":")
        if bool(sep and model) and (provider in PROVIDERS or provider in self.endpoints):
            return True
        # Shaped like provider:model: taken as one, so a typo says "unknown provider"
        # as in the cell form, rather than becoming part of the question.
        return bool(_MODEL_WORD.fullmatch(word))

    def _agent_subcommand(self, name: str, rest: str) -> Any:
        parser = AGENT_SUBCOMMANDS[name]
        args = parser.parser.parse_args(_split(self._expand(rest)))
        log = self.agent.log if self.agent is not None else None
        if log is None or not log.runs:
            raise UsageError("no agent runs yet in this notebook: run %%agent first")
        try:
            run = log.get(args.run)  # the last one without --run
        except LookupError as exc:
            raise UsageError(str(exc)) from None
        if name == "log":
            if args.save:
                try:
                    count = log.save(args.save, run.id if args.run else None)
                except OSError as exc:
                    raise UsageError(f"cannot write {args.save}: {exc.strerror or exc}") from None
                runs = 1 if args.run else len(log.runs)
                print(f"Wrote {count} steps of {runs} run{'s' if runs > 1 else ''} to {args.save}.")
                return None
            return log.frame(run.id if args.run else None)
        from .agent.export import export_run

        code = export_run(run, self._input_schema)
        if args.to:
            try:
                with open(args.to, "w", encoding="utf-8") as handle:
                    handle.write(code)
            except OSError as exc:
                raise UsageError(f"cannot write {args.to}: {exc.strerror or exc}") from None
            print(f"Wrote run {run.id} as code to {args.to}.")
            return None
        self.shell.set_next_input(code.rstrip("\n"), replace=False)
        print(f"Run {run.id} as code is in the next cell (or use --to FILE).")
        return None

    def _input_schema(self, server: str, tool: str) -> Any:
        session = self.manager.sessions.get(server)
        definition = session.tools.get(tool) if session is not None else None
        return getattr(definition, "input_schema", None)

    def _cell_id(self) -> str | None:
        """The frontend's id of the running cell (JupyterLab, Notebook 7 send it)."""
        kernel = getattr(self.shell, "kernel", None)
        try:
            parent = kernel.get_parent() if kernel is not None else None
        except Exception:
            parent = None
        cell_id = ((parent or {}).get("metadata") or {}).get("cellId")
        return cell_id if isinstance(cell_id, str) and cell_id else None

    def _run_agent(self, args: Any, template: str, text_key: str = "") -> None:
        from .agent.driver import run_agent, run_code_request
        from .agent.loop import AgentOptions, interpolate
        from .agent.providers import default_model
        from .display.asking import approve_call, approve_code

        model = args.model or self.default_model or default_model()
        if not model:
            raise UsageError(
                "no model: give one (%%agent openrouter:openai/gpt-4o-mini), set "
                "%config McpMagics.default_model, or export MCP_MAGIC_MODEL"
            )
        for name in ("max_steps", "idle_timeout", "run_timeout"):
            if not getattr(self, name) > 0:
                raise UsageError(f"%config McpMagics.{name} must be above 0")
        prompt = interpolate(template, self.shell.user_ns).strip()
        if not prompt:
            raise UsageError("the prompt is empty: write the question in the cell")
        agent = self._agent_for(model, args.base_url)
        if args.new:
            agent.reset()
        options = AgentOptions(
            allow=args.allow or [],
            deny=args.deny or [],
            max_steps=args.max_steps if args.max_steps is not None else self.max_steps,
            approval=args.approve or self.default_approval,
            system=args.system,
            temperature=args.temperature,
            stream=not args.no_stream,
            results_prefix=_results_prefix(args.results),
            max_tokens_total=args.max_tokens_total or self.max_tokens_total or None,
            cell_id=(cell_id := self._cell_id()),
            cell_key=cell_id or text_key or None,
            execution_count=getattr(self.shell, "execution_count", None),
            reserved_names=frozenset({args.out or "answer"}),
            hosted=args.hosted or "auto",
            server_descriptions=dict(_key_value(d) for d in args.describe or []),
            idle_timeout=self.idle_timeout,
            run_timeout=self.run_timeout,
            code=self.code_mode if args.code is None else args.code,
            code_approval=args.approve != "never",  # said in the cell, not a default
        )
        view = self._agent_view()
        namespace = self.shell.user_ns
        try:
            result = run_agent(
                self.manager,
                agent,
                prompt,
                options,
                view.handle,
                approve_call,
                idle=view.tick,
                code=lambda request: run_code_request(request, namespace, approve_code),
            )
        finally:
            view.close()
        self.shell.user_ns[args.out or "answer"] = result.text

    def _agent_for(self, model: str, base_url: str | None) -> Any:
        """The notebook's agent; a new model keeps the conversation."""
        from .agent.loop import agent_for
        from .agent.providers import ProviderError, resolve

        try:
            config_ = resolve(model, base_url=base_url, aliases=dict(self.endpoints))
        except ProviderError as exc:  # what was typed or set up: the model, its key
            raise UsageError(str(exc)) from None
        self.agent = agent_for(self.agent, self.manager, config_, self.shell.user_ns)
        return self.agent

    def _agent_view(self) -> Any:
        from .display.agent_view import AgentView

        terminal = type(self.shell).__name__ == "TerminalInteractiveShell"
        live = not terminal and getattr(self.shell, "kernel", None) is not None
        return AgentView(live=live, terminal=terminal, manager=self.manager)

    def close(self) -> None:
        if self.agent is not None and self.manager._loop is not None:
            with contextlib.suppress(Exception):
                self.manager.run(self.agent.provider.aclose(), timeout=5)
            self.agent = None
        self.manager.close()


def _cell_key(line: str, cell: str | None) -> str:
    """Where no frontend sends a cell id (terminal, nbclient): the cell's text, so the
    same cell run again names its tables the same."""
    import hashlib

    return "text-" + hashlib.sha1(f"{line}\n{cell or ''}".encode()).hexdigest()[:16]


def _results_prefix(prefix: str | None) -> str:
    if prefix is None:
        return "result"
    from .agent.naming import problem

    if problem(prefix):
        raise UsageError(f"--results {prefix!r}: the prefix must be a Python name")
    return prefix


def oauth_settings(args: Any) -> OAuthSettings | None:
    """`--client-id/--client-secret/--scopes/--client-credentials`, if any were given."""
    if args.client_credentials and not args.client_id:
        raise UsageError("--client-credentials needs --client-id and --client-secret")
    port = getattr(args, "redirect_port", None)
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--redirect-port must be a port number (1-65535), got {port}")
    paste = True if getattr(args, "paste", False) else None
    if not (args.client_id or args.client_secret or args.scopes or port or paste):
        return None
    return OAuthSettings(
        client_id=args.client_id,
        client_secret=config.expand_vars(args.client_secret) if args.client_secret else None,
        scopes=args.scopes,
        grant="client_credentials" if args.client_credentials else "authorization_code",
        redirect_port=port,
        paste=paste,
    )


def _settings_help() -> str:
    """The `%config McpMagics.NAME = VALUE` settings, for `%mcp?`."""
    lines = ["", "", "Settings (%config McpMagics.NAME = VALUE):", ""]
    for name, trait in McpMagics.class_traits(config=True).items():
        lines.append(f"  {name} (default {trait.default()!r}): {trait.help}")
    return "\n".join(lines)


McpMagics.mcp.__doc__ = (McpMagics.mcp.__doc__ or "") + _settings_help()
