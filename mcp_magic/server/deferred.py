"""Big answer parts that go on the wire without ever existing whole as text.

A big answer is mostly one value: an Arrow stream (base64 text in an embedded resource
blob) or a table's rows (a JSON array in structured content). Built as Python objects
first, the server held the stream, its base64 text and the serialized message at once
(over 2x the answer), or a million rows as Python lists (8x). Instead:

- the tool keeps the value as bytes (`Base64Blob`: the Arrow stream in pieces; `RawJson`:
  the rows already serialized as JSON, batch by batch while fetching), registers it with
  `defer`, and puts the returned placeholder string where the value goes;
- this server's own writers (server/stdio.py's `message_chunks`, used by the stdio
  transport and the streamable-HTTP writers in server/http.py) find the placeholder and
  write the value there piece by piece (`chunks`): base64 encoded a few MiB at a time.

The SDK's own writers (SSE, the handshake-era HTTP transport, stdio to a terminal) know
nothing of placeholders, so a tool defers only when `WRITER_EXPANDS` says its answer goes
through one of ours; otherwise it answers with plain values, as any MCP server does.
"""

from __future__ import annotations

import binascii
import secrets
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

WRITER_EXPANDS: ContextVar[bool] = ContextVar("mcp_magic_writer_expands", default=False)
"""True where the answer to the current request is written by `message_chunks` (set by
server/stdio.py's transport and around the SDK's per-request HTTP entry)."""

PREFIX = f"mcp-magic-deferred-{secrets.token_hex(8)}-"
MAX_AGE = 3600.0
"""Seconds a registered part waits for its writer; one whose answer was never written
(the client went away in between) is dropped when the next one is registered."""
BASE64_STEP = 3 << 20  # raw bytes encoded at a time (4 MiB of text)


class Deferred:
    """A JSON value written in pieces (`chunks`), each piece freed once written."""

    def chunks(self) -> Iterator[bytes]:
        raise NotImplementedError


class Base64Blob(Deferred):
    """Bytes (in pieces: bytes, bytearray, Arrow buffers) written as a JSON base64 string."""

    def __init__(self, pieces: list[Any]) -> None:
        self.pieces = pieces

    def chunks(self) -> Iterator[bytes]:
        yield b'"'
        yield from base64_chunks(self.pieces)
        yield b'"'


class RawJson(Deferred):
    """A JSON array whose items are already serialized: each piece is one or more items
    joined by commas, without the brackets."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def chunks(self) -> Iterator[bytes]:
        pieces = self.pieces
        pieces.reverse()
        yield b"["
        first = True
        while pieces:
            piece = pieces.pop()
            if not first:
                yield b","
            yield piece
            first = False
            del piece
        yield b"]"


def base64_chunks(pieces: list[Any]) -> Iterator[bytes]:
    """Base64 of the pieces' bytes joined, in chunks; each piece is dropped (popped from
    `pieces`) once encoded, so the raw bytes shrink as the text goes out."""
    carry = b""
    pieces.reverse()
    while pieces:
        view = memoryview(pieces.pop()).cast("B")
        if carry:
            head = carry + bytes(view[:3 - len(carry)])
            view = view[3 - len(carry):]
            if len(head) < 3 and pieces:
                carry = head
                continue
            yield binascii.b2a_base64(head, newline=False)
            carry = b""
        whole = len(view) - len(view) % 3 if pieces else len(view)
        for start in range(0, whole, BASE64_STEP):
            yield binascii.b2a_base64(view[start:min(start + BASE64_STEP, whole)],
                                      newline=False)
        carry = bytes(view[whole:])
        del view
    if carry:
        yield binascii.b2a_base64(carry, newline=False)


_parts: dict[str, tuple[float, Deferred]] = {}
_lock = threading.Lock()  # tools register from worker threads
_count = 0


def defer(part: Deferred) -> str:
    """Register `part`; the placeholder string to put where its value goes."""
    global _count
    now = time.monotonic()
    with _lock:
        for key in [k for k, (born, _) in _parts.items() if now - born > MAX_AGE]:
            del _parts[key]
        _count += 1
        key = f"{PREFIX}{_count}"
        _parts[key] = (now, part)
    return key


def take(value: str) -> Deferred | None:
    """The part a placeholder stands for (unregistered from here on), or None."""
    if not value.startswith(PREFIX):
        return None
    with _lock:
        entry = _parts.pop(value, None)
    return None if entry is None else entry[1]


def pending() -> int:
    """How many parts wait for their writer (for tests)."""
    return len(_parts)
