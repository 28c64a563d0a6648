"""Tables as Arrow IPC streams, for clients that ask: a columnar fast path inside MCP.

The extension ``io.github.mcp-magic/arrow-tables``
---------------------------------------------------
A client says it can take a table as Arrow in either of two ways:

- in its capabilities (the 2026-07-28 ``extensions`` capability, SEP-2133)::

      "capabilities": {"extensions": {"io.github.mcp-magic/arrow-tables":
                                      {"mimeTypes": ["application/vnd.apache.arrow.stream"]}}}

- or per call, in the ``tools/call`` request's ``_meta`` (any protocol version)::

      "_meta": {"io.github.mcp-magic/arrow-tables":
                {"mimeTypes": ["application/vnd.apache.arrow.stream"]}}

  ``{"mimeTypes": []}`` there turns the fast path off for that call.

Settings without ``mimeTypes`` mean Arrow. The server advertises the extension in its own
capabilities with the MIME types it can send.

The answer to such a client is a normal ``CallToolResult`` whose

- ``content`` is a text summary with the first rows (what a model reads) followed by an
  embedded resource: a ``BlobResourceContents`` with ``mimeType``
  ``application/vnd.apache.arrow.stream``, the table as one Arrow IPC stream
  (record batches compressed with zstd), base64 as MCP requires for blobs;
- ``structuredContent`` is the table shape without ``rows``: ``columns``, ``types``,
  ``row_count``, ``truncated`` (and ``note``), plus ``format`` naming the MIME type.

Types in the stream: INTEGER int64, REAL float64, TEXT utf8, BLOB binary (the raw bytes,
not base64), DATE date32, TIMESTAMP timestamp[us] (timestamp[us, UTC] when the text
carries offsets), NULL null. Every other client gets JSON structured content as before.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from mcp.server.extension import Extension
from mcp.types import BlobResourceContents, CallToolResult, EmbeddedResource, TextContent

from .deferred import Base64Blob, base64_chunks, defer
from .tables import PREVIEW_ROWS, Table, table_text

if TYPE_CHECKING:
    import pyarrow as pa

EXTENSION_ID = "io.github.mcp-magic/arrow-tables"
ARROW_MIME = "application/vnd.apache.arrow.stream"
FIRST_CHUNK = 1024  # rows; chunks grow to MAX_CHUNK while the rows stay small
MAX_CHUNK = 16_384  # rows of Python objects in flight: ~7 MB (65,536 were 30 MB, 7x a
# 100k-row answer's size); more, smaller IPC batches cost nothing measurable
_KINDS = {int: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB"}


class ArrowTables(Extension):
    """Advertises the Arrow answer in the server's capabilities."""

    identifier = EXTENSION_ID

    def settings(self) -> dict[str, Any]:
        return {"mimeTypes": [ARROW_MIME]}


def warm_up_arrow() -> None:
    """Import pyarrow in the background, so the first Arrow answer does not wait for it,
    and make malloc the server's Arrow allocator: pyarrow's own pool (mimalloc) held on to
    every chunk's freed arrays, for a peak 1.6x higher at 1M rows (214 MB against 132).
    The variable reaches what `set_memory_pool` does not (zstd and casts in C++ still used
    mimalloc, which kept 30 MB after a 1M-row answer); it counts only before the import."""
    import os

    if "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

    def load() -> None:
        with contextlib.suppress(ImportError):
            import pyarrow as pa
            import pyarrow.ipc  # noqa: F401

            pa.set_memory_pool(pa.system_memory_pool())

    threading.Thread(target=load, name="import-pyarrow", daemon=True).start()


def _accepts(settings: object) -> bool | None:
    if not isinstance(settings, dict):
        return None
    mime_types = settings.get("mimeTypes")
    if mime_types is None:
        return True
    return isinstance(mime_types, list | tuple) and ARROW_MIME in mime_types


def wants_arrow(ctx: Any) -> bool:
    """Whether this call's client asked for Arrow (per-call `_meta` first, then capabilities)."""
    try:
        meta = ctx.request_context.meta
    except (AttributeError, ValueError, LookupError):
        return False
    if isinstance(meta, dict):
        choice = _accepts(meta.get(EXTENSION_ID))
        if choice is not None:
            return choice
    capabilities = ctx.client_capabilities
    extensions = getattr(capabilities, "extensions", None) or {}
    return bool(_accepts(extensions.get(EXTENSION_ID)))


# --------------------------------------------------------------------------- building columns


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string(),
            "BLOB": pa.binary(), "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us"),
            }.get(kind, pa.null())


def _kind_of(arrow_type: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return "INTEGER"
    if pa.types.is_floating(arrow_type):
        return "REAL"
    if pa.types.is_binary(arrow_type):
        return "BLOB"
    if pa.types.is_date(arrow_type):
        return "DATE"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    if pa.types.is_null(arrow_type):
        return "NULL"
    return "TEXT"


def _as_text(values: Sequence[Any]) -> list[Any]:
    """Mixed cells as text, the way the JSON answer would show them (blobs as base64)."""
    return [v if v is None or type(v) is str
            else base64.b64encode(v).decode("ascii") if type(v) is bytes else str(v)
            for v in values]


def column_array(values: Sequence[Any], declared: str | None) -> pa.Array:
    """One column of a chunk as an Arrow array: typed by its values (one pass over their
    types), then by its declared DATE/TIMESTAMP type when its values are ISO text."""
    import pyarrow as pa

    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds:
        return pa.nulls(len(values), _arrow_type(declared or "NULL"))
    if len(kinds) == 1:
        kind = _KINDS.get(next(iter(kinds)), "TEXT")
    else:
        kind = "REAL" if kinds <= {int, float} else "TEXT"
    if kind == "TEXT" and kinds != {str}:
        values = _as_text(values)
    # pyarrow would quietly truncate a float in an int64 column: the kinds above rule it out
    array = pa.array(values, type=_arrow_type(kind), from_pandas=False)
    if kind == "TEXT" and declared in ("DATE", "TIMESTAMP"):
        return _parse_dates(array, declared)
    return array


def _parse_dates(array: pa.Array, declared: str) -> pa.Array:
    import pyarrow as pa

    targets = ([pa.date32()] if declared == "DATE" else []) + [
        pa.timestamp("us"), pa.timestamp("us", tz="UTC")]
    for target in targets:
        try:
            return array.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return array  # not ISO 8601 after all: stays text


def _unify(arrays: list[pa.Array]) -> list[pa.Array]:
    """One type for a column whose chunks were typed differently (SQLite types per value)."""
    import pyarrow as pa

    types = {a.type for a in arrays if not pa.types.is_null(a.type)}
    if len(types) <= 1:
        target = types.pop() if types else pa.null()
    elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
        target = pa.float64()
    else:
        target = pa.string()
    unified = []
    for array in arrays:
        if array.type == target:
            unified.append(array)
        elif pa.types.is_null(array.type):
            unified.append(pa.nulls(len(array), target))
        elif target == pa.string() and pa.types.is_binary(array.type):
            unified.append(pa.array(_as_text(array.to_pylist()), pa.string()))
        else:
            unified.append(array.cast(target))
    return unified


class _Collected:
    """A file for pyarrow to write an IPC stream into, kept as pieces of about 1 MiB:
    pyarrow's BufferOutputStream doubles its capacity and keeps it (69 MB touched for a
    37 MB stream), and one growing bytearray is copied whole when it is reallocated."""

    closed = False
    PIECE = 1 << 20

    def __init__(self) -> None:
        self.pieces: list[bytearray] = []
        self.size = 0

    def write(self, data: Any) -> int:
        size = len(memoryview(data).cast("B"))
        if not self.pieces or len(self.pieces[-1]) >= self.PIECE:
            self.pieces.append(bytearray())
        self.pieces[-1] += data
        self.size += size
        return size

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def base64_text(pieces: list[Any]) -> str:
    """Base64 of the pieces' bytes joined, as str; each piece is dropped once encoded.

    Encoded into one bytearray of the final size, so at most the raw rest, the base64
    bytes and (while the str is made) their copy exist: MCP wants a blob as text. Only
    for answers the SDK's own writers send; ours take a deferred blob instead.
    """
    total = sum(len(memoryview(piece).cast("B")) for piece in pieces)
    out = bytearray(4 * ((total + 2) // 3))
    position = 0
    for encoded in base64_chunks(pieces):
        out[position:position + len(encoded)] = encoded
        position += len(encoded)
    assert position == len(out)
    return out.decode("ascii")


class ColumnBuilder:
    """Collects chunks of rows as Arrow columns; `finish` makes one table of them.

    With `stream`, each chunk is written to a compressed IPC stream as soon as it is
    typed, and its columns are freed: the uncompressed table never exists whole (at 1M
    rows it is twice the base64 answer). The stream's schema is the first chunk's types
    (declared ones for its all-NULL columns); a later chunk that does not fit it (SQLite
    types each value: an INTEGER column with a REAL in it) turns streaming off: what was
    written is read back and the columns unify at the end, as without `stream`.
    """

    def __init__(self, names: Sequence[str], declared: dict[str, str] | None = None,
                 stream: bool = False) -> None:
        self.names = list(names)
        self.declared = declared or {}
        self.columns: list[list[pa.Array]] = [[] for _ in self.names]
        self.preview: list[list[Any]] = []
        self.rows = 0
        self.nbytes = 0
        self.streaming = stream and bool(self.names)
        self._schema: pa.Schema | None = None
        self._sink: Any = None
        self._writer: Any = None

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if len(self.preview) < PREVIEW_ROWS:
            self.preview.extend(list(row) for row in rows[:PREVIEW_ROWS - len(self.preview)])
        arrays = []
        for i, name in enumerate(self.names):
            values = list(map(itemgetter(i), rows))  # about 3x quicker than zip(*rows)
            array = column_array(values, self.declared.get(name))
            del values
            arrays.append(array)
            self.nbytes += array.nbytes
        self.rows += len(rows)
        if self.streaming and self._write(arrays):
            return
        for column, array in zip(self.columns, arrays, strict=True):
            column.append(array)

    def _write(self, arrays: list[pa.Array]) -> bool:
        """Write one chunk to the stream; False (streaming ends) when it does not fit."""
        import pyarrow as pa

        if self._schema is None:
            self._schema = pa.schema([
                (name, _arrow_type(self.declared.get(name, "NULL"))
                 if pa.types.is_null(array.type) else array.type)
                for name, array in zip(self.names, arrays, strict=True)])
            self._sink = _Collected()
            self._writer = pa.ipc.new_stream(
                pa.PythonFile(self._sink, mode="w"), self._schema,
                # one thread: compressing columns in parallel kept 10 MB more at 1M rows
                options=pa.ipc.IpcWriteOptions(compression="zstd", use_threads=False))
        fitted = []
        for array, field in zip(arrays, self._schema, strict=True):
            if array.type == field.type:
                fitted.append(array)
            elif pa.types.is_null(array.type):
                fitted.append(pa.nulls(len(array), field.type))
            else:
                self._stop_streaming()
                return False
        self._writer.write_batch(pa.record_batch(fitted, schema=self._schema))
        return True

    def _stop_streaming(self) -> None:
        """Read back what was streamed: the chunks unify with the rest in `finish`."""
        import pyarrow as pa

        self.streaming = False
        self._writer.close()
        written = pa.ipc.open_stream(pa.py_buffer(b"".join(self._sink.pieces))).read_all()
        self._writer = self._sink = None
        for i, column in enumerate(written.columns):
            self.columns[i].extend(column.chunks)

    def finish_ipc(self) -> tuple[list[Any], list[str]]:
        """The rows as one compressed IPC stream (see `ipc_bytes`) in pieces, and the
        column types."""
        if self._writer is None:
            table, types = self.finish()
            return [ipc_bytes(table)], types
        self._writer.close()
        buffer = self._sink.pieces
        self._writer = self._sink = None
        return buffer, [_kind_of(field.type) for field in self._schema]

    def finish(self) -> tuple[pa.Table, list[str]]:
        import pyarrow as pa

        if self._writer is not None:
            self._stop_streaming()
        chunks = [pa.chunked_array(_unify(arrays)) if arrays else
                  pa.chunked_array([], _arrow_type(self.declared.get(name, "NULL")))
                  for name, arrays in zip(self.names, self.columns, strict=True)]
        self.columns = [[] for _ in self.names]  # the table owns the arrays from here
        table = pa.Table.from_arrays(chunks, names=self.names) if self.names else pa.table({})
        return table, [_kind_of(column.type) for column in table.columns]


def fetch_columns(cursor: sqlite3.Cursor, names: Sequence[str], limit: int, max_bytes: int,
                  cancel: threading.Event | None = None, declared: dict[str, str] | None = None,
                  progress: Callable[[int, int | None], None] | None = None,
                  ) -> tuple[ColumnBuilder, bool, str | None]:
    """Up to `limit` rows from the cursor into Arrow columns, chunk by chunk, stopping at
    `max_bytes` of Arrow data; whether more rows existed and why they were cut.
    `progress(rows, total)` hears each chunk (total None), and the end (total = rows).

    Chunks start small and grow only while rows are small, so one chunk of rows with
    huge values cannot run far past the byte limit.
    """
    builder = ColumnBuilder(names, declared, stream=True)
    size = FIRST_CHUNK
    while builder.rows < limit:
        if cancel is not None and cancel.is_set():
            raise sqlite3.OperationalError("interrupted")
        rows = cursor.fetchmany(min(size, limit - builder.rows))
        if not rows:
            break
        before = builder.nbytes
        builder.add(rows)
        if progress is not None:
            progress(builder.rows, None)
        if builder.nbytes > max_bytes:
            return builder, True, _size_note(builder.rows, max_bytes)
        per_row = max((builder.nbytes - before) / len(rows), 1.0)
        room = (max_bytes - builder.nbytes) / per_row
        size = int(max(16, min(MAX_CHUNK, size * 2, room / 4)))
    more = builder.rows >= limit and cursor.fetchone() is not None
    if progress is not None:
        progress(builder.rows, builder.rows)
    return builder, more, None


def _size_note(rows: int, max_bytes: int) -> str:
    return (f"answer cut after {rows:,} rows: their Arrow data passed {max_bytes:,} bytes, "
            "the server's answer size limit (--max-answer-bytes)")


# --------------------------------------------------------------------------- the answer


def ipc_bytes(table: pa.Table) -> pa.Buffer:
    """The table as one Arrow IPC stream, zstd-compressed per buffer: at 1M rows about half
    the bytes of plain IPC, quicker to write and read, and less base64 and JSON to carry.
    One Arrow buffer (bytes-like), never copied into a Python `bytes`."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=MAX_CHUNK * 4)
    return sink.getvalue()


@dataclass(frozen=True)
class Encoded:
    """A table already serialized: what the answer needs once the Arrow table is gone."""

    names: list[str]
    num_rows: int
    blob: str  # the IPC stream as base64, or the placeholder of a deferred Base64Blob


def encode(table: pa.Table, deferred: bool = False) -> Encoded:
    """Serialize once: IPC into one Arrow buffer, then base64 from it directly."""
    return encode_owned([table], deferred)


def encode_owned(box: list[pa.Table], deferred: bool = False) -> Encoded:
    """`encode` for a table handed over in a one-item list: it is freed as soon as its IPC
    stream is written, so the uncompressed columns and the text never live at the same
    time. With `deferred` (the answer goes through this server's writers) the stream
    stays bytes and is base64 encoded on the way out; else MCP forces the rest: a blob is
    base64 *text* (`BlobResourceContents.blob: str`), so the base64 bytes are copied once
    more into a str.
    """
    table = box.pop()
    names, rows = list(table.column_names), table.num_rows
    ipc = ipc_bytes(table)
    del table
    release_memory()  # the columns (from pyarrow's pool) and the fetched rows (malloc)
    return encode_ipc([ipc], names, rows, deferred)


def encode_ipc(pieces: list[Any], names: list[str], rows: int,
               deferred: bool = False) -> Encoded:
    """`Encoded` from an IPC stream in pieces (`ColumnBuilder.finish_ipc`): deferred, or
    encoded now with each piece freed once encoded."""
    if deferred:
        return Encoded(names, rows, defer(Base64Blob(pieces)))
    text = base64_text(pieces)
    release_memory()
    return Encoded(names, rows, text)


def release_memory() -> None:
    """Hand freed memory back to the system: pyarrow's pool and glibc both keep it for
    reuse, which after a big answer reads as a server that never shrinks. Linux only."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def arrow_answer(tool: str, table: pa.Table | Encoded, types: list[str],
                 preview: list[list[Any]], truncated: bool, note: str | None,
                 extra: dict[str, Any] | None = None) -> CallToolResult:
    """The result: a summary text, the Arrow stream as an embedded blob, small structure.

    The rows are serialized once, as IPC (`encode`; pass an `Encoded` to have the Arrow
    table freed before the base64 text exists; `_arrow_query` streams the IPC while it
    fetches). When this server's writers send the answer (server/stdio.py,
    server/http.py), the blob is a placeholder for the stream's bytes
    (server/deferred.py), base64 encoded a few MiB at a time as the message goes out: the
    server holds the compressed stream, never its text (about 1x the answer at 1M rows).
    Otherwise MCP makes a blob base64 text, and the text and the bytes it is made from
    exist together once (2x the answer); the SDK's dumps share that str. On the client,
    the reader parses the line once. With zstd these passes touch about a third of the
    bytes the JSON rows would.
    """
    from .tables import encode_blobs

    encoded = table if isinstance(table, Encoded) else encode(table)
    del table
    summary = Table(columns=encoded.names, types=types,
                    rows=encode_blobs([list(r) for r in preview], types),
                    row_count=encoded.num_rows, truncated=truncated or note is not None)
    if note is not None:
        summary["note"] = note
    if extra:
        summary.update(extra)  # type: ignore[typeddict-item]
    text = table_text(summary, force_preview=True)
    structured = {key: value for key, value in summary.items() if key != "rows"}
    structured["format"] = ARROW_MIME
    resource = BlobResourceContents(uri=f"table://{tool}/result", mime_type=ARROW_MIME,
                                    blob=encoded.blob)
    return CallToolResult(content=[TextContent(type="text", text=text),
                                   EmbeddedResource(type="resource", resource=resource)],
                          structured_content=structured)


def table_to_arrow(table: Table) -> tuple[pa.Table, list[str]]:
    """A finished row table (read_csv, list_files, ...) as Arrow, keeping its types."""
    builder = ColumnBuilder(table["columns"], dict(zip(table["columns"], table["types"],
                                                       strict=True)))
    builder.add(table["rows"])
    arrow, types = builder.finish()
    # DATE/TIMESTAMP columns that did not parse, and the declared types of empty columns
    return arrow, [kind if kind != "NULL" else declared
                   for kind, declared in zip(types, table["types"], strict=True)]


def arrow_table_result(tool: str, table: Table, deferred: bool = False) -> CallToolResult:
    arrow, types = table_to_arrow(table)
    box = [arrow]
    del arrow
    encoded = encode_owned(box, deferred)
    extra = {key: value for key, value in table.items()
             if key not in ("columns", "types", "rows", "row_count", "truncated", "note")}
    return arrow_answer(tool, encoded, types, table["rows"][:PREVIEW_ROWS], table["truncated"],
                        table.get("note"), extra)
