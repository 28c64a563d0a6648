"""The stdio client transport with a reader whose cost is linear in the message size.

The SDK's `mcp.client.stdio.stdio_client` rebuilds the unfinished line for every
64 KiB chunk (`(buffer + chunk).split("\\n")`), which is quadratic: a 95 MB answer
(a million table rows) spends over a minute there. This module keeps everything else
of the SDK's transport -- message types, process start (env, cwd, errlog, its own
process group), the shutdown sequence that kills the whole process tree -- by calling
the SDK's own helpers, and replaces only the reader:

- chunks of a line are kept in a list and joined once, when its newline arrives;
- each complete line is validated once, as bytes, by the SDK's JSON-RPC message type
  (no separate decode pass; invalid UTF-8 is replaced, never raised);
- a line that is not a JSON-RPC message (a server printing to stdout) is written as one
  line to the session's log (`errlog`) and skipped, instead of a traceback on the
  kernel's stderr and an exception handed to the session;
- a line past `MAX_MESSAGE_BYTES` ends the connection with one log line, so a broken
  server cannot grow the kernel without bound.

Validating bytes rather than a decoded str also halves the parse of a 100 MB line
(3 s against 6 s measured with the garbage collector on, as it is in a kernel).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TextIO

import anyio
import anyio.lowlevel
import pydantic_core
from anyio.abc import ByteReceiveStream

# The SDK's process handling, reused as is: only the reader differs from stdio_client.
from mcp.client.stdio import (
    StdioServerParameters,
    _aclose_all,
    _create_platform_compatible_process,
    _drain_stdout,
    _get_executable_command,
    _stop_server_process,
    get_default_environment,
)
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCResponse, jsonrpc_message_adapter
from pydantic import ValidationError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "LineSplitter",
    "MessageTooLarge",
    "StdioServerParameters",
    "parse_line",
    "read_messages",
    "stdio_client",
]

MAX_MESSAGE_BYTES = 1 << 30
"""Largest message accepted (1 GiB, about ten million table rows as JSON)."""

CHUNK_SIZE = 1 << 20
"""Most bytes asked of the pipe per read (it returns what is there, often 64 KiB)."""

LOG_PREFIX = "[mcp_magic]"
PREVIEW_CHARS = 200
"""How much of an ignored line the log shows."""
MAX_LOGGED_LINES = 100
"""Ignored lines logged per session; after that they are only counted."""

BIG_LINE = 1 << 20
"""After a message this long the reader sends `RELEASE` (see `read_messages`)."""

RELEASE_ID = "mcp_magic:release"


def release_message() -> SessionMessage:
    """A response to no request: the session drops it (a debug log line) and nothing else.

    The SDK's dispatcher keeps the last message it received in its loop variable until
    the next one comes: after a big answer that is the whole wire result -- a million
    rows as Python lists, 2.3 GB after the call (660 MB after `malloc_trim`), held until
    the server says anything else. Sent right after a big message, this one takes
    its place, and the answer is freed as soon as its caller is done with it.
    """
    return SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=RELEASE_ID, result={}))


_WRITER_FLUSH_TIMEOUT = 0.5  # as in the SDK: time for the writer to flush before stdin closes


class MessageTooLarge(Exception):
    """A line grew past the bound: the server is broken, and the connection ends."""


class LineSplitter:
    """Cuts a byte stream into lines; every byte is scanned and copied a bounded number of times.

    A line that spans chunks grows in one bytearray (handed out as the line: no join, so
    a 100 MB line never exists twice); a line within one chunk is a slice of it (bytes).
    """

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pending = bytearray()

    def feed(self, chunk: bytes) -> list[bytes | bytearray]:
        """The lines `chunk` completes, without their newline."""
        lines: list[bytes | bytearray] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if self._pending:
                self._check(len(self._pending) + end - start)
                self._pending += memoryview(chunk)[start:end]
                lines.append(self._pending)
                self._pending = bytearray()
            else:
                self._check(end - start)
                lines.append(chunk[start:end])
            start = end + 1
        if start < len(chunk):
            self._check(len(self._pending) + len(chunk) - start)
            self._pending += memoryview(chunk)[start:] if start else chunk
        return lines

    def finish(self) -> bytes | bytearray | None:
        """The unterminated rest at end of stream, if any."""
        if not self._pending:
            return None
        rest, self._pending = self._pending, bytearray()
        return rest

    def _check(self, size: int) -> None:
        if size > self.max_bytes:
            raise MessageTooLarge(
                f"a line on stdout grew past {self.max_bytes:,} bytes; closing the connection"
            )


def _big_response(data: bytes | bytearray | str,
                  compact: bool | None = None) -> SessionMessage | None:
    """A long line that is a result, parsed once, or None to parse it the usual way.

    The SDK's `jsonrpc_message_adapter` validates a union of message types; for a result
    of a million table rows (91 MB of JSON) that made 2.2 GB of Python objects and took
    twice as long as parsing the JSON. A result's `result` is any JSON object, so it
    needs no validation: the JSON is parsed once (`from_json`) and only the envelope is
    validated by the SDK's `JSONRPCResponse`; the parsed result is then put in as it is.
    A table's rows are parsed into compact columns instead of Python lists
    (`mcp_magic.tables.big_json`).
    """
    parsed = None
    if not isinstance(data, str):
        from ..tables.big_json import COMPACT, parse_result

        if COMPACT.get() if compact is None else compact:
            parsed = parse_result(data)  # a big table's rows as compact columns
    try:
        if parsed is None:
            parsed = pydantic_core.from_json(data)
    except ValueError:
        return None
    if not (isinstance(parsed, dict) and isinstance(parsed.get("result"), dict)
            and "method" not in parsed and "error" not in parsed):
        return None
    result = parsed.pop("result")
    try:
        response = JSONRPCResponse.model_validate({**parsed, "result": {}}, by_name=False)
    except ValidationError:
        return None
    response.result = result
    return SessionMessage(response)


class _OnePassAdapter:
    """The SDK's `jsonrpc_message_adapter`, with long results parsed by `_big_response`."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter

    def validate_json(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        if not args and set(kwargs) <= {"by_name"} and len(data) > BIG_LINE:
            # The SDK's HTTP client parses in the context of the task that sent the
            # request: compact columns where that task is the host's (`acall_tool`).
            fast = _big_response(data)
            if fast is not None:
                return fast.message
        return self._adapter.validate_json(data, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


def parse_big_results_once(module: Any) -> None:
    """Give an SDK client transport module (streamable HTTP, SSE) the one-pass parse of
    long results this reader uses. Those modules parse with the `jsonrpc_message_adapter`
    they imported; the SDK has no parameter for it, so that name is replaced by a
    wrapper that hands everything else to the SDK's adapter. A module without the name
    (another SDK version) is left as it is. Big tables are parsed into compact columns
    (`mcp_magic.tables.big_json`) only for the host's own calls (`COMPACT` is set by
    `SessionManager.acall_tool`); any other client of the module gets plain rows."""
    adapter = getattr(module, "jsonrpc_message_adapter", None)
    if adapter is not None and not isinstance(adapter, _OnePassAdapter):
        module.jsonrpc_message_adapter = _OnePassAdapter(adapter)


def parse_line(line: bytes | bytearray, encoding: str = "utf-8") -> SessionMessage | str:
    """One stdout line as a message, or why it is not one (a line for the log)."""
    utf8 = encoding.lower().replace("-", "").replace("_", "") == "utf8"
    data: bytes | bytearray | str = line if utf8 else line.decode(encoding, errors="replace")
    if len(data) > BIG_LINE and (fast := _big_response(data)) is not None:
        return fast
    try:
        return SessionMessage(jsonrpc_message_adapter.validate_json(data, by_name=False))
    except ValidationError as exc:
        error = exc
    if not isinstance(data, str):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            # Valid JSON with a bad byte in a string is still a message worth delivering.
            data = data.decode("utf-8", errors="replace")
            try:
                return SessionMessage(jsonrpc_message_adapter.validate_json(data, by_name=False))
            except ValidationError as exc:
                error = exc
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    not_json = any(e.get("type") == "json_invalid" for e in error.errors())
    what = "non-JSON line" if not_json else "line that is not a JSON-RPC message"
    return f"ignored {what} on stdout: {_preview(text)}"


def _preview(text: str) -> str:
    text = text.strip()
    if len(text) <= PREVIEW_CHARS:
        return repr(text)
    return f"{text[:PREVIEW_CHARS]!r}... ({len(text):,} characters)"


async def read_messages(
    stdout: ByteReceiveStream,
    deliver: Callable[[SessionMessage], Awaitable[None]],
    log: Callable[[str], None],
    encoding: str = "utf-8",
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> None:
    """Read `stdout` to its end, handing each JSON-RPC line to `deliver`.

    Lines are delivered one at a time, and nothing more is read while a delivery is
    blocked. A long line is followed by `release_message()`. Everything else goes to
    `log` as one line each (blank lines silently).
    A line longer than `max_bytes` is logged and ends the reading (MessageTooLarge).
    """
    splitter = LineSplitter(max_bytes)
    ignored = 0

    async def handle(line: bytes | bytearray) -> None:
        nonlocal ignored
        if not line or line.isspace():  # stops at the first other byte: no copy, no scan
            return
        parsed = parse_line(line, encoding)
        big = len(line) > BIG_LINE
        del line  # parsed: the bytes go before the message is used
        if isinstance(parsed, SessionMessage):
            await deliver(parsed)
            if big:
                del parsed
                await deliver(release_message())
            return
        ignored += 1
        if ignored <= MAX_LOGGED_LINES:
            log(parsed)
        if ignored == MAX_LOGGED_LINES:
            log(f"further ignored stdout lines are not logged (after {MAX_LOGGED_LINES})")

    while True:
        try:
            chunk = await stdout.receive(CHUNK_SIZE)
        except anyio.EndOfStream:
            break
        try:
            lines = splitter.feed(chunk)
        except MessageTooLarge as exc:
            log(str(exc))
            raise
        # Popped, so no line (possibly of 100 MB) stays referenced while the next read waits.
        lines.reverse()
        while lines:
            await handle(lines.pop())
    rest = splitter.finish()
    if rest is not None:
        await handle(rest)


class _SessionGone(Exception):
    """The session closed its end of the read stream."""


def _log_writer(errlog: TextIO) -> Callable[[str], None]:
    def log(message: str) -> None:
        try:
            errlog.write(f"{LOG_PREFIX} {message}\n")
            errlog.flush()
        except (OSError, ValueError):  # a closed log must not end the session
            pass

    return log


RELEASES_BIG_MESSAGES = "releases_big_messages"
"""Attribute set (True) on the transport `stdio_client` returns: its reader follows every
big message with `release_message()`, so the client need not do it (mcp_magic.tables.columnar)."""


def stdio_client(
    server: StdioServerParameters, errlog: TextIO = sys.stderr
) -> AbstractAsyncContextManager[tuple[Any, Any]]:
    """Start a stdio MCP server and connect to it; a drop-in for the SDK's `stdio_client`
    (see `_stdio_client`), marked with `RELEASES_BIG_MESSAGES`."""
    transport = _stdio_client(server, errlog)
    setattr(transport, RELEASES_BIG_MESSAGES, True)
    return transport


@asynccontextmanager
async def _stdio_client(
    server: StdioServerParameters, errlog: TextIO = sys.stderr
) -> AsyncGenerator[tuple[Any, Any], None]:
    """Start a stdio MCP server and connect to it; a drop-in for the SDK's `stdio_client`.

    The body mirrors `mcp.client.stdio.stdio_client` (mcp 2.3) line for line except the
    reader, so process start and shutdown (close stdin, wait, kill the process tree,
    every wait bounded and shielded from cancellation) stay the SDK's.
    """
    command = await _get_executable_command(server.command)
    process = await _create_platform_compatible_process(
        command=command,
        args=server.args,
        env=get_default_environment() | (server.env or {}),
        errlog=errlog,
        cwd=server.cwd,
    )

    # No awaits until the task group is entered, or a cancellation would leak the process.
    read_stream_writer, read_stream = anyio.create_memory_object_stream[
        SessionMessage | Exception
    ](0)
    write_stream, write_stream_reader = anyio.create_memory_object_stream[SessionMessage](0)
    from ..tables.big_json import COMPACT

    compact = COMPACT.set(True)  # the reader's task inherits it: big tables as columns
    shutting_down = False
    writer_done = anyio.Event()
    log = _log_writer(errlog)

    async def deliver(message: SessionMessage) -> None:
        try:
            await read_stream_writer.send(message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise _SessionGone from None

    async def stdout_reader() -> None:
        assert process.stdout, "Opened process is missing stdout"
        try:
            async with read_stream_writer:
                try:
                    await read_messages(process.stdout, deliver, log, server.encoding)
                except (_SessionGone, MessageTooLarge):
                    pass  # the read stream closes: the session sees the connection end
                finally:
                    await _drain_stdout(process)
        except anyio.ClosedResourceError:
            pass  # our own shutdown closed the stdout stream under the read
        except (anyio.BrokenResourceError, ConnectionError) as exc:
            if not shutting_down:
                log(f"reading the server's stdout failed: {type(exc).__name__}: {exc}")

    async def stdin_writer() -> None:
        assert process.stdin, "Opened process is missing stdin"
        try:
            async with write_stream_reader:
                async for session_message in write_stream_reader:
                    json = session_message.message.model_dump_json(
                        by_alias=True, exclude_unset=True
                    )
                    data = (json + "\n").encode(
                        encoding=server.encoding, errors=server.encoding_error_handler
                    )
                    await process.stdin.send(data)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # The server may still be alive: end the read side so no request hangs.
            await read_stream_writer.aclose()
        finally:
            writer_done.set()

    async def shutdown() -> None:
        """Stop traffic, flush, stop the server (tree), release the streams -- as the SDK does."""
        read_stream.close()
        write_stream.close()
        with anyio.move_on_after(_WRITER_FLUSH_TIMEOUT):
            await writer_done.wait()
        await _stop_server_process(process)
        await _aclose_all(read_stream, write_stream, read_stream_writer, write_stream_reader)
        await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stdout_reader)
        tg.start_soon(stdin_writer)
        try:
            yield read_stream, write_stream
        finally:
            shutting_down = True
            # Shutdown must finish even when the caller is cancelled, or the server leaks.
            with anyio.CancelScope(shield=True):
                await shutdown()
            tg.cancel_scope.cancel()
    with contextlib.suppress(ValueError):  # left in another context: nothing to undo
        COMPACT.reset(compact)
    await anyio.lowlevel.cancel_shielded_checkpoint()
