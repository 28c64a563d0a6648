"""MCP sessions owned by one event-loop thread.

The MCP SDK requires a session to be entered and exited in the same task, while
every notebook cell runs on the main thread. So one background thread runs an
asyncio loop; each session lives in one long-lived *owner task* on it, and cells
submit coroutines to that loop and wait for them interruptibly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..apps import client_extensions as app_extensions
from ..tables.big_json import COMPACT
from ..tables.columnar import client_extensions, settle_result
from .auth import explain_failure as explain_auth_failure
from .client_requests import ClientRequests
from .config import (
    ConfigError,
    HttpSpec,
    ServerSpec,
    StdioSpec,
    expand_vars,
    inherited_environment,
    redact,
    resolve_command,
)
from .server_log import NOTE_PREFIX, fold_probe_noise, last_server_line

T = TypeVar("T")

LOG_READ_LIMIT = 4 << 20
"""How much of the end of a server's log is read to show it (a chatty server's log grows)."""

SESSION_MARKER = "MCP_MAGIC_SESSION"
"""Environment variable that tags a stdio server so its process can be found."""


class McpError(Exception):
    """A failure worth one line to the user (no traceback)."""


class UnknownServer(McpError):
    pass


class UnknownTool(McpError):
    pass


class ServerDied(McpError):
    pass


class ToolCallError(McpError):
    """The tool ran and reported an error."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or the stop button cancelled a request; the session stays usable.

    Still a KeyboardInterrupt, so "Run All" stops and scripts can catch it; IPython
    shows it as one line instead of a traceback through the waiting machinery.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


@dataclass(eq=False)
class Session:
    """One connected (or once connected) server, as the user sees it."""

    name: str
    spec: ServerSpec
    log_path: Path
    state: str = "connecting"
    error: str | None = None
    protocol_version: str | None = None
    server_name: str | None = None
    server_version: str | None = None
    instructions: str | None = None
    tools: dict[str, Any] = field(default_factory=dict)
    tools_stale: bool = False
    pid: int | None = None
    last_words: str = ""
    """The server's last stderr line when it died."""
    http_refusal: str | None = None
    """The last HTTP error status a remote server answered ("401 Unauthorized")."""
    request_failures: list[str] = field(default_factory=list)
    awaiting_user: float = 0.0
    """Seconds a user has to authorize (OAuth consent in progress), extending the connect."""
    """Elicitation/sampling handlers that failed; the call that caused them raises."""
    log_start: int = 0
    """Where this run's output starts in the log file (a name's log is kept across runs)."""
    started_at: float = field(default_factory=time.monotonic)
    client: Any = field(default=None, repr=False)
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    _stop: asyncio.Event | None = field(default=None, repr=False)
    _closed: asyncio.Event | None = field(default=None, repr=False)
    _owner: asyncio.Task | None = field(default=None, repr=False)

    @property
    def transport(self) -> str:
        return self.spec.transport

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_at

    def secrets(self) -> list[str]:
        return self.spec.secrets()

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    def log_lines(self, this_run: bool = False) -> list[str]:
        """The log as shown: version-probe noise folded, secrets redacted."""
        try:
            with open(self.log_path, "rb") as file:
                size = file.seek(0, os.SEEK_END)
                file.seek(max(self.log_start if this_run else 0, size - LOG_READ_LIMIT))
                data = file.read()
        except FileNotFoundError:
            return []
        text = self.redact(data.decode("utf-8", errors="replace"))
        return fold_probe_noise(text.splitlines(), self.protocol_version)

    def log_tail(self, lines: int | None = None) -> str:
        shown = self.log_lines()
        return "\n".join(shown[-lines:] if lines is not None else shown)

    def last_log_line(self) -> str:
        """The server's last line in this run (stderr or a log message)."""
        return last_server_line(self.log_lines(this_run=True))

    def death_note(self) -> str:
        """Why the session ended, for one-line errors: exit status and last words."""
        why = self.error or "the connection ended"
        return f"{why} (last stderr line: {self.last_words})" if self.last_words else why


class _WatchedReadStream:
    """A transport's read stream that reports when the server side goes away."""

    def __init__(self, inner: Any, on_close: Callable[[], None]) -> None:
        self._inner = inner
        self._on_close = on_close

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self._on_close()
            raise

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except Exception as exc:
            import anyio

            if isinstance(exc, anyio.EndOfStream):
                raise StopAsyncIteration from None
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _WatchedReadStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._inner.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _WatchedTransport:
    """Wraps an SDK transport so the owner task learns when the connection ends."""

    def __init__(self, inner: Any, on_close: Callable[[], None]) -> None:
        self._inner = inner
        self._on_close = on_close
        self.process: Any = None
        """A stdio server's process once started, kept for its exit status."""

    async def __aenter__(self) -> tuple[Any, Any]:
        read_stream, write_stream = await self._inner.__aenter__()
        self.process = _server_process(self._inner)
        return _WatchedReadStream(read_stream, self._on_close), write_stream

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._inner.__aexit__(*exc)


def _open_transport(session: Session, errlog: Any, oauth: Any = None) -> Any:
    """The SDK transport for a spec, with `$VAR`s expanded only now."""
    spec = session.spec
    if isinstance(spec, StdioSpec):
        from .stdio_transport import StdioServerParameters, stdio_client

        env = inherited_environment()
        env.update({key: expand_vars(value) for key, value in spec.env.items()})
        env[SESSION_MARKER] = session.marker
        params = StdioServerParameters(
            command=resolve_command(spec), args=list(spec.args), env=env, cwd=spec.cwd
        )
        return stdio_client(params, errlog=errlog)
    from mcp.client import streamable_http

    from .stdio_transport import parse_big_results_once

    parse_big_results_once(streamable_http)  # a big answer parsed once, as over stdio
    headers = {key: expand_vars(value) for key, value in spec.headers.items()}
    if spec.transport == "sse":
        from mcp.client import sse

        _lift_sse_event_limit(sse)
        return sse.sse_client(spec.url, headers=headers)
    from mcp.shared._httpx_utils import create_mcp_http_client

    # OAuth (mcp_magic.host.auth) acts only on a 401/403, and not when a token is given as a header.
    auth = None if oauth is None or "authorization" in {k.lower() for k in headers} else (
        oauth(session)
    )
    http_client = create_mcp_http_client(headers=headers, auth=auth)

    async def note_refusal(response: Any) -> None:
        # The SDK reports a 401 as "Server returned an error response"; keep the status.
        if response.status_code >= 400:
            session.http_refusal = f"{response.status_code} {response.reason_phrase}".strip()

    hooks = dict(http_client.event_hooks)
    hooks["response"] = [*hooks.get("response", []), note_refusal]
    http_client.event_hooks = hooks
    return _HttpTransport(spec.url, http_client)


def _lift_sse_event_limit(module: Any) -> None:
    """Let the SDK's SSE client read events as big as other transports' messages.

    `sse_client` takes no parameter for the 1 MiB limit it passes down, and an answer
    over it would end the session. If a future SDK changes the helper, the limit stays
    and such an answer is still one line naming it.
    """
    import functools
    import inspect

    from .stdio_transport import MAX_MESSAGE_BYTES

    original = getattr(module, "sse_within_origin", None)
    if original is None or getattr(original, "_mcp_magic_lifted", False):
        return
    try:
        if "max_event_size" not in inspect.signature(original).parameters:
            return
    except (TypeError, ValueError):
        return
    lifted = functools.partial(original, max_event_size=MAX_MESSAGE_BYTES)
    lifted._mcp_magic_lifted = True  # type: ignore[attr-defined]
    module.sse_within_origin = lifted


class _HttpTransport:
    """Streamable HTTP with an HTTP client that is closed with the transport."""

    def __init__(self, url: str, http_client: Any) -> None:
        from mcp.client.streamable_http import streamable_http_client

        from .stdio_transport import MAX_MESSAGE_BYTES

        self._http = http_client
        # The SDK's default 1 MiB SSE event limit fails any bigger answer from 2025 servers.
        self._inner = streamable_http_client(
            url, http_client=http_client, max_sse_event_size=MAX_MESSAGE_BYTES
        )

    async def __aenter__(self) -> Any:
        await self._http.__aenter__()
        try:
            return await self._inner.__aenter__()
        except BaseException:
            await self._http.__aexit__(None, None, None)
            raise

    async def __aexit__(self, *exc: Any) -> bool | None:
        try:
            return await self._inner.__aexit__(*exc)
        finally:
            await self._http.__aexit__(None, None, None)


def _quiet_sdk_logging() -> None:
    """Keep the SDK's logged tracebacks ("Encountered SSE exception") out of the cell.

    Each failure they log also reaches the caller as an exception, which becomes one
    line. Without a handler of its own, Python prints them on stderr; a handler the
    user configures still receives them.
    """
    import logging

    sdk = logging.getLogger("mcp")
    if not any(isinstance(h, logging.NullHandler) for h in sdk.handlers):
        sdk.addHandler(logging.NullHandler())


def _find_server_pid(marker: str) -> int | None:
    """The child process started for a session, found by its environment tag."""
    import psutil

    # The SDK starts each server in its own session, as a direct child of this process.
    for child in psutil.Process().children():
        try:
            if child.environ().get(SESSION_MARKER) == marker:
                return child.pid
        except (psutil.Error, OSError):
            continue
    return None


def describe_exception(exc: BaseException) -> str:
    """One line for any exception, unwrapping the exception groups anyio raises."""
    while getattr(exc, "exceptions", None):  # anyio's exception groups
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    kind = type(exc).__name__
    if isinstance(exc, (McpError, ConfigError)):
        return text
    return f"{kind}: {text}" if text else kind


AUTHORIZATION_WAIT = 320.0
"""Seconds a connect may wait, beyond its timeout, for the user to authorize (the
authorizer's own limit, 300 s, and a margin)."""


class NobodyWaiting(McpError):
    """No thread is waiting in `LoopThread.run`, so nothing can be asked of the user."""


@dataclass
class MainThreadCall:
    """A function the loop needs run on the waiting (main) thread: a question to the user.

    `LoopThread.run` runs it between events; `reply` carries its value back. The stop
    button during it cancels the wait (and so the coroutine awaiting the answer).
    """

    fn: Callable[[], Any]
    reply: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)

    def run(self) -> None:
        if not self.reply.set_running_or_notify_cancel():
            return
        try:
            value = self.fn()
        except KeyboardInterrupt:
            self.reply.set_exception(asyncio.CancelledError())
            raise
        except BaseException as exc:
            self.reply.set_exception(exc)
        else:
            self.reply.set_result(value)


class LoopThread:
    """A daemon thread running the asyncio loop that owns every session."""

    def __init__(self) -> None:
        self._waits: list[queue.SimpleQueue] = []  # the event queues of waits in progress
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="mcp-magic-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def on_main(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the thread waiting in `run` (the innermost wait), from the loop.

        Raises `NobodyWaiting` when no thread waits (nothing could show a question).
        """
        if not self._waits:
            raise NobodyWaiting("nobody is waiting to answer")
        call = MainThreadCall(fn)
        self._waits[-1].put(call)
        try:
            return await asyncio.wrap_future(call.reply)
        except asyncio.CancelledError:
            call.reply.cancel()
            raise

    def run(
        self,
        coro: Coroutine[Any, Any, T],
        on_event: Callable[[Any], None] | None = None,
        events: queue.SimpleQueue | None = None,
        timeout: float | None = None,
        on_idle: Callable[[], None] | None = None,
        idle_interval: float = 0.1,
        label: str | None = None,
    ) -> T:
        """Run `coro` on the loop and wait for it, interruptibly.

        Items put on `events` (from the loop thread) are handed to `on_event` on this
        thread while waiting; `on_idle` runs when no event came for `idle_interval`
        (a display flushing throttled updates). A KeyboardInterrupt (the kernel's stop
        button) cancels the coroutine on the loop, waits briefly for that, and re-raises;
        with a `label` ("call to data.query_db") as a one-line `Interrupted`.
        """
        events = events if events is not None else queue.SimpleQueue()
        # Waiting before the coroutine starts: a question it asks at once finds this wait.
        self._waits.append(events)
        try:
            call = _LoopCall(self.loop, coro, events)
        except BaseException:
            self._waits.remove(events)
            coro.close()
            raise
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                if on_idle is not None:
                    wait = idle_interval if wait is None else min(wait, idle_interval)
                try:
                    item = events.get(timeout=wait)
                except queue.Empty:
                    if deadline is None or time.monotonic() < deadline:
                        on_idle()  # type: ignore[misc]
                        continue
                    call.cancel()
                    raise TimeoutError(f"timed out after {timeout:g} s") from None
                if item is call:
                    return call.result()
                if isinstance(item, MainThreadCall):
                    if deadline is not None:  # time spent asking the user does not count
                        started = time.monotonic()
                        item.run()
                        deadline += time.monotonic() - started
                    else:
                        item.run()
                elif on_event is not None:
                    on_event(item)
        except KeyboardInterrupt:
            call.cancel()
            call.wait_briefly(0.5)  # within the stop button's 1 s, however the cleanup goes
            if label is None or isinstance(sys.exc_info()[1], Interrupted):
                raise
            raise Interrupted(f"{label} cancelled") from None
        finally:
            self._waits.remove(events)
            _cancel_questions(events)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()


class _LoopCall:
    """A coroutine run on the loop for a waiting thread, which it wakes when done.

    It puts itself on `events` from the coroutine's own last step, not from a done
    callback a loop turn later, and has no second future to chain (as
    `run_coroutine_threadsafe` has): for a small `%mcp call` the hand-offs between the
    threads are most of what it costs beyond the SDK's own round trip.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, coro: Coroutine, events: Any) -> None:
        self._loop = loop
        self._coro = coro
        self._events = events
        self._task: asyncio.Task | None = None
        self._cancelled = False
        self._value: Any = None
        self._error: BaseException | None = None
        loop.call_soon_threadsafe(self._start)

    def _start(self) -> None:  # on the loop
        if self._cancelled:
            self._coro.close()
            self._events.put(self)
        else:
            self._task = self._loop.create_task(self._run())

    async def _run(self) -> None:  # on the loop
        try:
            self._value = await self._coro
        except asyncio.CancelledError:
            self._cancelled = True
            raise
        except BaseException as exc:
            self._error = exc
            if not isinstance(exc, Exception):  # SystemExit and the like stop the loop
                raise
        finally:
            self._events.put(self)

    def _cancel(self) -> None:  # on the loop
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()

    def cancel(self) -> None:
        """Cancel the coroutine (from the waiting thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs
            self._loop.call_soon_threadsafe(self._cancel)

    def wait_briefly(self, seconds: float) -> None:
        """Give a cancelled coroutine a moment to finish its cleanup (waiting thread).

        Other events that arrive meanwhile stay queued, in order.
        """
        deadline = time.monotonic() + seconds
        kept = []
        try:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    item = self._events.get(timeout=left)
                except queue.Empty:
                    break
                if item is self:
                    break
                kept.append(item)
        finally:
            for item in kept:
                self._events.put(item)

    def result(self) -> Any:
        """The coroutine's value, or its exception raised (once it put itself on events)."""
        if self._error is not None:
            raise self._error
        if self._cancelled:
            raise concurrent.futures.CancelledError()
        return self._value


OUTPUT_CHECK_MODULE = "jsonschema.validators"
"""What the SDK checks a tool's structured output with, imported on the first such call."""
_output_checks_warming = False


def warm_output_checks(sessions: Iterable[Session]) -> None:
    """Import the SDK's output-schema checker in the background, once, after a connect
    that brought a tool with an `outputSchema`.

    The SDK imports `jsonschema` when a call first needs it. With the format checkers a
    Jupyter install brings, that took a second, added to the first `%mcp call`; imported
    while the user writes the next cell, it is ready. A call that comes sooner waits for
    the same import, no longer than before.
    """
    global _output_checks_warming
    if _output_checks_warming or OUTPUT_CHECK_MODULE in sys.modules:
        return
    if not any(
        getattr(tool, "output_schema", None)
        for session in sessions
        for tool in session.tools.values()
    ):
        return
    _output_checks_warming = True
    threading.Thread(
        target=_import_quietly, args=(OUTPUT_CHECK_MODULE,), name="mcp-magic-warm", daemon=True
    ).start()


def _import_quietly(module: str) -> None:
    with contextlib.suppress(Exception):  # the call imports it again and says what failed
        importlib.import_module(module)


def _cancel_questions(events: queue.SimpleQueue) -> None:
    """Questions left unasked when a wait ends are cancelled; other events stay queued."""
    kept = []
    while not events.empty():
        item = events.get_nowait()
        if isinstance(item, MainThreadCall):
            item.reply.cancel()
        else:
            kept.append(item)
    for item in kept:
        events.put(item)


class SessionManager:
    """Connect, call, and disconnect MCP servers from synchronous code."""

    def __init__(
        self,
        connect_timeout: float = 60.0,
        client_name: str = "mcp-magic",
        client_requests: ClientRequests | None = None,
        oauth: Callable[[Session], Any] | None = None,
    ) -> None:
        self.client_requests = client_requests or ClientRequests()
        self.client_requests.on_main = self.on_main  # questions go to the waiting thread
        self.oauth = oauth
        """Makes the httpx auth for a remote session (`mcp_magic.host.auth.OAuth.for_session`)."""
        self.sessions: dict[str, Session] = {}
        self._starting: set[Session] = set()
        self.connect_timeout = connect_timeout
        self.client_name = client_name
        self._loop: LoopThread | None = None
        self._log_dir = Path(tempfile.mkdtemp(prefix="mcp_magic-logs-"))

    @property
    def loop(self) -> LoopThread:
        if self._loop is None:
            _quiet_sdk_logging()
            self._loop = LoopThread()
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T], **kwargs: Any) -> T:
        return self.loop.run(coro, **kwargs)

    async def on_main(self, fn: Callable[[], T]) -> T:
        """From the loop: run `fn` (a question to the user) on the thread waiting in `run`."""
        return await self.loop.on_main(fn)

    # -- lookups -----------------------------------------------------------

    def get(self, name: str) -> Session:
        try:
            return self.sessions[name]
        except KeyError:
            known = ", ".join(sorted(self.sessions)) or "none connected"
            raise UnknownServer(f"no server named {name!r} ({known})") from None

    def connected(self, name: str) -> Session:
        session = self.get(name)
        if session.state != "connected":
            why = f": {session.death_note()}" if session.state == "dead" else ""
            raise ServerDied(f"server {name!r} is {session.state}{why}; try %mcp reconnect {name}")
        return session

    # -- connect / disconnect ------------------------------------------------

    def connect(self, name: str, spec: ServerSpec) -> Session:
        results = self.connect_many({name: spec})
        outcome = results[name]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def connect_many(self, specs: dict[str, ServerSpec]) -> dict[str, Session | McpError]:
        """Start several servers at once; one failure does not stop the others."""
        for name in specs:
            if name in self.sessions and self.sessions[name].state in ("connected", "connecting"):
                raise ConfigError(
                    f"a server named {name!r} is already connected "
                    f"(use %mcp disconnect {name} or another name)"
                )
        results = self.run(
            self._connect_many(specs),
            # A remote server may send the user to authorize first (mcp_magic.host.auth): the
            # consent in the browser gets its own time, as in `_wait_ready`.
            timeout=self.connect_timeout + 10 + (
                AUTHORIZATION_WAIT if any(isinstance(s, HttpSpec) for s in specs.values())
                else 0
            ),
            label=f"connecting {', '.join(map(repr, specs))}",
        )
        warm_output_checks(s for s in results.values() if isinstance(s, Session))
        return results

    async def _connect_many(self, specs: dict[str, ServerSpec]) -> dict[str, Session | McpError]:
        sessions = [self._new_session(name, spec) for name, spec in specs.items()]
        outcomes = await asyncio.gather(*(self._start(s) for s in sessions), return_exceptions=True)
        results: dict[str, Session | McpError] = {}
        for session, outcome in zip(sessions, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                why = session.redact(_connect_failure(outcome, session))
                last = session.last_log_line()
                if last and last not in why:
                    why += f" (server said: {last})"
                results[session.name] = McpError(f"could not connect {session.name!r}: {why}")
            else:
                results[session.name] = session
        return results

    def _new_session(self, name: str, spec: ServerSpec) -> Session:
        old = self.sessions.get(name)
        if old is not None and old.state in ("connected", "connecting"):
            raise ConfigError(f"a server named {name!r} is already connected")
        log_path = self._log_dir / f"{name}.log"
        start = log_path.stat().st_size if log_path.exists() else 0
        return Session(name=name, spec=spec, log_path=log_path, log_start=start)

    async def _start(self, session: Session) -> Session:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A connect given up (timeout, Ctrl-C) never reads it: no "never retrieved" warning.
        ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        session._stop = asyncio.Event()
        session._closed = asyncio.Event()
        session._owner = asyncio.create_task(self._own(session, ready), name=f"mcp:{session.name}")
        self._starting.add(session)
        try:
            await _wait_ready(session, ready, self.connect_timeout)
        except asyncio.TimeoutError:
            await self._stop_owner(session)
            raise McpError(
                f"server did not answer within {self.connect_timeout:g} s"
                + (
                    f" (last log line: {session.last_log_line()})"
                    if session.last_log_line()
                    else ""
                )
            ) from None
        except BaseException:
            await self._stop_owner(session)
            raise
        finally:
            self._starting.discard(session)
        self.sessions[session.name] = session
        return session

    async def _own(self, session: Session, ready: asyncio.Future[None]) -> None:
        """The owner task: enters the client, waits for stop or loss, exits the client."""
        from mcp import Client
        from mcp.types import Implementation

        assert session._stop is not None and session._closed is not None
        session.log_path.parent.mkdir(parents=True, exist_ok=True)
        transport: _WatchedTransport | None = None
        try:
            with open(session.log_path, "a", encoding="utf-8", buffering=1) as errlog:
                transport = _WatchedTransport(
                    _open_transport(session, errlog, self.oauth), session._closed.set
                )

                async def on_log(params: Any) -> None:
                    logger = f" {params.logger}" if params.logger else ""
                    errlog.write(f"[{params.level}{logger}] {params.data}\n")

                async def on_message(message: Any) -> None:
                    method = getattr(getattr(message, "root", message), "method", None)
                    if method == "notifications/tools/list_changed":
                        session.tools_stale = True  # listed again when next needed

                client = Client(
                    transport,
                    logging_callback=on_log,
                    log_level="info",
                    message_handler=on_message,
                    client_info=Implementation(name=self.client_name, version="0.1.0"),
                    # tables as Arrow (mcp_magic.tables.columnar), tool views (mcp_magic.apps)
                    extensions=client_extensions() + app_extensions(),
                    **self.client_requests.callbacks(session),  # elicitation, sampling, roots
                )
                async with client:
                    session.client = client
                    session.protocol_version = client.protocol_version
                    if client.server_info is not None:
                        session.server_name = client.server_info.name
                        session.server_version = client.server_info.version
                    session.instructions = client.instructions
                    process = transport.process
                    if isinstance(session.spec, StdioSpec):
                        session.pid = getattr(process, "pid", None) or _find_server_pid(
                            session.marker
                        )
                    await self._refresh_tools(session)
                    session.state = "connected"
                    session.started_at = time.monotonic()
                    ready.set_result(None)
                    listener = _listen_for_tool_changes(session, client, errlog)
                    try:
                        await _first_of(session._stop.wait(), session._closed.wait())
                    finally:
                        if listener is not None:
                            listener.cancel()
                            await asyncio.gather(listener, return_exceptions=True)
                    if not session._stop.is_set():
                        session.error = await _why_closed(session, process)
                        session.last_words = session.last_log_line()
                        session.state = "dead"
        except BaseException as exc:
            if not ready.done():
                if (
                    transport is not None
                    and transport.process is not None
                    and (_is_connection_error(exc) or isinstance(exc, (EOFError, OSError)))
                ):
                    # It exited during the handshake: say how, not "Connection closed".
                    status = await _why_closed(session, transport.process)
                    verb = "was " if status.startswith("killed") else ""
                    exc = McpError(f"the server {verb}{status} before answering")
                ready.set_exception(exc if isinstance(exc, Exception) else McpError(str(exc)))
            elif session.state == "connected":
                session.error = _brief(exc, session)
                session.last_words = session.last_log_line()
                session.state = "dead"
            if not isinstance(exc, Exception):
                raise
        finally:
            session.client = None
            if session._stop.is_set():
                session.state = "closed"

    async def _refresh_tools(self, session: Session) -> None:
        session.tools_stale = False
        result = await session.client.list_tools(cache_mode="refresh")
        tools = list(result.tools)
        cursor = result.next_cursor
        while cursor:
            page = await session.client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
        session.tools = {tool.name: tool for tool in tools}

    async def _stop_owner(self, session: Session, timeout: float = 10.0) -> None:
        """End a session's owner task; the SDK then stops the server process."""
        if session._stop is not None:
            session._stop.set()
        owner = session._owner
        if owner is None or owner.done():
            return
        if session.state == "connecting":
            # Still in the handshake, where the stop event is not watched.
            owner.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(owner), timeout=timeout)
        except asyncio.TimeoutError:
            owner.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(owner, timeout=5)
        except BaseException:
            pass

    def disconnect(self, name: str) -> None:
        session = self.get(name)
        self.run(self._stop_owner(session), label=f"disconnecting {name!r}")
        session.state = "closed"
        del self.sessions[name]

    def disconnect_all(self) -> list[str]:
        """Close every session, and any still starting (an interrupted connect)."""
        names = list(self.sessions)
        sessions = [*self.sessions.values(), *self._starting]
        if sessions and self._loop is not None:
            self.run(_gather(self._stop_owner(s) for s in sessions), label="disconnecting")
        self.sessions.clear()
        return names

    def reconnect(self, name: str) -> Session:
        session = self.get(name)
        self.run(self._stop_owner(session), label=f"disconnecting {name!r}")
        del self.sessions[name]
        return self.connect(name, session.spec)

    def close(self) -> None:
        """Close every session and stop the loop thread (unload, kernel exit)."""
        with contextlib.suppress(Exception):
            self.disconnect_all()
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
        shutil.rmtree(self._log_dir, ignore_errors=True)

    # -- calls -------------------------------------------------------------

    def tools(self, name: str) -> dict[str, Any]:
        """A server's tools, listed again if it said they changed."""
        session = self.connected(name)
        if session.tools_stale:
            self.refresh_tools(name)
        return session.tools

    def tool(self, name: str, tool: str) -> Any:
        session = self.connected(name)
        if session.tools_stale or tool not in session.tools:
            # Listed again when the server said so, or when a tool may have been added.
            self.refresh_tools(name)
        try:
            return session.tools[tool]
        except KeyError:
            known = ", ".join(sorted(session.tools)) or "it has no tools"
            raise UnknownTool(f"server {name!r} has no tool {tool!r} ({known})") from None

    def call_tool(
        self,
        name: str,
        tool: str,
        arguments: dict[str, Any] | None = None,
        on_progress: Callable[[float, float | None, str | None], None] | None = None,
    ) -> Any:
        """Call a tool and return the SDK's CallToolResult.

        Progress notifications are delivered to `on_progress` on the calling thread.
        """
        self.tool(name, tool)
        events: queue.SimpleQueue = queue.SimpleQueue()
        progress = None
        if on_progress is not None:

            async def progress(value: float, total: float | None, message: str | None) -> None:
                events.put((value, total, message))

        return self.run(
            self.acall_tool(name, tool, arguments, progress),
            on_event=(lambda item: on_progress(*item)) if on_progress else None,
            events=events,
            label=f"call to {name}.{tool}",
        )

    async def acall_tool(
        self,
        name: str,
        tool: str,
        arguments: dict[str, Any] | None = None,
        progress: Callable[..., Any] | None = None,
    ) -> Any:
        """Call a tool from the loop thread (the agent's concurrent calls use this)."""
        session = self.connected(name)
        failed_before = len(session.request_failures)
        compact = COMPACT.set(True)  # big HTTP answers to this call: compact columns
        try:
            for attempt in (1, 2):
                try:
                    result = await session.client.call_tool(
                        tool, arguments or {}, progress_callback=progress
                    )
                    break
                except Exception as exc:  # -32042: the user must visit pages first, then retry
                    if attempt == 2 or getattr(exc, "code", None) != -32042 or not (
                        await self.client_requests.urls_required(session, exc.data)  # type: ignore[attr-defined]
                    ):
                        raise
            if len(session.request_failures) > failed_before:  # never an error as a value
                raise McpError(f"{name}.{tool}: {session.request_failures[-1]}")
            return await settle_result(session.client, result)
        except McpError:
            raise
        except Exception as exc:
            if (
                session._closed is not None
                and session._closed.is_set()
                or _is_connection_error(exc)
            ):
                await _settle(session)
                raise ServerDied(
                    f"server {name!r} went away during {tool}: {session.death_note()}"
                ) from None
            raise McpError(
                f"{name}.{tool} failed: {session.redact(describe_exception(exc))}"
            ) from None
        finally:
            COMPACT.reset(compact)

    def request(self, name: str, make: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """Run any client request (resources, prompts, ...) with one-line errors."""
        session = self.connected(name)

        async def go() -> T:
            try:
                return await make(session.client)
            except McpError:
                raise
            except Exception as exc:
                raise McpError(f"{name}: {session.redact(describe_exception(exc))}") from None

        return self.run(go(), label=f"request to {name!r}")

    async def arefresh_stale_tools(self) -> None:
        """List tools again for every session whose server said they changed (loop thread)."""
        stale = [s for s in self.sessions.values() if s.state == "connected" and s.tools_stale]
        await asyncio.gather(*(self._refresh_tools(s) for s in stale), return_exceptions=True)

    def refresh_tools(self, name: str) -> dict[str, Any]:
        session = self.connected(name)
        self.request(name, lambda _client: self._refresh_tools(session))
        return session.tools


def _listen_for_tool_changes(session: Session, client: Any, errlog: Any) -> asyncio.Task | None:
    """On 2026 connections, tool list changes come through `subscriptions/listen`.

    (On 2025 connections they arrive as notifications, see `on_message`.) The task
    marks the session's tools stale; they are listed again when next needed.
    """
    capability = getattr(client.server_capabilities, "tools", None)
    if (session.protocol_version or "") < "2026" or not getattr(capability, "list_changed", False):
        return None

    async def listen() -> None:
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                async for _event in subscription:
                    session.tools_stale = True
        except Exception as exc:  # calls still work; tools are listed again on a miss
            if session._closed is not None and session._closed.is_set():
                return  # the server went away: that is reported, not this
            if _is_connection_error(exc):
                return
            errlog.write(
                f"{NOTE_PREFIX} tool change events unavailable: {describe_exception(exc)}\n"
            )

    return asyncio.get_running_loop().create_task(listen(), name=f"mcp:{session.name}:listen")


def _server_process(transport: Any) -> Any:
    """The child process of a stdio transport, for its pid and exit status.

    `stdio_client` does not hand its process out; while the transport is open, it is a
    local of the suspended generator behind the context manager. None when not found.
    """
    frame = getattr(getattr(transport, "gen", None), "ag_frame", None)
    if frame is None:
        return None
    for value in frame.f_locals.values():
        if hasattr(value, "returncode") and isinstance(getattr(value, "pid", None), int):
            return value
    return None


def exit_status(returncode: int) -> str:
    """`exited with code 1`, `killed by SIGKILL`."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


async def _why_closed(session: Session, process: Any, wait: float = 1.0) -> str:
    """A short reason for a lost connection: the exit status of a stdio server."""
    if isinstance(session.spec, HttpSpec):
        return "connection closed"
    if process is None:
        return "the server process exited"
    # Its stdout closes a moment before the process is reaped.
    deadline = time.monotonic() + wait
    while process.returncode is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    if process.returncode is None:
        return "the server closed its output"
    return exit_status(process.returncode)


_LOST = {
    "RemoteProtocolError": "server disconnected",
    "ConnectError": "connection refused",
    "ConnectionRefusedError": "connection refused",
    "ReadError": "connection lost",
    "ConnectionResetError": "connection reset",
    "ReadTimeout": "timed out",
    "ConnectTimeout": "timed out connecting",
}


def _brief(exc: BaseException, session: Session, limit: int = 60) -> str:
    """A few words for `%mcp list`'s state column: why the connection was lost."""
    while getattr(exc, "exceptions", None):
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    text = _LOST.get(type(exc).__name__) or session.redact(describe_exception(exc))
    text = text.rstrip(".")
    return text if len(text) <= limit else text[: limit - 1] + "…"


_HTTP_STATUS = re.compile(r"'(\d{3}) ([^']*)' for url")
_STATUS_HINTS = {
    "401": "it wants credentials, e.g. --header 'Authorization: Bearer $TOKEN'",
    "403": "the credentials were refused",
}


def _connect_failure(exc: BaseException, session: Session) -> str:
    """Why a connect failed, in the user's terms: for a URL, what answered there."""
    while getattr(exc, "exceptions", None):
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    text = describe_exception(exc)
    spec = session.spec
    if not isinstance(spec, HttpSpec):
        return text
    if (auth_failure := explain_auth_failure(exc, spec.target, session.marker)) is not None:
        return auth_failure
    url, lowered = spec.target, text.lower()
    status_match = _HTTP_STATUS.search(text)
    status = " ".join(status_match.groups()) if status_match else None
    if status is None and "server returned an error response" in lowered:
        status = session.http_refusal
    if status and not status.startswith("404"):
        hint = _STATUS_HINTS.get(status[:3])
        if status.startswith("401") and spec.headers:
            hint = "the credentials sent were refused (check the --header value)"
        return f"{url} answered HTTP {status}" + (f": {hint}" if hint else "")
    if "name or service not known" in lowered or "name resolution" in lowered or (
        "nodename nor servname" in lowered
    ):
        return f"the host in {url} was not found (DNS)"
    if "all connection attempts failed" in lowered or "connection refused" in lowered:
        return f"nothing is listening at {url} (connection refused): is the server running?"
    if "wrong_version_number" in lowered or "wrong version number" in lowered:
        return f"TLS failed at {url}: the server may speak http, not https"
    if "certificate_verify_failed" in lowered:
        return f"the TLS certificate of {url} is not trusted"
    if "not found" in lowered and ("404" in lowered or lowered.endswith("not found")):
        where = "/sse" if spec.transport == "sse" else "/mcp"
        return f"{url} answered 404 Not Found: check the path (servers often use {where})"
    if "content type" in lowered and "text/html" in lowered:
        return f"{url} answered with an HTML page, not MCP: is it the server's MCP endpoint?"
    return text


async def _wait_ready(session: Session, ready: asyncio.Future[None], timeout: float) -> None:
    """The connect timeout, extended while the user is asked to authorize (mcp_magic.host.auth)."""
    try:
        await asyncio.wait_for(asyncio.shield(ready), timeout=timeout)
    except asyncio.TimeoutError:
        if not session.awaiting_user:
            raise
        await asyncio.wait_for(asyncio.shield(ready), timeout=session.awaiting_user)


def _is_connection_error(exc: BaseException) -> bool:
    while getattr(exc, "exceptions", None):  # anyio's exception groups
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    text = str(exc).lower()
    return "connection closed" in text or isinstance(exc, (ConnectionError, EOFError))


async def _settle(session: Session, timeout: float = 3.0) -> None:
    """Give the owner task a moment to notice the lost connection and mark it dead."""
    deadline = time.monotonic() + timeout
    while session.state == "connected" and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def _first_of(*awaitables: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def _gather(coros: Iterable[Coroutine[Any, Any, Any]]) -> None:
    await asyncio.gather(*coros, return_exceptions=True)


def live_child_pids() -> list[int]:
    """Processes started by this process that are still running (for tests and checks)."""
    import psutil

    return [p.pid for p in psutil.Process(os.getpid()).children(recursive=True) if p.is_running()]
