"""Rows -> DataFrame column by column: the fast path for regular answers.

``DataFrame.from_records`` finds the columns row by row and then infers each column's
dtype value by value; our dtype step then often reads the column back out of a pandas
string array to turn it into dates or numbers. Most answers are regular: every row is a
list or tuple of one width (or every record a dict with the same keys), and every column
holds values of one Python type. Such a column is converted with one numpy call, and a
text column is typed (dates, numbers) from its list before any string array exists.

Any other column (NULLs, mixed types, values beyond int64, declarations that need the
full check) goes through ``from_records`` and `dtypes` exactly as before, so a column
gives the same result on either path; the tests compare both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .dtypes import (
    _ISO_START,
    _NUMBER_START,
    Kind,
    _coerce,
    apply_kinds,
    infer_columns,
    text_dates,
    text_numbers,
)

__all__ = ["row_columns", "record_columns", "columns_frame"]

_ROW_TYPES = frozenset({list, tuple})

try:  # what from_records fills its object array with (pandas 2 and 3)
    from pandas._libs.lib import to_object_array as _to_object_array
except ImportError:  # pragma: no cover - a later pandas: the columns are taken one by one
    _to_object_array = None
_CONVERT_ERRORS = (TypeError, ValueError, OverflowError, IndexError, KeyError, AttributeError)


def row_columns(rows: Sequence[Any], width: int) -> list[Any] | None:
    """The columns of rows that are all lists or tuples of ``width`` (checked by the caller).

    Each column is a view into one object array filled row by row, as ``from_records``
    does it: one pass over the rows, which matters once they no longer fit in the cache.
    """
    if not set(map(type, rows)) <= _ROW_TYPES:
        return None
    if _to_object_array is not None:
        try:
            cells = _to_object_array(rows if isinstance(rows, list) else list(rows))
        except (TypeError, ValueError):
            cells = None
        if cells is not None and cells.shape == (len(rows), width):
            return [cells[:, i] for i in range(width)]
    return [[row[i] for row in rows] for i in range(width)]


def record_columns(records: Sequence[Any]) -> tuple[list, list[list]] | None:
    """Keys and columns when every record is a dict with the first one's keys, else None.

    Records with other keys, or keys in another order only, are left to ``from_records``
    (which takes the union of the keys in order of appearance).
    """
    first = records[0]
    keys = list(first)
    if not keys or set(map(type, records)) != {dict} or set(map(len, records)) != {len(keys)}:
        return None
    try:
        columns = [[record[k] for record in records] for k in keys]
    except KeyError:
        return None
    return keys, columns


def columns_frame(
    columns: list[Any], names: Sequence[Any], kinds: Sequence[Kind | None],
    *, empty_is_null: bool = False,
) -> pd.DataFrame:
    """A DataFrame from columns (lists of equal length), typed as `shapes` types rows.

    ``kinds`` are the declared kinds (None: infer). ``empty_is_null`` (spreadsheets) sends
    a text column holding ``""`` to the full path, which reads those cells as missing.
    """
    kinds = list(kinds[: len(columns)]) + [None] * (len(columns) - len(kinds))
    arrays: list[Any] = []
    slow: list[int] = []
    for i, values in enumerate(columns):
        array = fast_column(values, kinds[i], empty_is_null)
        if array is None:
            slow.append(i)
        arrays.append(array)
    if slow:
        for i, series in zip(slow, _slow_columns([columns[i] for i in slow],
                                                 [kinds[i] for i in slow], empty_is_null)):
            arrays[i] = series
    df = pd.DataFrame(dict(enumerate(arrays)), copy=False)
    df.columns = list(names)
    return df


def _slow_columns(
    columns: list[Any], kinds: list[Kind | None], empty_is_null: bool
) -> list[Any]:
    """The full path: ``from_records``, the declared kinds, then inference."""
    columns = [c.tolist() if isinstance(c, np.ndarray) else c for c in columns]
    df = pd.DataFrame.from_records(list(zip(*columns)), columns=range(len(columns)))
    if empty_is_null:
        for i in range(df.shape[1]):
            col = df.iloc[:, i]
            if (col.dtype == object or pd.api.types.is_string_dtype(col.dtype)) and (
                col == ""
            ).any():
                df.isetitem(i, col.replace("", None))
    if any(kinds):
        apply_kinds(df, kinds, lambda i: columns[i])
    infer_columns(df, [k is not None for k in kinds])
    return [df.iloc[:, i].array for i in range(df.shape[1])]


# --------------------------------------------------------------------------- one column


def fast_column(values: Any, kind: Kind | None, empty_is_null: bool = False) -> Any:
    """The column as an array when it is regular, else None (the caller takes the full path).

    Gives what the full path gives for the same values: ``from_records`` turns a column of
    ints into int64, floats into float64, bools into bool, text into its string dtype;
    then the declared kind or inference applies.
    """
    held = _value_class(values)
    try:
        if held == "integer":
            if kind not in (None, "int", "text", "float", "datetime", "datetimetz", "timedelta"):
                return None
            array = np.asarray(values, dtype=np.int64)  # OverflowError beyond int64
            return array.astype(np.float64) if kind == "float" else array
        if held == "floating":
            if kind not in (None, "float", "text", "datetime", "datetimetz", "timedelta"):
                return None
            return np.asarray(values, dtype=np.float64)
        if held == "boolean":
            if kind not in (None, "bool", "text"):
                return None
            return np.asarray(values, dtype=bool)
    except (OverflowError, ValueError, TypeError):
        return None
    if held == "string":
        if empty_is_null and kind is not None and "" in values:
            return None
        return _text_column(values, kind, empty_is_null)
    return None


_CLASSES = {int: "integer", float: "floating", bool: "boolean", str: "string"}


def _value_class(values: Any) -> str:
    """What all values are: ``integer``, ``floating``, ``boolean``, ``string``, or other.

    Scanned in C: ``infer_dtype`` for an object array (bools are not integers there), the
    set of the exact types for a list.
    """
    if isinstance(values, np.ndarray):
        return pd.api.types.infer_dtype(values, skipna=False)
    types = set(map(type, values))
    return _CLASSES.get(types.pop(), "other") if len(types) == 1 else "mixed"


def _text_column(values: Any, kind: Kind | None, empty_is_null: bool = False) -> Any:
    """Dates, numbers or text. Dates and numbers never come from ``""`` (too short, not a
    number), so the spreadsheet check for empty cells runs only on what stays text."""
    first = values[0]
    if kind in ("datetime", "datetimetz") or (kind is None and _ISO_START.match(first)):
        converted = _attempt(lambda: text_dates(values))
        if converted is not None:
            return converted.array
        return None if empty_is_null and "" in values else text_array(values)
    if kind in (None, "int", "float") and _NUMBER_START.match(first):
        # plain numbers: parsed as pandas' to_numeric would (both round correctly)
        numbers = text_numbers(values)
        if numbers is not None and kind != "int":
            return numbers if kind is None else numbers.astype(np.float64)
        if numbers is not None and numbers.dtype.kind == "i":
            return numbers
    if kind is None or kind == "text":
        return None if empty_is_null and "" in values else text_array(values)
    # numbers, booleans or durations declared on text: the full check, on pandas text
    strings = pd.Series(text_array(values))
    converted = _attempt(lambda: _coerce(strings, kind, lambda: values))
    return strings.array if converted is None else converted.array


def _attempt(convert: Callable[[], pd.Series | None]) -> pd.Series | None:
    try:
        return convert()
    except _CONVERT_ERRORS:
        return None


_TEXT_DTYPE: list[Any] = []


def text_array(values: Any) -> Any:
    """Text as ``from_records`` stores it: pandas' default string dtype (object before 3.0)."""
    if not _TEXT_DTYPE:
        _TEXT_DTYPE.append(pd.DataFrame.from_records([("a",)]).dtypes.iloc[0])
    dtype = _TEXT_DTYPE[0]
    if dtype == np.dtype(object):
        return np.array(values, dtype=object)
    return pd.array(values, dtype=dtype)
