"""A big JSON table in a tool result, parsed into compact columns instead of Python rows.

A million rows of 8 cells parsed as JSON are 9 million Python objects: 415 MB for a
75 MB DataFrame, alive next to the 91 MB message they came from. When a result's
structured content is a table with its rows as lists under ``rows`` (next to
``columns`` and ``types``, as the built-in server and many others answer), the rows are
parsed a slice at a time (`parse_result`) and each column kept compact: numbers and
booleans in numpy arrays, text in Arrow arrays, anything else (nulls, mixed types,
nested values) as the Python objects of that slice. The result then carries a
`CompactRows` in place of the row list, and `frame` makes the DataFrame from it column by
column with the same conversion `mcp_magic.tables` gives the rows (`columns_frame`), so
the values and dtypes are the same as on the usual path; `rows()` gives the plain rows
back to anyone who wants them.

Where the slices are cut: after a ``]`` followed by ``,[``. A cut inside a string or a
nested list leaves an unterminated string or unbalanced brackets, which does not parse,
so a slice that parses ends at a row boundary; otherwise the next candidate is tried.
Anything unexpected (another shape, uneven rows, an error flag) leaves the result to
the usual whole parse.
"""

from __future__ import annotations

import secrets
from contextvars import ContextVar
from operator import itemgetter
from typing import Any

import pydantic_core

COMPACT: ContextVar[bool] = ContextVar("mcp_magic_compact_tables", default=False)
"""True in the tasks of mcp_magic's stdio transport (`stdio_transport.stdio_client`) and
in the host's tool calls (`SessionManager.acall_tool`), where the SDK's HTTP client
parses the answer (`stdio_transport.parse_big_results_once`). Elsewhere (another client
in the same process, the SDK's own stdio client) rows stay plain."""

SLICE = 1 << 20
"""Bytes of rows parsed at a time (about 10,000 rows of 8 cells)."""
MIN_ROWS_BYTES = 1 << 20
"""Row arrays shorter than this are parsed the usual way."""

_ROWS_KEY = b'"rows":['
_SENTINEL = f"mcp-magic-rows-{secrets.token_hex(8)}"


class CompactRows(list):  # type: ignore[type-arg]
    """Stands in for a table's row list, the rows kept as compact columns.

    To the SDK's output-schema check it is an array it need not walk. Asked for its rows
    from Python (``len``, iteration, indexing, comparison, ``repr``), it fills itself with
    them first and is a plain list from then on; serialized by pydantic (``model_dump``,
    ``model_dump_json``) it writes them. Once `frame` has turned the columns into a
    DataFrame (consuming them, to keep the kernel's peak low), the rows come from that
    frame: numbers and text as they were, dates and timestamps as ISO text.
    """

    def __init__(self, columns: list[list[Any]], count: int) -> None:
        super().__init__()
        self.columns = columns  # per column: its slices (numpy, Arrow or object arrays)
        self.count = count
        self.frame: Any = None  # the DataFrame made of them (`frame`), which consumes them
        self.filled = False

    def _fill(self) -> None:
        if not self.filled:
            rows = self.rows()
            self.filled = True
            list.extend(self, rows)

    def __len__(self) -> int:
        return list.__len__(self) if self.filled else self.count

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Any:
        self._fill()
        return list.__iter__(self)

    def __reversed__(self) -> Any:
        self._fill()
        return list.__reversed__(self)

    def __getitem__(self, index: Any) -> Any:
        self._fill()
        return list.__getitem__(self, index)

    def __contains__(self, value: object) -> bool:
        self._fill()
        return list.__contains__(self, value)

    def __eq__(self, other: object) -> bool:
        self._fill()
        return list.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._fill()
        return list.__repr__(self)

    def rows(self) -> list[list[Any]]:
        """The plain rows (lists of Python values), as the JSON parse gives them."""
        if self.filled:
            return list(list.__iter__(self))
        if self.frame is not None and not any(self.columns):
            return _frame_rows(self.frame)
        columns = [self.column(i).tolist() for i in range(len(self.columns))]
        return [list(row) for row in zip(*columns, strict=True)] if columns else []

    def column(self, index: int, drop: bool = False, typed: bool = False) -> Any:
        """Column `index` as one numpy object array of Python values (`drop`: forget its
        compact slices, for a caller that needs them no more). With `typed`, a column of
        numbers or booleans only comes as its int64, float64 or bool array instead."""
        import numpy as np

        pieces = self.columns[index]
        if drop:
            self.columns[index] = []
        if typed and pieces and all(isinstance(p, np.ndarray) for p in pieces):
            dtypes = {p.dtype for p in pieces}
            if len(dtypes) == 1 and dtypes.pop() != np.dtype(object):
                return np.concatenate(pieces)
        values = np.empty(self.count, dtype=object)
        start = 0
        for piece in pieces:
            if hasattr(piece, "to_numpy"):  # Arrow text
                piece = piece.to_numpy(zero_copy_only=False)
            values[start:start + len(piece)] = piece.astype(object, copy=False)
            start += len(piece)
        return values



def _frame_rows(frame: Any) -> list[list[Any]]:
    """A consumed table's rows back from its DataFrame, as JSON values."""
    import pandas as pd

    columns = []
    for _, series in frame.items():
        values = series.astype(object).where(series.notna(), None).tolist()
        columns.append([v.isoformat(sep=" ") if isinstance(v, pd.Timestamp) else v
                        for v in values])
    return [list(row) for row in zip(*columns, strict=True)]


_CHECKING = ContextVar("mcp_magic_sdk_checks_result", default=False)


def _serialize(rows: CompactRows) -> list[list[Any]]:
    if _CHECKING.get():
        return []  # the SDK's shape check dumps the result only to drop the dump
    return rows.rows()


def _skip_rows_in_the_sdks_check() -> None:
    """The SDK's client checks a result's shape by dumping it (`validate_server_result`
    in `mcp_types.methods`) and drops the dump: for compact rows that would make every
    row as Python objects once, for nothing. While it runs, they dump as an empty list
    (the shape check does not look into rows). Without the function (another SDK) the
    check makes the rows and stays correct."""
    from mcp_types import methods

    original = getattr(methods, "validate_server_result", None)
    if original is None or getattr(original, "_mcp_magic", False):
        return

    def validate_server_result(*args: Any, **kwargs: Any) -> Any:
        token = _CHECKING.set(True)
        try:
            return original(*args, **kwargs)
        finally:
            _CHECKING.reset(token)

    validate_server_result._mcp_magic = True  # type: ignore[attr-defined]
    methods.validate_server_result = validate_server_result


def _install_serializer() -> None:
    from pydantic_core import SchemaSerializer
    from pydantic_core import core_schema as cs

    CompactRows.__pydantic_serializer__ = SchemaSerializer(  # type: ignore[attr-defined]
        cs.any_schema(serialization=cs.plain_serializer_function_ser_schema(_serialize)))


_install_serializer()


def _compact(values: list[Any]) -> Any:
    """One column of a slice, compact when its values are all of one simple type."""
    import numpy as np

    kinds = set(map(type, values))
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is int:
            try:
                return np.array(values, dtype=np.int64)
            except OverflowError:
                pass
        elif kind is float:
            return np.array(values, dtype=np.float64)
        elif kind is bool:
            return np.array(values, dtype=bool)
        elif kind is str:
            import pyarrow as pa

            # malloc, not pyarrow's pool, which would keep the memory once they are freed
            return pa.array(values, pa.string(), memory_pool=pa.system_memory_pool())
    return np.fromiter(values, dtype=object, count=len(values))


def _rows_until(data: Any, view: memoryview, position: int, separator: bytes,
                from_: int) -> tuple[int, Any]:
    """The rows from `position` to the first `separator` at or after `from_` where they
    parse (a cut inside a string or a nested list does not), and that cut; (-1, None)
    when there is none."""
    cut = data.find(separator, from_)
    while cut >= 0:
        try:
            return cut, pydantic_core.from_json(b"[" + view[position:cut + 1] + b"]")
        except ValueError:
            cut = data.find(separator, cut + 1)
    return -1, None


def _rows_span(data: bytes | bytearray | memoryview, start: int) -> tuple[int, list[Any]] | None:
    """Parse the row array whose ``[`` is at `start`: its end (after its ``]``) and the
    compact columns, or None when it is not a list of equally long lists."""
    view = memoryview(data)
    position = start + 1
    columns: list[list[Any]] | None = None
    width = -1
    count = 0
    end_of_array = False
    while not end_of_array:
        cut, rows = _rows_until(data, view, position, b"],[", min(position + SLICE, len(data)))
        if rows is None:  # the last slice: it ends where the array does
            cut, rows = _rows_until(data, view, position, b"]]", position)
            if rows is None:
                return None
            end_of_array = True
        if not rows or set(map(type, rows)) != {list}:
            return None
        widths = set(map(len, rows))
        if len(widths) != 1 or (width >= 0 and widths != {width}):
            return None
        if columns is None:
            width = widths.pop()
            columns = [[] for _ in range(width)]
        for i, column in enumerate(columns):
            column.append(_compact(list(map(itemgetter(i), rows))))
        count += len(rows)
        del rows
        position = cut + 2  # past "]," (or "]]": the end)
    return position, [columns or [], count]


def parse_result(data: bytes | bytearray) -> dict[str, Any] | None:
    """The parsed JSON-RPC message whose result holds a big table, with its rows as
    `CompactRows`; None when the message is not such a result (parse it the usual way)."""
    found = data.find(_ROWS_KEY)
    if found < 0:
        return None
    opening = found + len(_ROWS_KEY) - 1
    following = data.find(_ROWS_KEY, opening)
    if following >= 0 or len(data) - opening < MIN_ROWS_BYTES:
        return None  # one row array, and a big one, or the usual parse
    try:
        parsed = _rows_span(data, opening)
    except ValueError:
        return None
    if parsed is None:
        return None
    end, (columns, count) = parsed
    view = memoryview(data)
    try:
        message = pydantic_core.from_json(
            bytes(view[:opening]) + pydantic_core.to_json(_SENTINEL) + bytes(view[end:]))
    except ValueError:
        return None
    result = message.get("result") if isinstance(message, dict) else None
    structured = result.get("structuredContent") if isinstance(result, dict) else None
    if not (isinstance(structured, dict) and structured.get("rows") == _SENTINEL
            and not result.get("isError")):
        return None
    names, types = structured.get("columns"), structured.get("types")
    width = len(columns)
    if not (isinstance(names, list) and isinstance(types, list) and len(names) == width
            and len(types) == width and width > 0
            and all(isinstance(n, str) for n in names)):
        return None
    _skip_rows_in_the_sdks_check()
    structured["rows"] = CompactRows(columns, count)
    return message


def _arrow_text(rows: CompactRows, index: int) -> Any:
    """A declared-text column of strings only, straight from its Arrow slices into the
    pandas text array `fast_column` would make of its values (`text_array`), when pandas
    keeps text in Arrow; else None."""
    import pandas as pd
    import pyarrow as pa

    from .columns import text_array

    pieces = rows.columns[index]
    if not pieces or not all(isinstance(p, pa.StringArray) for p in pieces):
        return None
    dtype = text_array(["a"]).dtype
    if getattr(dtype, "storage", None) != "pyarrow":
        return None
    rows.columns[index] = []
    return pd.array(pa.chunked_array(pieces, pa.string()), dtype=dtype)


def _trim() -> None:
    import sys

    if sys.platform.startswith("linux"):
        import contextlib
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def compact_rows(result: Any) -> CompactRows | None:
    """The `CompactRows` of a tool result's structured content, if it has them."""
    structured = getattr(result, "structured_content", None)
    rows = structured.get("rows") if isinstance(structured, dict) else None
    return rows if isinstance(rows, CompactRows) else None


def plain_rows(result: Any) -> Any:
    """`result` with a plain row list in place of its `CompactRows`, if any: for a result
    handed on as it is (`%mcp call --raw`, a tool's view), which code outside the host
    may serialize with `json.dumps`, which reads a list's storage and would see none."""
    rows = compact_rows(result)
    if rows is not None:
        result.structured_content["rows"] = rows.rows()
    return result


def frame(result: Any) -> Any:
    """The DataFrame of a result with `CompactRows`, as `mcp_magic.tables` reads the same
    rows; None (and the plain rows put back) when that reading would not be a table.

    The compact columns are consumed: each becomes Python values, then its column of the
    frame, one at a time.
    """
    import pandas as pd

    from . import envelope_error, error_text
    from .columns import columns_frame
    from .dtypes import type_kind

    structured = result.structured_content
    rows: CompactRows = structured["rows"]
    if rows.frame is not None:
        return rows.frame
    text = "\n".join(block.text for block in result.content
                     if getattr(block, "type", None) == "text") or None
    sample = {**structured, "rows": [[None] * len(rows.columns)]}
    if error_text(text, False) is not None or envelope_error(sample) is not None:
        structured["rows"] = rows.rows()  # the usual reading says what is wrong
        return None
    names = list(structured["columns"])
    kinds = [type_kind(t) for t in structured["types"]]
    if not any(kinds):  # the usual reading would ask the tool's output schema
        structured["rows"] = rows.rows()
        return None
    arrays = []
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        text = _arrow_text(rows, i) if kind == "text" else None
        if text is not None:
            arrays.append(text)
            continue
        # A column of numbers reads the same from its typed array as from Python values
        # (`fast_column` makes that array of them); anything else from the Python values.
        column = columns_frame([rows.column(i, drop=True, typed=True)], [name], [kind])
        arrays.append(column.iloc[:, 0].array)
        del column
        _trim()  # the column's Python values: freed, handed back before the next one
    table = pd.DataFrame(dict(enumerate(arrays)), copy=False)
    table.columns = names
    used = ("columns", "rows", "columnTypes", "column_types", "columnTypeNames", "dtypes",
            "data_types", "dataTypes", "types")
    extra = {str(k): v for k, v in structured.items() if k not in used}
    if extra:
        table.attrs = {**table.attrs, **extra}
    rows.columns = []  # consumed: a second reading gets the same frame
    rows.frame = table
    return table
