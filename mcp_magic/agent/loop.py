"""The tool-calling loop, provider-neutral.

Gather tools from the allowed sessions, send the conversation, run every tool call
the model asks for (concurrently, each validated first), append the results, and go
again until the model answers in text or the step limit is reached. The loop runs on
the session thread and only publishes events; it never touches the display.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import json
import re
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from ..apps import visible_to_model
from ..host.config import HttpSpec, expand_vars
from ..host.sessions import McpError, Session, SessionManager
from ..tables.results import frame_for_model, interpret
from . import naming
from .events import (
    ApprovalRequest,
    CodeFinished,
    CodeRequest,
    Decision,
    Event,
    ModelReply,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    UsageReport,
)
from .providers.base import (
    HostedMcpServer,
    Message,
    Provider,
    ProviderError,
    Request,
    ToolCall,
    ToolSpec,
    Usage,
)
from .runlog import RunLog, recording

ApprovalMode = Literal["never", "always", "writes"]
HostedMode = Literal["auto", "always", "never"]

NAME_LIMIT = 64
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")

DEFAULT_SYSTEM = (
    "You are a data analysis assistant working inside a Jupyter notebook. Use the tools "
    "to look things up instead of guessing. Tables that tools return are kept in notebook "
    "variables whose names you are told (name them with `result_name`); mention them "
    "when they hold what the user needs."
)


@dataclass
class AgentOptions:
    """One `%%agent` run's settings (the magic's options, or the Python API's kwargs)."""

    allow: list[str] = field(default_factory=list)  # globs on "server" or "server.tool"
    deny: list[str] = field(default_factory=list)
    max_steps: int = 10
    approval: ApprovalMode = "never"
    system: str | None = None
    temperature: float | None = None
    stream: bool = True
    results_prefix: str = "result"  # for tables the model leaves unnamed: result_1, ...
    hosted: HostedMode = "auto"
    server_descriptions: dict[str, str] = field(default_factory=dict)
    max_table_rows_inline: int = 30
    max_result_chars: int = 20_000
    # Seconds a model reply may go without data (None: the provider's own, 60 s).
    idle_timeout: float | None = None
    run_timeout: float = 600.0  # seconds for the whole run (time waiting for approval aside)
    # Code mode: the model runs Python in the kernel (code_mode.py); each block is asked
    # about unless approval was explicitly switched off.
    code: bool = False
    code_approval: bool = True
    # Tokens (in + out) one run may use; a request that would pass it is not sent.
    max_tokens_total: int | None = None
    # Where the run was asked: the frontend's cell id (if any), a key that stays the same
    # when the cell is re-run (names its tables), and the execution count.
    cell_id: str | None = None
    cell_key: str | None = None
    execution_count: int | None = None
    # Names the caller binds after the run (the answer's text): never given to a table.
    reserved_names: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"max_steps must be a whole number from 1 up, not {self.max_steps!r}")
        for name in ("idle_timeout", "run_timeout"):
            value = getattr(self, name)
            if value is None and name == "idle_timeout":
                continue
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a number of seconds above 0, not {value!r}")
        budget = self.max_tokens_total
        if budget is not None and (not isinstance(budget, int) or budget < 1):
            raise ValueError(f"max_tokens_total must be a whole number from 1 up, not {budget!r}")


class RunTimeout(ProviderError):
    """The run went past its `run_timeout`."""


@dataclass
class BoundTool:
    """A tool offered to the model, and where it really lives."""

    qualified: str
    server: str
    tool: str
    schema: dict[str, Any]
    read_only: bool
    description: str
    output_schema: dict[str, Any] | None = None


@dataclass
class RunResult:
    """What one run produced."""

    text: str
    usage: Usage
    steps: int
    variables: dict[str, Any] = field(default_factory=dict)
    stopped_early: bool = False


def qualify(server: str, tool: str, taken: set[str]) -> str:
    """`server__tool`, sanitized for every provider's name rules, unique among `taken`.

    Allowed: letters, digits, `_` and `-`, starting with a letter, at most 64 characters
    (the strictest of OpenAI, Anthropic and Gemini). Clashes and cut names get a short hash.
    """
    raw = f"{server}__{tool}"
    name = _NAME_CHARS.sub("_", raw)
    if not name[:1].isalpha():
        name = "t_" + name
    digest = hashlib.sha1(raw.encode()).hexdigest()[:6]
    if len(name) > NAME_LIMIT:
        name = f"{name[: NAME_LIMIT - 7]}_{digest}"
    if name in taken:
        name = f"{name[: NAME_LIMIT - 7]}_{digest}"
    counter = 2
    base = name
    while name in taken:
        name = f"{base[: NAME_LIMIT - 3]}_{counter}"
        counter += 1
    return name


def _matches(server: str, tool: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        target = f"{server}.{tool}" if "." in pattern else server
        if fnmatch.fnmatchcase(target, pattern) or fnmatch.fnmatchcase(f"{server}.{tool}", pattern):
            return True
    return False


def is_allowed(server: str, tool: str, allow: list[str], deny: list[str]) -> bool:
    if allow and not _matches(server, tool, allow):
        return False
    return not (deny and _matches(server, tool, deny))


def _is_public_url(url: str) -> bool:
    import ipaddress

    host = urlsplit(url).hostname or ""
    if host in ("localhost", "") or host.endswith(".local"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return not (address.is_loopback or address.is_private or address.is_link_local)


class Agent:
    """A conversation with one model, using the tools of a SessionManager's servers."""

    def __init__(
        self,
        manager: SessionManager,
        provider: Provider,
        namespace: MutableMapping[str, Any] | None = None,
    ) -> None:
        self.manager = manager
        self.provider = provider
        self.namespace = namespace if namespace is not None else {}
        self.messages: list[Message] = []
        self.usage = Usage()
        self._deadline = 0.0  # time.monotonic() by which the current run must end
        self.names = naming.Names()  # who bound which table, so no run overwrites another's
        self.log = RunLog()

    def reset(self) -> None:
        self.messages.clear()

    # -- tools -----------------------------------------------------------------

    def gather_tools(
        self, options: AgentOptions
    ) -> tuple[dict[str, BoundTool], list[HostedMcpServer], list[Session]]:
        bound: dict[str, BoundTool] = {}
        hosted: list[HostedMcpServer] = []
        used: list[Session] = []
        for session in self.manager.sessions.values():
            if session.state != "connected":
                continue
            if self._host_remotely(session, options):
                names = [
                    t
                    for t in session.tools
                    if is_allowed(session.name, t, options.allow, options.deny)
                ]
                if names:
                    hosted.append(self._hosted_server(session, options, names))
                    used.append(session)
                continue
            offered = False
            for tool in session.tools.values():
                if not is_allowed(session.name, tool.name, options.allow, options.deny):
                    continue
                if not visible_to_model(tool):  # a tool its view calls, not for the model
                    continue
                name = qualify(session.name, tool.name, set(bound))
                annotations = tool.annotations
                bound[name] = BoundTool(
                    qualified=name,
                    server=session.name,
                    tool=tool.name,
                    schema=tool.input_schema or {"type": "object", "properties": {}},
                    read_only=bool(annotations and annotations.read_only_hint),
                    description=(tool.description or tool.title or tool.name).strip(),
                    output_schema=tool.output_schema,
                )
                offered = True
            if offered:
                used.append(session)
        self._add_notebook_tools(bound, options)
        return bound, hosted, used

    def _add_notebook_tools(self, bound: dict[str, BoundTool], options: AgentOptions) -> None:
        """The built-in `notebook` tools (notebook_tools.py), under the same allow/deny.

        In code mode the model gets only `notebook.run_python`: the servers' tools are
        functions inside its code, and it can look at DataFrames with pandas.
        """
        from . import code_mode, notebook_tools

        if notebook_tools.SERVER in self.manager.sessions:
            return  # a real server of that name wins; its tools are offered as usual
        server = notebook_tools.SERVER
        if options.code:
            bound.clear()
            if not is_allowed(server, code_mode.CODE_TOOL, options.allow, options.deny):
                return

            def allowed(name: str, tool: str) -> bool:
                return is_allowed(name, tool, options.allow, options.deny)

            servers = code_mode.bind_servers(self.manager, self.namespace, allowed)
            name = qualify(server, code_mode.CODE_TOOL, set())
            bound[name] = BoundTool(
                name,
                server,
                code_mode.CODE_TOOL,
                code_mode.code_schema(),
                read_only=False,
                description=code_mode.tool_description(
                    self.manager, servers, allowed, self.namespace
                ),
            )
            return
        if not notebook_tools.dataframes(self.namespace):
            return
        for tool in notebook_tools.TOOLS:
            if is_allowed(server, tool.name, options.allow, options.deny):
                name = qualify(server, tool.name, set(bound))
                bound[name] = BoundTool(
                    name, server, tool.name, tool.input_schema, True, tool.description
                )

    def _host_remotely(self, session: Session, options: AgentOptions) -> bool:
        """Whether the provider should call this server itself (Responses API `type: mcp`)."""
        info = getattr(getattr(self.provider, "config", None), "info", None)
        spec = session.spec
        if options.hosted == "never" or info is None or info.wire != "responses":
            return False
        if not isinstance(spec, HttpSpec) or spec.transport not in info.hosted_transports:
            return False
        return options.hosted == "always" or _is_public_url(spec.url)

    def _hosted_server(
        self, session: Session, options: AgentOptions, tools: list[str]
    ) -> HostedMcpServer:
        spec = session.spec
        assert isinstance(spec, HttpSpec)
        description = options.server_descriptions.get(session.name) or (session.instructions or "")
        return HostedMcpServer(
            label=session.name,
            url=spec.url,
            description=description.strip()[:500],
            headers={k: expand_vars(v) for k, v in spec.headers.items()},
            allowed_tools=tools if len(tools) < len(session.tools) else None,
        )

    def system_prompt(self, options: AgentOptions, sessions: list[Session]) -> str:
        parts = [options.system or DEFAULT_SYSTEM]
        for session in sessions:
            about = [options.server_descriptions.get(session.name, ""), session.instructions or ""]
            about = [a.strip() for a in about if a and a.strip()]
            if about:
                parts.append(f"Server `{session.name}`: " + " ".join(about))
        return "\n\n".join(parts)

    # -- the loop --------------------------------------------------------------

    async def run(
        self, prompt: str, options: AgentOptions, publish: Callable[[Event], None]
    ) -> RunResult:
        # jsonschema and pandas take ~1 s to import; doing it on this thread during the
        # first tool calls would stall every call running beside them.
        asyncio.get_running_loop().run_in_executor(None, _warm_imports)
        await self.manager.arefresh_stale_tools()
        tools, hosted, sessions = self.gather_tools(options)
        specs = [
            ToolSpec(t.qualified, t.description, naming.offer(t.schema)) for t in tools.values()
        ]
        system = self.system_prompt(options, sessions)
        start = len(self.messages)
        self.messages.append(Message(role="user", content=prompt))
        usage = Usage()
        reported = False
        replied = False
        variables: dict[str, str | None] = {}  # name → the name the model proposed
        model = f"{self.provider.name}:{self.provider.model}"
        recorder = self.log.start(
            prompt, model, self._secrets(), options.cell_id, options.execution_count
        )
        publish = recording(recorder, publish)
        cell = options.cell_key or f"run-{recorder.run.id}"
        self.names.reserved = set(options.reserved_names)
        budget = TokenBudget(options.max_tokens_total)
        served: str | None = None
        status = "interrupted"
        if hasattr(self.provider, "on_retry"):
            self.provider.on_retry = lambda reason, wait: publish(
                Notice(f"{self.provider.name}: {reason}; retrying in {wait:.1f} s", "warning")
            )
        if hasattr(self.provider, "on_notice"):
            self.provider.on_notice = lambda text: publish(Notice(text, "warning"))
        self._deadline = time.monotonic() + options.run_timeout
        text = ""
        step = 0
        answered = False
        try:
            while step < options.max_steps:
                step += 1
                request = Request(
                    messages=list(self.messages),
                    tools=specs,
                    system=system,
                    temperature=options.temperature,
                    stream=options.stream,
                    hosted_servers=hosted,
                    idle_timeout=options.idle_timeout,
                    deadline=self._deadline,
                )
                over = budget.refuse(request, usage)
                if over:
                    publish(Notice(over, level="warning"))
                    break
                asked = time.monotonic()
                turn = await self._complete(request, options, publish)
                budget.replied(request, turn.usage)
                usage.add(turn.usage)
                reported = reported or turn.usage is not None
                replied = True
                served = turn.model or served
                publish(
                    ModelReply(
                        step,
                        turn.text,
                        len(turn.tool_calls),
                        turn.usage,
                        time.monotonic() - asked,
                    )
                )
                for call in turn.hosted_calls:
                    self._publish_hosted(call, publish)
                text = turn.text
                self.messages.append(
                    Message(
                        role="assistant",
                        content=turn.text,
                        tool_calls=list(turn.tool_calls),
                        extra=list(turn.extra),
                    )
                )
                if not turn.tool_calls:
                    answered = True
                    break
                if turn.text:
                    publish(TextDelta("\n\n"))
                outcomes = await asyncio.gather(
                    *(self._run_call(call, tools, options, publish) for call in turn.tool_calls)
                )
                for call, outcome in zip(turn.tool_calls, outcomes):
                    if isinstance(outcome, _Table):
                        # Named in the order the model asked, not the order calls finished,
                        # so a re-run binds the same names.
                        outcome = self._bind_table(
                            call, outcome, cell, recorder.run.id, variables, options, publish
                        )
                    self.messages.append(
                        Message(role="tool", content=outcome, tool_call_id=call.id, name=call.name)
                    )
            if not answered and not budget.stopped:
                publish(
                    Notice(
                        f"Stopped after {options.max_steps} steps while the model was still "
                        "calling tools; raise --max-steps to let it go on.",
                        level="warning",
                    )
                )
            if not replied:  # stopped before the first request: the conversation is unchanged
                del self.messages[start:]
            status = "ok" if answered else "stopped"
        except BaseException as exc:
            stopped = isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError))
            status = "interrupted" if stopped else "error"
            self._repair(start)
            raise
        finally:
            self.usage.add(usage)
            if replied:  # a run the model never answered has no usage to speak of
                total = Usage(self.usage.input_tokens, self.usage.output_tokens, self.usage.cost)
                publish(
                    UsageReport(
                        usage,
                        model,
                        step,
                        reported=reported,
                        total=total,
                        served_by=served if served and not _same_model(served, model) else None,
                    )
                )
            recorder.finish(status, usage)
        bound = {name: self.namespace[name] for name in variables if name in self.namespace}
        return RunResult(text, usage, step, bound, stopped_early=not answered)

    def _bind_table(
        self,
        call: ToolCall,
        table: _Table,
        cell: str,
        run_id: int,
        variables: dict[str, str | None],
        options: AgentOptions,
        publish: Callable[[Event], None],
    ) -> str:
        """Bind a table under its name (see `naming`); what the model is told about it."""
        unnamed = None
        if table.proposed is None:
            unnamed = sum(1 for proposed in variables.values() if proposed is None)
        name, note = self.names.choose(
            table.proposed, cell, self.namespace, set(variables), unnamed or 0,
            options.results_prefix,
        )
        self.names.bind(name, table.frame, cell, run_id, self.namespace, unnamed)
        variables[name] = table.proposed
        publish(
            ToolCallFinished(
                call.id, "ok", table.duration, result=table.frame, variable=name, raw=table.raw
            )
        )
        if note:
            publish(Notice(note))
        told = frame_for_model(table.frame, name, max_rows=options.max_table_rows_inline)
        return f"{told}\n({note})" if note else told

    def _secrets(self) -> list[str]:
        """What the run log must never show: the provider's key, servers' headers and env."""
        secrets = list(getattr(getattr(self.provider, "config", None), "secrets", list)())
        for session in self.manager.sessions.values():
            with contextlib.suppress(Exception):  # a spec that cannot say: nothing to add
                secrets += session.secrets()
        return secrets

    def _remaining(self) -> float:
        return self._deadline - time.monotonic()

    def _timeout(self, options: AgentOptions, waiting_for: str) -> RunTimeout:
        return RunTimeout(
            f"{self.provider.name}:{self.provider.model}: the run reached its "
            f"{options.run_timeout:g} s limit (run_timeout) while waiting for {waiting_for}"
        )

    async def _complete(
        self, request: Request, options: AgentOptions, publish: Callable[[Event], None]
    ) -> Any:
        """One model reply, within what is left of the run's time."""
        remaining = self._remaining()
        if remaining <= 0:
            raise self._timeout(options, "the tools")
        try:
            return await asyncio.wait_for(
                self.provider.complete(request, on_text=lambda delta: publish(TextDelta(delta))),
                remaining,
            )
        except asyncio.TimeoutError:
            raise self._timeout(options, "the model") from None

    def _repair(self, start: int) -> None:
        """Keep the conversation valid after an interrupt or an error.

        Every assistant tool call gets a result (providers reject dangling calls); a run
        that got no reply at all is dropped, so the next cell starts clean.
        """
        if not any(m.role == "assistant" for m in self.messages[start:]):
            del self.messages[start:]
            return
        answered = {m.tool_call_id for m in self.messages[start:] if m.role == "tool"}
        last = max(i for i, m in enumerate(self.messages) if m.role == "assistant")
        missing = [c for c in self.messages[last].tool_calls if c.id not in answered]
        for call in missing:
            self.messages.append(
                Message(
                    role="tool",
                    content="Cancelled: the user stopped the run.",
                    tool_call_id=call.id,
                    name=call.name,
                )
            )

    def _publish_hosted(self, call: Any, publish: Callable[[Event], None]) -> None:
        call_id = f"hosted-{id(call)}"
        try:
            arguments = json.loads(call.arguments) if call.arguments else {}
        except ValueError:
            arguments = call.arguments
        publish(ToolCallStarted(call_id, call.server, call.tool, arguments, hosted=True))
        publish(
            ToolCallFinished(
                call_id,
                "error" if call.error else "ok",
                0.0,
                result=call.output,
                error=call.error,
            )
        )

    async def _run_call(
        self,
        call: ToolCall,
        tools: dict[str, BoundTool],
        options: AgentOptions,
        publish: Callable[[Event], None],
    ) -> str | _Table:
        """Run one tool call: what the model is told, or a table still to be named.

        Never raises, except when cancelled.
        """
        started = time.monotonic()
        bound = tools.get(call.name)
        server, tool = (bound.server, bound.tool) if bound else ("?", call.name)
        local = bound is not None and bound.server not in self.manager.sessions
        try:
            arguments: Any = json.loads(call.arguments or "{}")
            if local and bound is not None and bound.tool == "run_python":
                return await self._run_code(call, arguments, options, publish)
        except ValueError as exc:
            arguments = call.arguments
            publish(ToolCallStarted(call.id, server, tool, arguments))
            return self._fail(call, started, publish, f"invalid JSON arguments: {exc}")
        proposed = None
        if bound is not None:
            arguments, proposed = naming.take(arguments, bound.schema)
        publish(ToolCallStarted(call.id, server, tool, arguments))
        if bound is None:
            known = ", ".join(sorted(tools)) or "none"
            return self._fail(call, started, publish, f"unknown tool {call.name!r}; tools: {known}")
        problem = validate_arguments(arguments, bound.schema)
        if problem:
            return self._fail(call, started, publish, f"invalid arguments: {problem}")
        if needs_approval(options.approval, bound):
            decision = await self._ask(call, bound, arguments, publish)
            if decision.action == "deny":
                publish(
                    ToolCallFinished(
                        call.id, "denied", time.monotonic() - started, error="denied by the user"
                    )
                )
                return "The user denied this tool call. Do not retry it; ask or continue."
            if decision.action == "answer":
                reply = decision.text or ""
                publish(ToolCallFinished(call.id, "ok", time.monotonic() - started, result=reply))
                return f"(answered by the user in place of the tool) {reply}"
        if local:
            return self._run_notebook_tool(call, bound, arguments, started, publish)
        try:
            result = await asyncio.wait_for(
                self.manager.acall_tool(bound.server, bound.tool, arguments),
                max(self._remaining(), 0.001),
            )
        except McpError as exc:
            return self._fail(call, started, publish, str(exc))
        except asyncio.TimeoutError:
            message = f"stopped: the run reached its {options.run_timeout:g} s limit (run_timeout)"
            return self._fail(call, started, publish, message)
        outcome = interpret(result, bound.tool, bound.output_schema)
        duration = time.monotonic() - started
        if outcome.error is not None:
            publish(ToolCallFinished(call.id, "error", duration, error=outcome.error))
            return f"Error: {outcome.error}"
        value = outcome.value
        if hasattr(value, "to_csv"):
            return _Table(value, duration, proposed, raw=result)  # named, then shown
        publish(ToolCallFinished(call.id, "ok", duration, result=value, raw=result))
        text = outcome.text
        if len(text) > options.max_result_chars:
            text = text[: options.max_result_chars] + f"\n[... cut at {options.max_result_chars}"
            text += f" of {len(outcome.text)} characters]"
        return text

    def _run_notebook_tool(
        self,
        call: ToolCall,
        bound: BoundTool,
        arguments: dict[str, Any],
        started: float,
        publish: Callable[[Event], None],
    ) -> str:
        """A built-in `notebook` tool: a bounded look at the kernel's own DataFrames."""
        from .notebook_tools import NotebookToolError
        from .notebook_tools import call as notebook_call

        try:
            shown, told = notebook_call(self.namespace, bound.tool, arguments)
        except NotebookToolError as exc:
            return self._fail(call, started, publish, str(exc))
        publish(ToolCallFinished(call.id, "ok", time.monotonic() - started, result=shown))
        return told

    async def _run_code(
        self,
        call: ToolCall,
        arguments: Any,
        options: AgentOptions,
        publish: Callable[[Event], None],
    ) -> str:
        """Code mode: the main thread asks, runs the code, and answers (driver.py)."""
        from .code_mode import report_for_model

        code = arguments.get("code") if isinstance(arguments, dict) else None
        if not isinstance(code, str) or not code.strip():
            message = "run_python needs a non-empty `code` string"
            publish(CodeFinished(call.id, "error", str(code or ""), error=message))
            return f"Error: {message}"
        request = CodeRequest(call.id, code, ask=options.code_approval)
        publish(request)
        asked = time.monotonic()
        try:
            finished: CodeFinished = await asyncio.wrap_future(request.reply)
        except asyncio.CancelledError:
            # The stop button: the block says so; _repair answers the call for the model.
            publish(CodeFinished(call.id, "cancelled", code, time.monotonic() - asked,
                                 error="stopped by the user"))
            raise
        finally:
            # Waiting for the user, and the code itself, do not count against run_timeout:
            # the stop button ends both.
            self._deadline += time.monotonic() - asked
        publish(finished)
        return report_for_model(finished, self.namespace, options.max_table_rows_inline)

    def _fail(
        self, call: ToolCall, started: float, publish: Callable[[Event], None], message: str
    ) -> str:
        publish(ToolCallFinished(call.id, "error", time.monotonic() - started, error=message))
        return f"Error: {message}"

    async def _ask(
        self, call: ToolCall, bound: BoundTool, arguments: Any, publish: Callable[[Event], None]
    ) -> Decision:
        reason = "it may change data" if not bound.read_only else "approval is on for every call"
        request = ApprovalRequest(call.id, bound.server, bound.tool, arguments, reason)
        publish(request)
        asked = time.monotonic()
        try:
            return await asyncio.wrap_future(request.reply)
        finally:
            # Time spent waiting for the user does not count against the run's limit.
            # (Calls asking at the same time each add their wait: generous, never short.)
            self._deadline += time.monotonic() - asked


def agent_for(
    agent: Agent | None,
    manager: SessionManager,
    config: Any,
    namespace: MutableMapping[str, Any],
) -> Agent:
    """The agent for the model `config` names: `agent` itself, switched to that model
    if it talks to another (the conversation is kept), or a new one."""
    from .providers import make_provider

    if agent is None:
        return Agent(manager, make_provider(config), namespace)
    if getattr(agent.provider, "config", None) != config:
        old, agent.provider = agent.provider, make_provider(config)
        manager.run(old.aclose())
    return agent


@dataclass
class _Table:
    """A table result waiting for its variable name."""

    frame: Any
    duration: float
    proposed: str | None = None  # the name the model asked for (`result_name`)
    raw: Any = None  # the tool's CallToolResult, for its view (MCP Apps)


def _same_model(served: str, asked: str) -> bool:
    """Whether the model a reply names is the one asked for (`provider:model`), allowing
    for a vendor prefix, a dated version (`openai/gpt-4o-mini-2024-07-18`) or a tag
    (`qwen2.5:latest`)."""
    wanted = asked.split(":", 1)[-1].rsplit("/", 1)[-1]
    short = served.rsplit("/", 1)[-1]
    version = r"(-\d{4}-?\d{2}-?\d{2}|-\d{3,8}|:[\w.-]+)?"
    return bool(re.fullmatch(re.escape(wanted) + version, short))


class TokenBudget:
    """`max_tokens_total`: refuses a request that would take the run past its budget.

    A request's size is estimated from its text (about 4 characters a token), scaled by
    what the provider reported for the previous request when it did.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.stopped = False
        self._last: tuple[int, int] | None = None  # (characters, tokens reported) last time

    @staticmethod
    def characters(request: Request) -> int:
        size = len(request.system or "")
        for message in request.messages:
            size += len(message.content)
            size += sum(len(c.arguments) + len(c.name) for c in message.tool_calls)
        for tool in request.tools:
            size += len(json.dumps(tool.parameters)) + len(tool.description) + len(tool.name)
        return size

    def estimate(self, request: Request) -> int:
        size = self.characters(request)
        if self._last is not None:
            chars, tokens = self._last
            return tokens + max(0, size - chars) // 4
        return size // 4 + 1

    def refuse(self, request: Request, used: Usage) -> str | None:
        """One line saying why `request` is not sent, or None to send it."""
        if self.limit is None:
            return None
        estimate = self.estimate(request)
        if used.total_tokens + estimate <= self.limit:
            return None
        self.stopped = True
        return (
            f"Stopped: the next model request (about {estimate:,} tokens) would take this run "
            f"past its budget of {self.limit:,} tokens ({used.total_tokens:,} used so far); "
            "raise --max-tokens-total to let it go on."
        )

    def replied(self, request: Request, usage: Usage | None) -> None:
        if usage is not None and usage.input_tokens:
            self._last = (self.characters(request), usage.input_tokens)

def _warm_imports() -> None:
    import jsonschema  # noqa: F401
    import pandas  # noqa: F401


def needs_approval(mode: ApprovalMode, tool: BoundTool) -> bool:
    return mode == "always" or (mode == "writes" and not tool.read_only)


def validate_arguments(arguments: Any, schema: dict[str, Any]) -> str | None:
    """One line saying why the arguments do not fit the tool's input schema, or None."""
    if not isinstance(arguments, dict):
        return "arguments must be a JSON object"
    import jsonschema

    try:
        validator_class = jsonschema.validators.validator_for(schema)
        errors = sorted(validator_class(schema).iter_errors(arguments), key=lambda e: e.path)
    except jsonschema.SchemaError:
        return None  # the server's schema is broken; let the server judge
    if not errors:
        return None
    error = errors[0]
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


def interpolate(template: str, namespace: MutableMapping[str, Any]) -> str:
    """Fill `{name}` (and `{name.attr}`, `{name[key]}`) from notebook variables.

    `{{` and `}}` are literal braces. A DataFrame becomes a compact summary rather than
    its full text; an unknown name is an error naming it.
    """
    import string

    formatter = string.Formatter()
    pieces: list[str] = []
    try:
        parsed = list(formatter.parse(template))
    except ValueError as exc:
        raise PromptError(f"cannot read the prompt's {{...}} fields: {exc}") from None
    for literal, field_name, spec, conversion in parsed:
        pieces.append(literal)
        if field_name is None:
            continue
        if not field_name:
            raise PromptError("empty {} in the prompt: write {{}} for literal braces")
        root = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if root not in namespace:
            raise PromptError(f"name {root!r} in the prompt is not defined in the notebook")
        try:
            value, _ = formatter.get_field(field_name, (), namespace)
        except (AttributeError, KeyError, IndexError, TypeError) as exc:
            raise PromptError(f"cannot fill {{{field_name}}}: {exc}") from None
        if hasattr(value, "to_csv") and hasattr(value, "dtypes") and not spec and not conversion:
            from ..tables.results import frame_summary

            pieces.append(frame_summary(value, root if root == field_name else field_name))
            continue
        value = formatter.convert_field(value, conversion)
        pieces.append(formatter.format_field(value, spec or ""))
    return "".join(pieces)


class PromptError(ValueError):
    """A `{name}` in the prompt that cannot be filled."""
