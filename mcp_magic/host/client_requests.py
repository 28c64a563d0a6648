"""Requests a server makes of the client: elicitation, sampling, roots.

All of them reach the user through one path: a handler the host was given (a prompt in
a notebook, `mcp_magic.display.asking`; a callback from `Host(elicit=...)`), run on the thread
that waits for the call (`SessionManager.on_main`), so a notebook shows it in the
running cell. With no one to ask, the answer is "decline" and a line says so. A handler
that fails is remembered on the session, so the tool call that caused it raises instead
of returning the server's error text as a value.

The SDK takes these as `Client(elicitation_callback=, sampling_callback=,
list_roots_callback=)` and uses them for both request styles: a 2025 server's request,
and a 2026 `InputRequiredResult` that the SDK answers and retries (multi-round-trip).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Elicitation:
    """A server asks the user for input: a form (`schema`) or a page to visit (`url`)."""

    server: str
    message: str
    schema: dict[str, Any] = field(default_factory=dict)
    url: str | None = None

    @property
    def defaults(self) -> dict[str, Any]:
        """The schema's defaults (SEP-1034): what an untouched form submits."""
        properties = self.schema.get("properties", {}) if self.schema else {}
        return {k: v["default"] for k, v in properties.items() if "default" in v}


@dataclass
class Answer:
    action: str  # "accept", "decline" or "cancel"
    content: dict[str, Any] | None = None


class Declined(Exception):
    """A handler's way to say "declined, and why" (nobody can answer, no model)."""


@dataclass
class SamplingRequest:
    """A server asks for a model completion: what the user approves or denies."""

    server: str
    messages: list[tuple[str, str]]  # (role, text); non-text content as a placeholder
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    tools: list[str] = field(default_factory=list)  # the names of the tools offered
    params: Any = field(default=None, repr=False)  # the SDK's request, for the model


def describe_part(part: Any) -> str:
    kind = getattr(part, "type", "content")
    if kind == "text":
        return part.text
    if kind == "tool_use":
        return f"[calls {part.name}({json.dumps(part.input, default=str)})]"
    if kind == "tool_result":
        return "[result: " + " ".join(describe_part(p) for p in part.content or []) + "]"
    return f"[{kind}]"


def message_parts(message: Any) -> list[Any]:
    return message.content if isinstance(message.content, list) else [message.content]


def sampling_request(server: str, params: Any) -> SamplingRequest:
    """The SDK's `CreateMessageRequestParams` as plain data."""
    messages = [
        (message.role, "\n".join(describe_part(p) for p in message_parts(message)))
        for message in getattr(params, "messages", None) or []
    ]
    return SamplingRequest(
        server=server,
        messages=messages,
        system=getattr(params, "system_prompt", None),
        max_tokens=getattr(params, "max_tokens", None),
        temperature=getattr(params, "temperature", None),
        tools=[t.name for t in getattr(params, "tools", None) or []],
        params=params,
    )


ElicitHandler = Callable[[Elicitation], "Answer | dict[str, Any] | None"]
"""Returns the accepted values (a dict), an `Answer`, or None to decline."""


def accept_defaults(request: Elicitation) -> Answer:
    """An elicitation handler that submits the form as it is, defaults filled in."""
    return Answer("accept", request.defaults)


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")


def automatic_roots(spec: Any) -> list[str]:
    """The roots a server is offered when nothing is configured.

    A local server started with directories on its command line is offered exactly those:
    a server told of roots may use them instead of its arguments (the filesystem server
    does), so offering the notebook's directory would take away what the user gave it.
    Any other local server (stdio, or HTTP on a loopback address) is offered the
    notebook's directory. A remote server is offered none: this machine's paths mean
    nothing there, and would only tell it how the user's disk is laid out.
    """
    if spec is None:
        return []
    if getattr(spec, "transport", None) == "stdio":
        base = Path(spec.cwd or ".")
        named = []
        for arg in spec.args:
            value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
            if value.startswith("-") or not value or "\0" in value:
                continue
            try:
                if (base / Path(value).expanduser()).is_dir():
                    named.append(str(base / Path(value).expanduser()))
            except (OSError, ValueError):  # too long, bad characters: not a directory
                continue
        return named or ["."]
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(spec.url).hostname or "").lower()
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, or a malformed address
        local = False
    return ["."] if local else []


@dataclass
class ClientRequests:
    """The handlers for one host; `callbacks(session)` gives the SDK Client's kwargs."""

    elicit: ElicitHandler | None = None
    sample: Callable[[SamplingRequest], Any] | None = None
    """Answers a sampling request (a `CreateMessageResult`, sync or async);
    `mcp_magic.agent.sampling.model_sampler` answers with a model. Raising `Declined`
    declines with its reason."""
    approve: Callable[[SamplingRequest], bool] | None = None
    """Asks the user before a sampling request is answered (True: allowed); None: the
    host's `sample` needs no approval."""
    roots: list[str] | None = None
    """Directories the servers may work in, resolved when a server asks (so "." is the
    kernel's working directory then: the notebook's). None: each server's own, see
    `automatic_roots`; []: none offered. A server entry's own `roots` wins."""
    say: Callable[[str], None] = _say
    on_main: Callable[[Callable[[], Any]], Any] | None = None
    """Runs a function on the thread waiting for the call, from the loop (set by the
    `SessionManager`): where questions are shown."""

    async def _ask(self, fn: Callable[[], Any]) -> Any:
        """Run a (blocking) question on the waiting thread, else on a worker thread."""
        if self.on_main is not None:
            from .sessions import NobodyWaiting

            try:
                return await self.on_main(fn)
            except NobodyWaiting:
                pass
        return await asyncio.to_thread(fn)

    async def _tell(self, line: str) -> None:
        """One line, shown by the waiting thread (so in the running cell) when there is one."""
        try:
            await self._ask(lambda: self.say(line))
        except Exception:
            self.say(line)

    def callbacks(self, session: Any) -> dict[str, Any]:
        from mcp import types

        callbacks = {
            "elicitation_callback": self._elicitation(session),
            "sampling_callback": self._sampling(session),
            # The model may be offered the server's tools (SEP-1577).
            "sampling_capabilities": types.SamplingCapability(
                tools=types.SamplingToolsCapability()
            ),
        }
        spec = getattr(session, "spec", None)
        own = getattr(spec, "roots", None)
        if own is not None:
            folders = list(own)
        elif self.roots is not None:
            folders = list(self.roots)
        else:
            folders = automatic_roots(spec)
        if folders:  # decided at connect; resolved when the server asks
            callbacks["list_roots_callback"] = self._roots(lambda: folders)
        return callbacks

    async def urls_required(self, session: Any, data: Any) -> bool:
        """A call refused with -32042 (URL elicitation required): each page is shown as a
        URL elicitation; True when the user accepted them all, so the call is retried."""
        items = (data or {}).get("elicitations") if isinstance(data, dict) else None
        if not items or self.elicit is None:
            return False
        elicit = self.elicit
        for item in items:
            request = Elicitation(server=session.name, message=str(item.get("message", "")),
                                  url=item.get("url"))
            try:
                reply = await self._ask(lambda r=request: elicit(r))
            except Declined as exc:
                await self._tell(f"{session.name} asked you to open {request.url}: "
                                 f"declined, {exc}")
                return False
            action = "accept" if isinstance(reply, dict) else getattr(reply, "action", "decline")
            if action != "accept":
                return False
        return True

    def _elicitation(self, session: Any) -> Any:
        from mcp import types

        async def answer(context: Any, params: Any) -> Any:
            request = Elicitation(
                server=session.name,
                message=getattr(params, "message", ""),
                schema=getattr(params, "requested_schema", None) or {},
                url=getattr(params, "url", None),
            )
            if self.elicit is None:
                await self._tell(
                    f"{session.name} asked for input ({request.message!r}): declined, "
                    "no one to answer (pass elicit= to Host)"
                )
                return types.ElicitResult(action="decline")
            elicit = self.elicit
            try:
                reply = await self._ask(lambda: elicit(request))
            except Declined as exc:
                await self._tell(
                    f"{session.name} asked for input ({request.message!r}): declined, {exc}"
                )
                return types.ElicitResult(action="decline")
            except Exception as exc:
                note = f"elicitation failed: {type(exc).__name__}: {exc}"
                session.request_failures.append(note)
                return types.ErrorData(code=types.INTERNAL_ERROR, message=note)
            if reply is None:
                return types.ElicitResult(action="decline")
            if isinstance(reply, dict):
                return types.ElicitResult(action="accept", content=reply)
            return types.ElicitResult(action=reply.action, content=reply.content)

        return answer

    def _sampling(self, session: Any) -> Any:
        from mcp import types

        async def declined(why: str) -> Any:
            note = f"{session.name} asked for a model completion: declined, {why}"
            await self._tell(note)
            return types.ErrorData(code=types.INVALID_REQUEST, message=note)

        async def answer(context: Any, params: Any) -> Any:
            if self.sample is None:
                return await declined("no model set up")
            request = sampling_request(session.name, params)
            try:
                check = getattr(self.sample, "check", None)
                if check is not None:
                    check()  # no model: declined before the user is asked
                if self.approve is not None:
                    approve = self.approve
                    if not await self._ask(lambda: approve(request)):
                        return await declined("the user denied it")
                sample = self.sample
                if inspect.iscoroutinefunction(sample):
                    return await sample(request)
                return await asyncio.to_thread(sample, request)
            except Declined as exc:
                return await declined(str(exc))
            except Exception as exc:
                note = f"sampling failed: {type(exc).__name__}: {exc}"
                session.request_failures.append(note)
                return types.ErrorData(code=types.INTERNAL_ERROR, message=note)

        return answer

    def _roots(self, folders: Callable[[], list[str]]) -> Any:
        from mcp import types

        async def answer(context: Any) -> Any:
            resolved = [Path(f).expanduser().resolve() for f in folders()]
            return types.ListRootsResult(
                roots=[types.Root(uri=p.as_uri(), name=p.name or str(p)) for p in resolved]
            )

        return answer
