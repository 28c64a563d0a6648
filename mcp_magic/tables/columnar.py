"""Binary tables in tool results: Arrow IPC and Parquet, embedded or linked, as DataFrames.

The host tells servers it takes tables as Arrow with the extension
``io.github.mcp-magic/arrow-tables`` in its capabilities (settings:
``{"mimeTypes": ["application/vnd.apache.arrow.stream", ...]}``; a server may also honour the
same key in a ``tools/call`` ``_meta``). The built-in data server then answers tables as an
Arrow IPC stream in an embedded resource (see ``mcp_magic/server/arrow.py``).

From any server, a result whose content holds

- an embedded resource blob of type Arrow IPC stream or file (Feather v2) or Parquet, or
- a resource link to one (by MIME type or file suffix): read with ``resources/read``
  through the session (`resolve_links`, on the session's loop), or straight from disk
  for a ``file://`` link,

becomes a DataFrame with the table's own dtypes: integers with nulls as ``Int64`` (as the
JSON path gives), dates and timestamps as ``datetime64`` in the unit pandas itself parses
ISO text to. pyarrow is imported on first use, never at ``%load_ext``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gc
import sys
import weakref
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from . import big_json
from .big_json import compact_rows

EXTENSION_ID = "io.github.mcp-magic/arrow-tables"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
PARQUET = "application/vnd.apache.parquet"
_MIME_KINDS = {
    ARROW_STREAM: "stream",
    ARROW_FILE: "file",
    "application/x-arrow": "stream",
    PARQUET: "parquet",
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
}
_SUFFIX_KINDS = {".arrows": "stream", ".arrow": "file", ".feather": "file", ".ipc": "file",
                 ".parquet": "parquet", ".pq": "parquet"}


def client_extensions() -> list[Any]:
    """What `mcp.Client(extensions=...)` needs to announce the Arrow answer."""
    from mcp.client.extension import advertise

    return [advertise(EXTENSION_ID, {"mimeTypes": [ARROW_STREAM, ARROW_FILE, PARQUET]})]


def _kind(mime: str | None, uri: str | None) -> str | None:
    """'stream', 'file' or 'parquet' for a binary table's MIME type or name, else None."""
    if mime:
        kind = _MIME_KINDS.get(mime.split(";")[0].strip().lower())
        if kind:
            return kind
    if uri:
        return _SUFFIX_KINDS.get(PurePosixPath(urlparse(str(uri)).path).suffix.lower())
    return None


def _table_block(result: Any) -> Any:
    """The first content block that is (or links to) a binary table, else None."""
    for block in getattr(result, "content", None) or ():
        kind = getattr(block, "type", None)
        if kind == "resource":
            resource = block.resource
            if getattr(resource, "blob", None) is not None and _kind(
                getattr(resource, "mime_type", None), str(resource.uri)
            ):
                return block
        elif kind == "resource_link" and _kind(getattr(block, "mime_type", None), str(block.uri)):
            return block
    return None


def has_table(result: Any) -> bool:
    """Cheap check (no pyarrow): does the result carry a binary table, or a JSON table
    the transport parsed into compact columns (`mcp_magic.tables.big_json`)?"""
    return _table_block(result) is not None or compact_rows(result) is not None


async def settle_result(client: Any, result: Any) -> Any:
    """A tool's result as the session hands it on: a linked binary table read
    (`resolve_links`); for a big JSON answer, the SDK's hold on the wire message dropped
    and the memory given back to the system once the result is gone. Without that, a
    million JSON rows kept 2.3 GB in the kernel after `del df` (660 MB after a trim)."""
    if compact_rows(result) is not None:
        await _let_go_of_last_message(client)
        _release_when_gone(result)
        return result
    if has_table(result):
        return await resolve_links(client, result)
    if _is_big_json(result):
        await _let_go_of_last_message(client)
        _release_when_gone(result)
    return result


def _reader_lets_go(client: Any) -> bool:
    """Whether the client's transport releases a big message itself: mcp_magic's stdio
    reader follows each with a message of its own (`stdio_transport.release_message`).
    Wrappers around the transport (the host's watcher) keep it as `_inner`."""
    from ..host.stdio_transport import RELEASES_BIG_MESSAGES

    transport = getattr(client, "server", None)
    for _ in range(4):
        if transport is None:
            return False
        if getattr(transport, RELEASES_BIG_MESSAGES, False) is True:
            return True
        transport = getattr(transport, "_inner", None)
    return False


BIG_JSON_CELLS = 200_000
"""Items in a structured result's lists from which its memory is trimmed when it goes
(a 20,000-row table of 10 columns: tens of MB as Python objects)."""


def _is_big_json(result: Any) -> bool:
    structured = getattr(result, "structured_content", None)
    if not isinstance(structured, dict):
        return False
    cells = 0
    for value in structured.values():
        if isinstance(value, list) and value:
            first = value[0]
            cells += len(value) * (len(first) if isinstance(first, list | dict) else 1)
    return cells >= BIG_JSON_CELLS


async def resolve_links(client: Any, result: Any) -> Any:
    """Replace a link to a binary table (not a local file) by its contents, read with
    ``resources/read`` through `client`, so `result_frame` needs no session later."""
    from mcp.types import EmbeddedResource

    block = _table_block(result)
    if getattr(block, "type", None) == "resource":
        if len(block.resource.blob) >= BIG_FRAME:
            await _let_go_of_last_message(client)
        return result
    if getattr(block, "type", None) != "resource_link" or urlparse(str(block.uri)).scheme == (
        "file"
    ):
        return result
    read = await client.read_resource(block.uri)
    blobs = [c for c in read.contents if getattr(c, "blob", None) is not None]
    if not blobs:
        return result
    contents = blobs[0]
    if not getattr(contents, "mime_type", None) and block.mime_type:
        contents = contents.model_copy(update={"mime_type": block.mime_type})
    index = result.content.index(block)
    content = list(result.content)
    content[index] = EmbeddedResource(type="resource", resource=contents)
    return result.model_copy(update={"content": content})


BIG_FRAME = 8 << 20  # bytes: from here a frame's memory is handed back when it goes


async def _let_go_of_last_message(client: Any) -> None:
    """The SDK's dispatcher keeps the last message it read (here the whole answer, blob
    text included) until the next one arrives, so the memory would stay after `del df`.
    One small request on the wire makes that the next one (ping is gone from 2026-07-28,
    and a cached tools/list never reaches the wire). Not needed over mcp_magic's stdio
    transport, whose reader does it without a round trip (`_reader_lets_go`)."""
    if _reader_lets_go(client):
        return
    with contextlib.suppress(Exception):
        await client.list_tools(cache_mode="refresh")


def result_frame(result: Any) -> Any:
    """The DataFrame of a result's binary table, or None when it carries none.

    The stop button during the conversion (the last part of a big call, on the main
    thread) ends it as it ends the transfer: `sessions.Interrupted`, one line.
    """
    try:
        return _result_frame(result)
    except KeyboardInterrupt as exc:
        from ..host.sessions import Interrupted  # imported here: sessions imports this module

        if isinstance(exc, Interrupted):
            raise
        raise Interrupted("turning the table into a DataFrame was stopped") from None


def _result_frame(result: Any) -> Any:
    block = _table_block(result)
    if block is None:
        if compact_rows(result) is None:
            return None
        frame = big_json.frame(result)
        if frame is not None:
            release_memory()
            _release_when_gone(frame)
        return frame
    if block.type == "resource":
        resource = block.resource
        kind = _kind(resource.mime_type, str(resource.uri))
        # validate_json made `resource.blob` (str) from the line; decoding it is one more
        # copy (the bytes), dropped inside frame_from_bytes before pandas gets the columns
        frame = frame_from_bytes(base64.b64decode(resource.blob), kind)
    else:
        path = _local_path(str(block.uri))
        if path is None:
            return None  # a remote link that resolve_links did not read
        frame = frame_from_file(path, _kind(block.mime_type, str(block.uri)))
    if frame.memory_usage(deep=False).sum() >= BIG_FRAME:  # trimming costs a heap walk
        release_memory()
        _release_when_gone(frame)
    structured = getattr(result, "structured_content", None)
    if isinstance(structured, dict):
        for key in ("row_count", "truncated", "note"):
            if key in structured:
                frame.attrs[key] = structured[key]
    return frame


def release_memory() -> None:
    """Give the decoded stream's buffers back to the system: pyarrow's allocator and glibc's
    malloc keep freed memory for reuse, which after a big table reads as a kernel that never
    shrinks. `malloc_trim` only on Linux (glibc); elsewhere this is pyarrow's part alone."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


_released_frames = False  # a big frame went since the last collection


def _release_when_gone(frame: Any) -> None:
    """Give memory back once a big frame (or result) is gone (`del df`, then any garbage
    collection).

    pandas keeps Arrow's buffers (numbers and dates, zero copy); freed, glibc keeps them.
    A weakref callback runs before the frame's contents are freed, so it only marks the
    event; the next collection's end (automatic in a busy kernel, or `gc.collect()`)
    then calls `malloc_trim`.
    """

    def gone() -> None:
        global _released_frames
        _released_frames = True

    if release_after_gc not in gc.callbacks:
        gc.callbacks.append(release_after_gc)
    weakref.finalize(frame, gone)


def release_after_gc(phase: str, info: dict[str, int]) -> None:
    global _released_frames
    if phase == "stop" and _released_frames:
        _released_frames = False
        release_memory()


def _pool() -> Any:
    """malloc for the tables we decode, not pyarrow's mimalloc/jemalloc pool: pandas keeps
    Arrow's buffers (zero copy), and freed into pyarrow's pool they stayed in the kernel
    (about half a 1M-row frame after `del df`); malloc gives them back with `malloc_trim`.
    It also lowers the peak (no second allocator holding freed decode buffers)."""
    import pyarrow as pa

    return pa.system_memory_pool()


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    return Path(unquote(parsed.path))


def frame_from_bytes(data: bytes, kind: str | None) -> Any:
    import pyarrow as pa

    if kind == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(data))
    elif kind == "file":
        table = pa.ipc.open_file(pa.BufferReader(data), memory_pool=_pool()).read_all()
    else:
        table = pa.ipc.open_stream(pa.BufferReader(data), memory_pool=_pool()).read_all()
    del data  # the caller passes the only reference: the encoded bytes go before pandas
    box = [table]
    del table  # frame_from_arrow holds the only reference, and drops it column by column
    return _frame_from_box(box)


def frame_from_file(path: Path, kind: str | None) -> Any:
    import pyarrow as pa

    if kind == "parquet":
        import pyarrow.parquet as pq

        return frame_from_arrow(pq.read_table(path))
    with pa.memory_map(str(path)) as source:
        if kind == "file":
            return frame_from_arrow(pa.ipc.open_file(source, memory_pool=_pool()).read_all())
        return frame_from_arrow(pa.ipc.open_stream(source, memory_pool=_pool()).read_all())


@functools.cache
def _datetime_unit() -> str:
    """The unit pandas gives ISO text (us in pandas 3, ns before): the JSON path's dtype."""
    import pandas as pd

    return str(pd.to_datetime(pd.Series(["2024-01-02"]), format="ISO8601").dtype)[11:-1]


def frame_from_arrow(table: Any) -> Any:
    """An Arrow table as a DataFrame with the dtypes the JSON path gives.

    Column by column, each Arrow column dropped once converted, so the peak holds little
    more than the table once (a pandas index in the schema's metadata takes pandas' own
    conversion).
    """
    return _frame_from_box([table])


def _frame_from_box(box: list[Any]) -> Any:
    import pandas as pd

    table = box.pop()
    names = table.column_names
    if len(set(names)) != len(names) or table.schema.pandas_metadata:
        return _fix_dtypes(table.to_pandas(date_as_object=False, split_blocks=True,
                                               memory_pool=_pool()), table)
    columns = list(table.columns)
    rows = table.num_rows
    del table
    data = {}
    for i, name in enumerate(names):
        column, columns[i] = columns[i], None
        data[name] = _series(column)
        del column
    return pd.DataFrame(data, index=pd.RangeIndex(rows), copy=False)


def _series(column: Any) -> Any:
    """One Arrow column as a Series: Int64 for ints with nulls, datetime64 in pandas' unit."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_integer(kind) and column.null_count:
        return column.to_pandas(types_mapper=_nullable_int, memory_pool=_pool())
    series = column.to_pandas(date_as_object=False, memory_pool=_pool())
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        tz = getattr(kind, "tz", None)
        unit = _datetime_unit()
        target = f"datetime64[{unit}, {tz}]" if tz else f"datetime64[{unit}]"
        if str(series.dtype) != target:
            series = series.astype(target)
    return series


def _fix_dtypes(frame: Any, table: Any) -> Any:
    """`_series`' dtypes for a frame pandas itself converted (columns found by name)."""
    if len(set(table.column_names)) != table.num_columns:
        return frame
    for name in frame.columns:
        if name in table.column_names:
            frame[name] = _series(table.column(name)).array
    return frame


def _nullable_int(kind: Any) -> Any:
    import pandas as pd
    import pyarrow as pa

    return pd.Int64Dtype() if pa.types.is_integer(kind) else None
