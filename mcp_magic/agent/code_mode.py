"""Code mode: the model writes Python that runs in the kernel, and MCP tools are functions.

The loop offers the model one tool, `notebook__run_python`. Its code runs on the kernel's
main thread (see `driver.py`), in the notebook's namespace, after the user approved it.
Every connected server is an object there whose tools are ordinary functions:
`data.query_db(sql=...)` returns what `%mcp call data.query_db sql=...` returns (a
DataFrame for tables: the same `results.interpret`). Intermediate data stays in the
kernel; the model is told only what the code printed and a bounded preview of its value.

A server object is bound under its own name only when that name is free (or already
holds one of these objects): a user's variable `data` is never shadowed. All of them are
also under `mcp_servers.NAME`, and the model is told which names to use.
"""

from __future__ import annotations

import ast
import contextlib
import io
import keyword
import re
import time
import traceback
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from ..apps import visible_to_model
from ..host.sessions import McpError, SessionManager
from .events import CodeFinished
from .notebook_tools import dataframes, is_frame

CODE_SERVER = "notebook"
CODE_TOOL = "run_python"
REGISTRY = "mcp_servers"
OUTPUT_LIMIT = 20_000  # characters of printed output kept for the block
MODEL_OUTPUT_LIMIT = 4_000  # ... and told to the model
VALUE_LIMIT = 2_000  # characters of a non-table value's repr told to the model


class ToolError(McpError):
    """A tool called from code answered with an error (or could not be called)."""


class ServerGone(McpError, AttributeError):
    """The server behind a server object is no longer connected.

    An AttributeError too, so that probes such as `hasattr(x, "to_csv")` over the
    notebook's variables pass a stale server object by instead of failing.
    """


# ---------------------------------------------------------------------------
# servers as objects


def python_name(server: str) -> str:
    """A server name as a Python identifier: `my-db` → `my_db`, `class` → `class_`."""
    name = re.sub(r"\W", "_", server)
    if not name or name[0].isdigit():
        name = "_" + name
    return name + "_" if keyword.iskeyword(name) else name


class ToolFunction:
    """One MCP tool as a function: keyword arguments (or positional, in schema order)."""

    def __init__(self, manager: SessionManager, server: str, tool: Any) -> None:
        self._manager = manager
        self._server = server
        self._tool = tool
        self.__name__ = tool.name
        self.__doc__ = f"{signature(server, tool)}\n\n{(tool.description or '').strip()}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ..host.arguments import missing_message
        from ..tables.results import interpret

        schema = self._tool.input_schema or {}
        names = list(schema.get("properties") or {})
        if len(args) > len(names):
            raise TypeError(
                f"{self._server}.{self._tool.name} takes at most {len(names)} "
                f"positional arguments ({', '.join(names) or 'none'})"
            )
        arguments = {**dict(zip(names, args)), **kwargs}
        target = f"{self._server}.{self._tool.name}"
        missing = missing_message(target, arguments, schema)
        if missing:
            raise ToolError(missing)
        result = self._manager.call_tool(self._server, self._tool.name, arguments)
        outcome = interpret(result, self._tool.name, self._tool.output_schema)
        if outcome.error is not None:
            raise ToolError(f"{target}: {outcome.error}")
        for note in outcome.notices:  # rows cut by a limit, warnings: the model must know
            print(f"[{target}] {note}")
        return outcome.value

    def __repr__(self) -> str:
        return f"<MCP tool {signature(self._server, self._tool)}>"


Policy = Callable[[str, str], bool]  # (server, tool) → allowed

_run_policy: Policy | None = None
"""The allow/deny of the agent run that bound the servers last (one run at a time)."""
_enforced: Policy | None = None
"""Set while the model's code runs: the proxies obey the run's --allow/--deny then.
The user's own cells call any tool, as `%mcp call` does."""


@contextlib.contextmanager
def _enforcing() -> Iterator[None]:
    global _enforced
    _enforced = _run_policy or (lambda server, tool: True)
    try:
        yield
    finally:
        _enforced = None


class ServerProxy:
    """A connected MCP server: its tools as attributes (in the model's code, those the
    run allows; a proxy left in the namespace by an earlier run obeys the current one)."""

    def __init__(self, manager: SessionManager, server: str) -> None:
        self._manager = manager
        self._server = server

    def _tools(self) -> dict[str, Any]:
        session = self._manager.sessions.get(self._server)
        tools = session.tools if session is not None else {}
        policy = _enforced
        return {n: t for n, t in tools.items() if policy is None or policy(self._server, n)}

    def __getattr__(self, name: str) -> ToolFunction:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            session = self._manager.connected(self._server)
        except McpError as exc:  # a dead or disconnected server says so, in one line
            raise ServerGone(str(exc)) from None
        tools = self._tools()
        if name not in tools:
            if name in session.tools:
                raise AttributeError(f"{self._server}.{name} is not allowed in this run")
            known = ", ".join(sorted(tools)) or "none"
            raise AttributeError(f"server {self._server!r} has no tool {name!r} ({known})")
        return ToolFunction(self._manager, self._server, tools[name])

    def __dir__(self) -> list[str]:
        return sorted(self._tools())

    def __repr__(self) -> str:
        return f"<MCP server {self._server}: {', '.join(sorted(self._tools())) or 'no tools'}>"


class Servers:
    """`mcp_servers`: every server object by its Python name, even a shadowed one."""

    def __init__(self, proxies: dict[str, ServerProxy]) -> None:
        self.__dict__.update(proxies)

    def __repr__(self) -> str:
        return f"<MCP servers: {', '.join(sorted(self.__dict__)) or 'none'}>"


def bind_servers(
    manager: SessionManager,
    namespace: MutableMapping[str, Any],
    allowed: Policy,
) -> dict[str, str]:
    """Put the server objects into the namespace; returns server → the expression to use.

    A name is taken only if it is free or already holds a server object (from an earlier
    run); otherwise the server is reachable as `mcp_servers.NAME` alone. `allowed` is
    the run's --allow/--deny, enforced while the model's code runs (`run_code`).
    """
    global _run_policy
    _run_policy = allowed
    proxies: dict[str, ServerProxy] = {}
    servers: dict[str, str] = {}
    for name, session in manager.sessions.items():
        if session.state != "connected":
            continue
        if not any(allowed(name, tool) for tool in session.tools):
            continue
        attribute = python_name(name)
        proxies[attribute] = ServerProxy(manager, name)
        current = namespace.get(attribute, None)
        if attribute not in namespace or isinstance(current, ServerProxy):
            namespace[attribute] = proxies[attribute]
            servers[name] = attribute
        else:
            servers[name] = f"{REGISTRY}.{attribute}"
    current = namespace.get(REGISTRY)
    if REGISTRY not in namespace or isinstance(current, Servers):
        namespace[REGISTRY] = Servers(proxies)
    if "pd" not in namespace:  # the code may use pandas as `pd` (never replacing a `pd`)
        import pandas

        namespace["pd"] = pandas
    return servers


def signature(server: str, tool: Any) -> str:
    """`data.query_db(sql: str, limit: int = ...)`: required parameters first."""
    schema = tool.input_schema or {}
    required = list(schema.get("required") or [])
    kinds = {"string": "str", "integer": "int", "number": "float", "boolean": "bool",
             "array": "list", "object": "dict"}  # fmt: skip
    parts = []
    properties = schema.get("properties") or {}
    for name in sorted(properties, key=lambda n: n not in required):
        kind = properties[name].get("type") if isinstance(properties[name], dict) else None
        text = f"{name}: {kinds.get(kind, 'Any')}" if isinstance(kind, str) else name
        parts.append(text if name in required else f"{text} = ...")
    return f"{python_name(server)}.{tool.name}({', '.join(parts)})"


def _first_sentence(text: str, limit: int = 80) -> str:
    line = " ".join((text or "").split())
    match = re.match(r"(.+?[.!?])(\s|$)", line)
    line = match.group(1) if match else line
    return line if len(line) <= limit else line[: limit - 1] + "…"


def tool_description(
    manager: SessionManager,
    servers: dict[str, str],
    allowed: Callable[[str, str], bool],
    namespace: MutableMapping[str, Any],
) -> str:
    """What the model is told about the code tool: the functions, compactly, and the tables."""
    lines = [
        "Run Python in the user's Jupyter kernel; variables you create stay in the notebook. "
        "`pd` is pandas. Server tools are functions returning DataFrames for tables. Keep "
        "data in variables and print only what you need: you see printed output and a "
        "preview of the last expression. help(fn) shows a tool's parameters.",
    ]
    for server, expression in servers.items():
        session = manager.sessions[server]
        lines.append(f"Server `{expression}`:")
        for name, tool in session.tools.items():
            if not allowed(server, name) or not visible_to_model(tool):
                continue
            call = signature(server, tool).replace(python_name(server), expression, 1)
            lines.append(f"- {call}: {_first_sentence(tool.description or '')}")
    frames = [
        f"{name} ({value.shape[0]}×{value.shape[1]})"
        for name, value in dataframes(namespace).items()
    ]
    if frames:
        lines.append("DataFrames in the notebook: " + ", ".join(frames[:30]))
    return "\n".join(lines)


def code_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "Python source to run."}},
        "required": ["code"],
    }


# ---------------------------------------------------------------------------
# running code (on the main thread)


class _Bounded(io.TextIOBase):
    """A text stream keeping the first `limit` characters and counting the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def text(self) -> str:
        body = "".join(self.parts)
        return body + (f"\n[... {self.dropped:,} more characters not kept]" if self.dropped else "")


_counter = iter(range(1, 1 << 62))


def run_code(
    code: str, namespace: MutableMapping[str, Any], call_id: str = "", edited: bool = False
) -> CodeFinished:
    """Run `code` in `namespace`: printed output (bounded), the last expression's value,
    the names it created or rebound, or the error in one line.

    A KeyboardInterrupt (the stop button) is not caught: the caller ends the run.
    """
    started = time.monotonic()
    filename = f"<agent code {next(_counter)}>"
    before = {name: id(value) for name, value in namespace.items()}
    capture = _Bounded(OUTPUT_LIMIT)
    value: Any = None
    error: str | None = None
    try:
        tree = ast.parse(code, filename, "exec")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        with _enforcing(), contextlib.redirect_stdout(capture), contextlib.redirect_stderr(capture):
            exec(compile(tree, filename, "exec"), namespace)  # noqa: S102 - approved code
            if last is not None:
                expression = ast.Expression(last.value)
                value = eval(compile(expression, filename, "eval"), namespace)  # noqa: S307
    except SyntaxError as exc:
        error = f"SyntaxError: {exc.msg} (line {exc.lineno})"
    except Exception as exc:
        error = _one_line(exc, filename)
    changed = [
        name
        for name, value_ in namespace.items()
        if not name.startswith("_")
        and before.get(name) != id(value_)
        and not isinstance(value_, (ServerProxy, Servers))
    ]
    return CodeFinished(
        call_id,
        "error" if error else "ok",
        code,
        duration=time.monotonic() - started,
        output=capture.text(),
        result=value,
        variables=changed,
        error=error,
        edited=edited,
    )


def _one_line(exc: BaseException, filename: str) -> str:
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[-1]}" if text else type(exc).__name__
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    return f"{line} (line {frames[-1].lineno})" if frames else line


# ---------------------------------------------------------------------------
# what the model is told


def last_name(code: str) -> str | None:
    """The name the code's last expression is, if it is a bare name (`merged`)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        node = tree.body[-1].value
        if isinstance(node, ast.Name):
            return node.id
    return None


def value_preview(value: Any, name: str | None, max_rows: int = 30) -> str:
    """A bounded account of a value: DataFrames as `results.frame_for_model` tells them."""
    if is_frame(value):
        from ..tables.results import frame_for_model

        return frame_for_model(value, name, max_rows=max_rows)
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not end the run
        text = f"<{type(value).__name__}: repr failed: {exc}>"
    if len(text) > VALUE_LIMIT:
        text = text[:VALUE_LIMIT] + f"… ({len(text):,} characters in all)"
    return text


def report_for_model(
    finished: CodeFinished, namespace: MutableMapping[str, Any], max_rows: int = 30
) -> str:
    """What the model gets back for one code block."""
    if finished.status == "denied":
        return (
            f"Not run: {finished.error or 'the user denied this code'}. Do not retry it; "
            "ask or continue."
        )
    parts = []
    if finished.edited:
        parts.append(
            f"The user edited your code before it ran. What ran:\n```\n{finished.code}\n```"
        )
    output = finished.output
    if len(output) > MODEL_OUTPUT_LIMIT:
        output = output[:MODEL_OUTPUT_LIMIT] + f"\n[... cut at {MODEL_OUTPUT_LIMIT} characters]"
    if output.strip():
        parts.append(f"Output:\n{output.rstrip()}")
    if finished.status == "error":
        parts.append(f"Error: {finished.error}")
    elif finished.status == "cancelled":
        parts.append("Cancelled: the user stopped the code.")
    elif finished.result is not None:
        parts.append(f"Value: {value_preview(finished.result, last_name(finished.code), max_rows)}")
    if finished.variables:
        described = []
        for name in finished.variables[:20]:
            value = namespace.get(name)
            kind = (
                f"DataFrame {value.shape[0]}×{value.shape[1]}"
                if is_frame(value)
                else type(value).__name__
            )
            described.append(f"{name} ({kind})")
        parts.append("Notebook variables set: " + ", ".join(described))
    return "\n".join(parts) or "Ran; no output and no value."
