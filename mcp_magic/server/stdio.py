"""The stdio server transport: each message serialized once, as bytes, straight to stdout.

The SDK's `mcp.server.stdio.stdio_server` writes a message as
``stdout.write(message.model_dump_json(...) + "\\n")`` through a text wrapper: the JSON
as a str, that str again with its newline, then its UTF-8 encoding, all alive at once
-- three copies of a 95 MB answer on top of the result itself (the server peaked at
5x the answer). This transport keeps the SDK's session, message types and stream
claim (fd 0 and 1 diverted while serving), and replaces the two pipe ends:

- the writer serializes a message once, to bytes (`pydantic_core`, no str), and writes
  them to the pipe. A response's big parts -- a long string, a long list, and above all
  the placeholders of deferred parts (server/deferred.py: an Arrow stream written as
  base64 on the way out, rows serialized while they were fetched) -- are cut out of the
  message first and written in chunks of their own, so no copy of the whole answer is
  ever made: the server holds the result plus one chunk;
- the reader cuts stdin into lines with the client's linear `LineSplitter` and
  validates each line once, as bytes.

Both ends use the pipe in non-blocking mode, so a message costs no thread hop (the SDK
runs every read, write and flush in a worker thread). When stdin or stdout is not a
pipe or socket (a terminal, a file), the SDK's transport serves instead: non-blocking
mode on a terminal would leak to the shell sharing it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import mcp_types as types
import pydantic_core
from mcp.server import stdio as sdk_stdio
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage

from ..host.stdio_transport import LineSplitter, MessageTooLarge
from . import deferred

BIG_STRING = 1 << 16
"""Strings of more characters are written in chunks (JSON-escaped piece by piece)."""
BIG_LIST = 4096
"""Lists of more items are written in chunks of `LIST_CHUNK` items."""
STRING_CHUNK = 1 << 20
LIST_CHUNK = 2048
READ_SIZE = 1 << 20

_TOKEN = secrets.token_hex(8)


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


# -- serializing one message in pieces ----------------------------------------------------------


def _cut_out(value: Any, parts: list[Any], depth: int = 0) -> Any:
    """`value` with its big strings and lists replaced by placeholder strings (kept in
    `parts`); containers on the way are copied, never changed. Long lists are not
    searched inside (their items are written as they are), so the walk stays short."""
    if isinstance(value, str):
        if value.startswith(deferred.PREFIX):
            part = deferred.take(value)
            if part is None:
                return value
            parts.append(part)
            return f"{_TOKEN}-{len(parts) - 1}"
        if len(value) <= BIG_STRING:
            return value
    elif isinstance(value, list):
        if len(value) <= BIG_LIST:
            if depth > 8:
                return value
            items = [_cut_out(item, parts, depth + 1) for item in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    elif isinstance(value, dict):
        if depth > 8:
            return value
        copied = {key: _cut_out(item, parts, depth + 1) for key, item in value.items()}
        return value if all(copied[k] is v for k, v in value.items()) else copied
    else:
        return value
    parts.append(value)
    return f"{_TOKEN}-{len(parts) - 1}"


def _chunks_of(part: str | list[Any] | deferred.Deferred) -> Iterator[bytes]:
    """A big string or list as JSON, in pieces (each piece serialized on its own), or a
    deferred part (server/deferred.py) as it writes itself."""
    if isinstance(part, deferred.Deferred):
        yield from part.chunks()
        return
    if isinstance(part, str):
        yield b'"'
        for start in range(0, len(part), STRING_CHUNK):
            yield pydantic_core.to_json(part[start:start + STRING_CHUNK])[1:-1]
        yield b'"'
        return
    yield b"["
    for start in range(0, len(part), LIST_CHUNK):
        piece = pydantic_core.to_json(part[start:start + LIST_CHUNK])
        yield piece[1:-1] if start == 0 else b"," + piece[1:-1]
    yield b"]"


def message_chunks(message: types.JSONRPCMessage, end: bytes = b"\n") -> Iterator[bytes]:
    """The message as one JSON line (what the SDK's writer sends), in pieces; `end` closes it.

    Only a response's result is searched for big parts: requests and notifications
    from a server are small.
    """
    parts: list[Any] = []
    if isinstance(message, types.JSONRPCResponse) and isinstance(message.result, dict):
        result = _cut_out(message.result, parts)
        if parts:
            message = message.model_copy(update={"result": result})
    head = message.__pydantic_serializer__.to_json(message, by_alias=True, exclude_unset=True)
    if not parts:
        yield head + end
        return
    position = 0
    for index, part in enumerate(parts):
        marker = f'"{_TOKEN}-{index}"'.encode()
        found = head.find(marker, position)
        if found < 0:  # cannot happen: the placeholder is in the result
            raise RuntimeError("lost a part of the message while serializing it")
        yield head[position:found]
        yield from _chunks_of(part)
        position = found + len(marker)
    yield head[position:] + end


# -- the pipe ends ------------------------------------------------------------------------------


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await anyio.wait_writable(fd)
            continue
        view = view[written:]


async def write_message(fd: int, message: types.JSONRPCMessage) -> None:
    pending = bytearray()
    for chunk in message_chunks(message):
        # Small pieces are gathered so a message costs few system calls.
        if len(chunk) < 65536:
            pending += chunk
            if len(pending) < 65536:
                continue
            chunk, pending = bytes(pending), bytearray()
        elif pending:
            await _write_all(fd, bytes(pending))
            pending = bytearray()
        await _write_all(fd, chunk)
    if pending:
        await _write_all(fd, bytes(pending))
    await anyio.lowlevel.checkpoint()


async def read_lines(fd: int) -> AsyncIterator[bytes | bytearray]:
    """Lines of `fd` until its end (the unterminated rest too)."""
    splitter = LineSplitter()
    while True:
        try:
            chunk = os.read(fd, READ_SIZE)
        except BlockingIOError:
            await anyio.wait_readable(fd)
            continue
        if not chunk:
            break
        for line in splitter.feed(chunk):
            yield line
    rest = splitter.finish()
    if rest is not None:
        yield rest


@asynccontextmanager
async def stdio_server() -> AsyncIterator[tuple[Any, Any]]:
    """Serve MCP over this process's stdin and stdout (a drop-in for the SDK's).

    The descriptors are claimed as the SDK claims them (fd 0 and 1 point at the null
    device and stderr while serving, so stray output misses the wire) and restored after.
    """
    if not (_is_pipe(0) and _is_pipe(1)):
        async with sdk_stdio.stdio_server() as streams:
            yield streams
        return
    restore_in = restore_out = None
    expands = deferred.WRITER_EXPANDS.set(True)  # every answer goes through write_message
    try:
        stdin, restore_in = sdk_stdio._claim_fd(0, sys.stdin, "rb",
                                                sdk_stdio._open_stdin_diversion)
        stdout, restore_out = sdk_stdio._claim_fd(1, sys.stdout, "wb",
                                                  sdk_stdio._open_stdout_diversion)
        in_fd, out_fd = stdin.fileno(), stdout.fileno()
        blocking = os.get_blocking(in_fd), os.get_blocking(out_fd)
        os.set_blocking(in_fd, False)
        os.set_blocking(out_fd, False)
        read_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
        write_stream, write_reader = create_context_streams[SessionMessage](0)

        async def stdin_reader() -> None:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError,
                                     MessageTooLarge):
                async with read_writer:
                    async for line in read_lines(in_fd):
                        if not line or line.isspace():
                            continue
                        try:
                            message = types.jsonrpc_message_adapter.validate_json(
                                line, by_name=False)
                        except Exception as exc:  # as the SDK: the session answers it
                            await read_writer.send(exc)
                            continue
                        await read_writer.send(SessionMessage(message))

        async def stdout_writer() -> None:
            with contextlib.suppress(anyio.ClosedResourceError, BrokenPipeError):
                async with write_reader:
                    async for session_message in write_reader:
                        await write_message(out_fd, session_message.message)
                        del session_message  # no answer stays referenced between messages

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(stdin_reader)
                tg.start_soon(stdout_writer)
                yield read_stream, write_stream
        finally:
            with contextlib.suppress(OSError):
                os.set_blocking(in_fd, blocking[0])
                os.set_blocking(out_fd, blocking[1])
    finally:
        deferred.WRITER_EXPANDS.reset(expands)
        if restore_out is not None:
            restore_out()
        if restore_in is not None:
            restore_in()


async def run_stdio(server: Any) -> None:
    """`MCPServer.run_stdio_async` over this transport."""
    lowlevel = server._lowlevel_server
    async with stdio_server() as (read_stream, write_stream):
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
