"""Column dtypes: what the server declared wins; otherwise a whole column is read for what it is.

Declared types come as SQL type names (SQLite, PostgreSQL, DuckDB, BigQuery, Snowflake
spellings), PostgreSQL type OIDs, or JSON Schema (``integer``, ``number``, ``boolean``,
``string`` with ``format: date`` / ``date-time``). Without a declaration, a text column
becomes numbers only when every value is a plain number (no leading zeros, at most 18
integer digits, so identifiers and ZIP codes stay text) and ``datetime64`` only when every
value is an ISO 8601 date or timestamp. A column that does not convert completely is left
as it came: a value is never changed to make a dtype.

Dtypes follow ``pandas.read_sql_query``: decimals are ``float64``, timestamps
``datetime64`` (an offset is kept; values with different offsets are shown in UTC), NULL
stays missing. Two choices differ on purpose: a declared integer column with NULLs is
``Int64`` (not ``float64``), and a boolean column with NULLs is ``boolean``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["type_kind", "schema_kind", "apply_kinds", "infer_columns"]

Kind = str  # "int" | "float" | "bool" | "datetime" | "datetimetz" | "timedelta" | "text"

# --------------------------------------------------------------------------- declarations

_INT_NAME = re.compile(
    r"U?(?:TINY|SMALL|MEDIUM|BIG|HUGE)?INT(?:EGER)?(?:\d+)?(?: UNSIGNED)?|U?INT\d*|"
    r"(?:SMALL|BIG)?SERIAL\d?|LONG|SHORT|BYTE|OID"
)
_FLOAT_NAME = re.compile(
    r"NUMERIC|DECIMAL|BIGNUMERIC|BIGDECIMAL|NUMBER|FIXED|REAL|FLOAT\d*|DOUBLE(?: PRECISION)?|"
    r"FLOAT(?:4|8)|DEC"
)
_DATETIME_NAME = re.compile(
    r"DATE|DATETIME\d*|SMALLDATETIME|DATETIMEOFFSET|TIMESTAMP.*|TIMESTAMPTZ|"
    r"TIMESTAMP_(?:NTZ|LTZ|TZ)"
)
_TEXT_NAME = re.compile(
    r".*(?:CHAR|TEXT|CLOB|STRING).*|UUID|UNIQUEIDENTIFIER|JSONB?|ENUM|NAME|CITEXT|INET|CIDR|"
    r"MACADDR|XML|MONEY|BLOB|BYTEA|BINARY|VARBINARY"
)
# PostgreSQL type OIDs, as drivers report them (node-postgres ``fields[].dataTypeID``).
_PG_OIDS = {
    16: "bool", 20: "int", 21: "int", 23: "int", 26: "int", 700: "float", 701: "float",
    1700: "float", 1082: "datetime", 1114: "datetime", 1184: "datetimetz", 1186: "timedelta",
    25: "text", 1043: "text", 1042: "text", 18: "text", 19: "text", 2950: "text",
}


def type_kind(name: object) -> Kind | None:
    """What a declared type means for a column: int, float, bool, datetime, timedelta, text."""
    if isinstance(name, bool):
        return None
    if isinstance(name, int):
        return _PG_OIDS.get(name)
    if isinstance(name, dict):
        return schema_kind(name) or type_kind(name.get("type") or name.get("dataType"))
    if not isinstance(name, str):
        return None
    t = " ".join(name.strip().upper().split())
    if not t or t.endswith("]") or t.startswith(("ARRAY", "STRUCT", "MAP", "LIST", "UNION")):
        return None
    if t in ("INTEGER", "NUMBER", "STRING", "BOOLEAN") and name.islower():
        return {"INTEGER": "int", "NUMBER": "float", "STRING": "text", "BOOLEAN": "bool"}[t]
    base = t.split("(")[0].strip()
    if base in ("BOOL", "BOOLEAN", "BIT", "LOGICAL"):
        return "bool"
    if base.startswith("INTERVAL"):
        return "timedelta"
    if base in ("TIME", "TIMETZ") or base.startswith(("TIME WITH", "TIME WITHOUT")):
        return None  # a time of day: no pandas dtype, stays as it came
    if _DATETIME_NAME.fullmatch(base):
        if "TZ" in base or "WITH TIME ZONE" in base or base == "DATETIMEOFFSET":
            return "datetimetz"
        return "datetime"
    if base == "NUMBER" and "(" in t and t.rstrip(")").endswith(",0"):
        return "int"  # Oracle/Snowflake NUMBER(p,0)
    if _INT_NAME.fullmatch(base):
        return "int"
    if _FLOAT_NAME.fullmatch(base):
        return "float"
    if _TEXT_NAME.fullmatch(base):
        return "text"
    if "INT" in base and " " not in base and not base.startswith(("POINT", "INTERVAL")):
        return "int"  # SQLite's affinity rule for names such as "INT8" or "MYINT"
    return None


def schema_kind(schema: object) -> Kind | None:
    """The kind of a JSON Schema property (``{"type": "integer"}``, ``format: date-time``)."""
    if not isinstance(schema, dict):
        return None
    types = schema.get("type")
    if isinstance(types, list):
        types = [t for t in types if t != "null"]
        types = types[0] if len(types) == 1 else None
    if types is None:
        options = [
            s for s in schema.get("anyOf") or schema.get("oneOf") or []
            if isinstance(s, dict) and s.get("type") != "null"
        ]
        return schema_kind(options[0]) if len(options) == 1 else None
    if types == "integer":
        return "int"
    if types == "number":
        return "float"
    if types == "boolean":
        return "bool"
    if types == "string":
        fmt = schema.get("format")
        if fmt in ("date", "date-time"):
            return "datetime"
        if fmt == "duration":
            return "timedelta"
        return "text"
    return None


# --------------------------------------------------------------------------- declared


def apply_kinds(
    df: pd.DataFrame, kinds: Sequence[Kind | None], raw_column: Callable[[int], list] | None
) -> None:
    """Coerce columns to declared kinds in place; a coercion that fails leaves the column."""
    for i, kind in enumerate(kinds[: df.shape[1]]):
        if kind in (None, "text"):
            continue
        series = df.iloc[:, i]
        try:
            converted = _coerce(series, kind, (lambda i=i: raw_column(i)) if raw_column else None)
        except (TypeError, ValueError, OverflowError, IndexError, KeyError, AttributeError):
            continue
        if converted is not series:
            df.isetitem(i, converted)


_EXACT_FLOAT_INT = 2**53
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def _coerce(series: pd.Series, kind: Kind, raw: Callable[[], list] | None) -> pd.Series:
    textual = _is_textual(series)
    if kind == "int":
        if series.dtype.kind in "iu":
            return series
        if textual:
            numbers = pd.to_numeric(series)
            if numbers.dtype.kind not in "iuf" or (
                numbers.dtype.kind == "f" and numbers.abs().max() >= _EXACT_FLOAT_INT
            ):
                return series  # huge integers would lose digits as float64
            if numbers.dtype.kind == "f" and not (numbers.dropna() % 1 == 0).all():
                return numbers
            series = numbers
        elif series.dtype.kind == "f" and raw and series.abs().max() >= _EXACT_FLOAT_INT:
            # ints with nulls were widened to float64 and lost precision: rebuild exactly
            return pd.Series(pd.array(raw(), dtype="Int64"), index=series.index)
        elif series.dtype == object and not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in series
        ):
            return series
        return series.astype("Int64" if series.hasnans else "int64")
    if kind == "float":
        if series.dtype.kind == "f":
            return series
        if textual:
            return pd.to_numeric(series).astype("float64")
        if series.dtype.kind == "b":
            return series
        return series.astype("float64")
    if kind == "bool":
        return _to_bool(series)
    if kind in ("datetime", "datetimetz"):
        if series.dtype.kind == "M" or not textual:
            return series  # epoch numbers are ambiguous (s? ms?): leave them
        return _to_datetime(series)
    if kind == "timedelta":
        if series.dtype.kind == "m" or not textual:
            return series
        return pd.to_timedelta(series)
    return series


def _to_bool(series: pd.Series) -> pd.Series:
    if series.dtype.kind == "b":
        return series
    if series.dtype.kind in "iuf":
        if not series.dropna().isin([0, 1]).all():
            return series
        return series.astype("boolean" if series.hasnans else "bool")
    values = series.tolist()
    out: list[bool | None] = []
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            out.append(None)
        elif isinstance(v, bool):
            out.append(v)
        elif isinstance(v, str) and v.strip().lower() in _TRUE:
            out.append(True)
        elif isinstance(v, str) and v.strip().lower() in _FALSE:
            out.append(False)
        else:
            return series
    has_null = any(v is None for v in out)
    return pd.Series(pd.array(out, dtype="boolean"), index=series.index).astype(
        "boolean" if has_null else "bool"
    )


# --------------------------------------------------------------------------- inferred

_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}(?:$|[T ]\d{2}:\d{2})")
_ISO_OFFSET_END = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2}){0,2})$")
_NUMBER_START = re.compile(r"-?(?:0|[1-9]\d{0,17})(?:\.\d+)?(?:[eE][+-]?\d{1,3})?$")
# checked on all values joined by newlines, in C: any of these and the column stays text
_NOT_NUMBER_CHAR = re.compile(r"[^0-9eE.+\-\n]")
_LEADING_ZERO = re.compile(r"\n-?0\d")
_LONG_INT = re.compile(r"\d{19}")
_SUB_MICROSECOND = re.compile(r"\.\d{7}")


def infer_columns(df: pd.DataFrame, skip: Sequence[bool] = ()) -> None:
    """Give undeclared text/object columns the dtype all their values share, in place."""
    for i in range(df.shape[1]):
        if i < len(skip) and skip[i]:
            continue
        series = df.iloc[:, i]
        if series.dtype != object and not _is_textual(series):
            continue
        first = series.first_valid_index()
        if first is None:
            continue
        value = series.loc[first] if df.index.is_unique else series.dropna().iloc[0]
        converted = None
        try:
            if isinstance(value, str):
                converted = _infer_text(series, value)
            elif isinstance(value, bool):
                converted = _bool_objects(series)
        except (TypeError, ValueError, OverflowError):
            converted = None
        if converted is not None:
            df.isetitem(i, converted)


def _infer_text(series: pd.Series, value: str) -> pd.Series | None:
    if _ISO_START.match(value):
        return _to_datetime(series)
    if _NUMBER_START.match(value):
        values = _text_values(series)
        joined = None if values is None else _plain_numbers(values)
        if joined is None:
            return None
        if len(values) == len(series):
            array = _number_array(values, joined)
            if array is not None:
                return pd.Series(array, index=series.index)
        return pd.to_numeric(series)
    return None


def _plain_numbers(values: Any, long_ints: bool = True) -> str | None:
    """The values joined, when every one is a plain number (checked in C), else None.

    ``long_ints=False`` leaves out the check for 19 digits in a row; the caller then makes
    it on the numbers (`text_numbers`).
    """
    joined = "\n" + "\n".join(values) + "\n"
    if (
        _NOT_NUMBER_CHAR.search(joined)
        or "\n\n" in joined
        or "\n+" in joined
        or _LEADING_ZERO.search(joined)  # codes such as ZIP "01234" stay text
        or (long_ints and _long_int(values, joined))  # beyond int64
    ):
        return None
    return joined


def _long_int(values: Any, joined: str) -> bool:
    return max(map(len, values)) > 18 and _LONG_INT.search(joined) is not None


def _number_array(values: Any, joined: str) -> np.ndarray | None:
    """Plain numbers as text (checked, no NULLs) -> int64 or float64 array, or None."""
    floats = any(c in joined for c in ".eE")
    try:
        return np.array(values, dtype="float64" if floats else "int64")
    except (ValueError, OverflowError, TypeError):
        return None


def text_numbers(values: Any) -> np.ndarray | None:
    """A column of text (a list or object array, no NULLs) as numbers when all are plain."""
    if not _NUMBER_START.match(values[0]):
        return None
    if _INT_TEXT.fullmatch(values[0]):
        integers = _arrow_integers(values)
        if integers is not None:
            return integers
    joined = _plain_numbers(values, long_ints=False)
    array = None if joined is None else _number_array(values, joined)
    if array is None:
        return None
    if array.dtype.kind == "i":
        # integers without a sign "+" or leading zeros: 19 digits in a row is |n| >= 10**18
        # (20 and more did not fit int64 above)
        if len(array) and (array.max() >= _NINETEEN_DIGITS or array.min() <= -_NINETEEN_DIGITS):
            return None
        return array
    return None if _long_int(values, joined) else array  # type: ignore[arg-type]


_NINETEEN_DIGITS = 10**18
_INT_TEXT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")


def _arrow_integers(values: Any) -> np.ndarray | None:
    """Integers as text -> int64 in Arrow (2x faster than numpy), or None to ask numpy.

    Exactly what the checks above accept when no value has ``.``, ``e`` or ``E``: an
    optional minus, no leading zero, at most 18 digits.
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - a dependency
        return None
    try:
        array = pa.array(values, pa.string())
        if not pc.all(pc.match_substring_regex(array, f"^{_INT_TEXT.pattern}$")).as_py():
            return None
        return array.cast(pa.int64()).to_numpy(zero_copy_only=False, writable=True)
    except (TypeError, ValueError, pa.ArrowException):
        return None


def _text_values(series: pd.Series) -> Any:
    """The non-null values as an object array, or None when one is not text."""
    values = series.dropna().to_numpy(dtype=object)
    if series.dtype == object and not all(isinstance(v, str) for v in values):
        return None
    return values


def _to_datetime(series: pd.Series) -> pd.Series:
    """ISO 8601 text -> datetime64, or ValueError. An offset is kept; mixed ones become UTC."""
    if getattr(series.dtype, "storage", None) == "pyarrow":
        # Arrow strings (pd.read_csv) are slow to take out as objects: pandas reads them
        if series.str.len().min() < 10:
            raise ValueError("too short for a date")
        try:
            return pd.to_datetime(series, format="ISO8601")
        except ValueError:
            if not series.dropna().str.contains(_ISO_OFFSET_END.pattern, regex=True).all():
                raise
            return pd.to_datetime(series, format="ISO8601", utc=True)
    cells = series.to_numpy(dtype=object, na_value=None)
    values = cells[series.notna().to_numpy()] if series.hasnans else cells
    array = _numpy_dates(values, cells)
    if array is not None:
        return pd.Series(array, index=series.index, name=series.name)
    return _pandas_dates(series, values)


def text_dates(values: Any) -> pd.Series:
    """A column of text (a list or object array, no NULLs) as ``_to_datetime`` reads it."""
    array = _numpy_dates(values, values)
    if array is not None:
        return pd.Series(array)
    return _pandas_dates(pd.Series(np.array(values, dtype=object), dtype=object), values)


def _numpy_dates(values: Any, cells: Any) -> np.ndarray | None:
    """``cells`` as datetime64[us] when numpy reads them exactly, None to ask pandas.

    Raises ValueError when a value is not text or too short for a date.
    """
    try:
        joined = "\n".join(values)
    except TypeError:
        raise ValueError("not all text") from None
    # pandas' "ISO8601" also reads "2024" or "2024-01": those must not become dates
    if len(values) and min(map(len, values)) < 10:
        raise ValueError("too short for a date")
    if (
        "Z" not in joined
        and "+" not in joined
        and joined.count("-") == 2 * len(values)
        and ("." not in joined or not _SUB_MICROSECOND.search(joined))
    ):
        # no offset, no negative year, no digits past microseconds (numpy would drop
        # them): numpy's reader is 4x faster than pandas'
        try:
            return np.array(cells, dtype="datetime64[us]")
        except (ValueError, TypeError, OverflowError):
            pass
    return None


def _pandas_dates(series: pd.Series, values: Any) -> pd.Series:
    try:
        return pd.to_datetime(series, format="ISO8601")
    except ValueError:
        # different offsets in one column: shown in UTC, but only when every value has one
        if not all(_ISO_OFFSET_END.search(v) for v in values):
            raise
        return pd.to_datetime(series, format="ISO8601", utc=True)


def _bool_objects(series: pd.Series) -> pd.Series | None:
    if not all(v is None or isinstance(v, bool) for v in series):
        return None
    return series.astype("boolean")


def _is_textual(series: pd.Series) -> bool:
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        return True
    if series.dtype != object:
        return False
    first = series.first_valid_index()
    if first is None:
        return False
    return isinstance(series.dropna().iloc[0], str)

