"""Text that holds a value: JSON, or the ``repr`` of Python data. Nothing is evaluated.

Servers written in Python often answer with ``str(rows)``: a list of dicts or tuples whose
cells may be ``Decimal('1.50')``, ``datetime.date(2024, 1, 5)``,
``datetime.datetime(2024, 1, 5, 10, 0, tzinfo=datetime.timezone.utc)``, ``UUID('…')``.
Two readers, which give the same values:

* a transliteration to JSON for the common case, run mostly inside ``str`` and ``re`` C
  code: string literals are split out, and only what lies between them is rewritten;
* otherwise an AST walk (``ast.parse``, never ``eval``) that accepts literals and a
  whitelist of constructors only.

How values come out (the same in both readers, so a DataFrame does not depend on size):
``Decimal`` becomes ``float`` (as ``pandas.read_sql_query`` does with ``coerce_float``),
``date``/``datetime`` become ISO 8601 text (the table step turns whole columns into
``datetime64``), ``UUID`` and IP addresses become their text, ``time`` and ``timedelta``
stay objects, ``bytes`` stay bytes.

JSON, and the JSON the fast reader writes, is read by `json_loads`: orjson where it gives
exactly what ``json.loads`` gives, else json.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import functools
import gc
import ipaddress
import json
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - a dependency; json alone gives the same values
    orjson = None

__all__ = ["parse_text", "json_loads", "LITERAL_MAX_CHARS"]

LITERAL_MAX_CHARS = 4_000_000
"""The AST reader needs ~150 bytes of memory per character: larger texts stay text."""

_SENTINEL = "\x00"
_DECIMAL = "\x01"


def parse_text(text: str) -> tuple[Any, bool]:
    """``(value, True)`` when ``text`` is JSON or a Python literal of data, else (None, False)."""
    start = _first_char(text)
    if start not in ("[", "{", "("):
        return None, False
    with _gc_paused():
        if start != "(":
            try:
                return json_loads(text), True
            except (ValueError, RecursionError):
                pass
        try:
            return json_loads(python_repr_to_json(text)), True
        except (ValueError, RecursionError):
            pass
    if len(text) > LITERAL_MAX_CHARS:
        return None, False
    try:
        value = literal_value(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError,
            InvalidOperation, KeyError, AttributeError):
        return None, False
    return value, isinstance(value, (list, tuple, dict))


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No garbage collection while a parse creates its (acyclic) containers.

    A large answer is hundreds of thousands of new dicts and lists; each batch of them would
    start a collection that walks every tracked object of the kernel, again and again.
    """
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def json_loads(text: str) -> Any:
    """``json.loads(text)``: the same value, through orjson where it reads text the same way.

    orjson reads many small objects (records) about 1.5x faster, as it reuses their keys;
    on lists and text it is no faster than json, so it only gets texts dense in objects.
    It reads integers beyond 64 bits as floats where json keeps them exact (any such
    integer has at least 19 digits, so a text with 19 digits in a row goes to json), and
    refuses ``NaN``, ``Infinity``, ``1e400``, lone surrogates and nesting past 1024 levels:
    json then reads the text as before. Duplicate keys (the last wins) and the rounding of
    floats are the same in both.
    """
    if orjson is None or not _dense_in_objects(text):
        return json.loads(text)
    try:
        data = text.encode()  # orjson reads UTF-8; a str would keep a UTF-8 copy for life
    except UnicodeEncodeError:  # lone surrogates
        return json.loads(text)
    if _long_digit_run(data):
        return json.loads(text)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(text)


_SAMPLE_CHARS = 65_536
_MIN_OBJECTS_PER_KB = 2


def _dense_in_objects(text: str) -> bool:
    """A large text with at least 2 objects per KB in its first 64 KB."""
    if len(text) < _SAMPLE_CHARS:
        return False  # small: json is as fast, and the checks below cost more than they save
    return text.count("{", 0, _SAMPLE_CHARS) * 1024 >= _MIN_OBJECTS_PER_KB * _SAMPLE_CHARS


_DIGITS_AS_NINES = bytes.maketrans(b"0123456789", b"9" * 10)
_LONG_RUN = 19


def _long_digit_run(data: bytes) -> bool:
    """Whether ``data`` holds 19 ASCII digits in a row, in numpy (~0.6 ms per MB)."""
    if len(data) < 4096:
        return b"9" * _LONG_RUN in data.translate(_DIGITS_AS_NINES)
    import numpy as np

    digits = np.frombuffer(data, dtype=np.uint8) - 48 < 10
    # A run of 19 covers 4 whole aligned blocks of 4 bytes: find those (a uint32 compare
    # per block), then count the digits just before and after the 16 (3 at most each).
    size = len(digits) // 4 * 4
    full = digits[:size].view(np.uint32) == 0x01010101
    blocks = np.flatnonzero(full[:-3] & full[1:-2] & full[2:-1] & full[3:])
    if not len(blocks):
        return False
    padded = np.pad(digits, 3)
    at = blocks * 4 + 3  # the first of the 16 in ``padded``
    l1, l2, l3 = padded[at - 1], padded[at - 2], padded[at - 3]
    r1, r2, r3 = padded[at + 16], padded[at + 17], padded[at + 18]
    left = l1.astype(np.int8) + (l1 & l2) + (l1 & l2 & l3)
    right = r1.astype(np.int8) + (r1 & r2) + (r1 & r2 & r3)
    return bool((left + right >= _LONG_RUN - 16).any())


def _first_char(text: str) -> str:
    """First non-whitespace character, without copying a large text."""
    for i in range(0, len(text), 256):
        chunk = text[i : i + 256].lstrip()
        if chunk:
            return chunk[0]
    return ""


# --------------------------------------------------------------------------- fast reader

_PY_STRING = re.compile(r"""('[^'\\\n]*(?:\\.[^'\\\n]*)*'|"[^"\\\n]*(?:\\.[^"\\\n]*)*")""")
_PY_WORDS = (("None", "null"), ("True", "true"), ("False", "false"), ("inf", "Infinity"),
             ("nan", "NaN"))
_ZONEINFO_RAW = re.compile(r"zoneinfo\.ZoneInfo\(key='([A-Za-z0-9_+\-/]{1,64})'\)")
_TZ = (
    r"(datetime\.timezone\.utc)"
    r"|datetime\.timezone\(datetime\.timedelta\((?:days=(-1), )?seconds=(\d+)\)\)"
    r"|<zone:([A-Za-z0-9_+\-/]{1,64})>"
)
_DATETIME_CALL = re.compile(
    r"datetime\.datetime\((\d{1,4}), (\d{1,2}), (\d{1,2}), (\d{1,2}), (\d{1,2})"
    r"(?:, (\d{1,2}))?(?:, (\d{1,6}))?(?:, tzinfo=(?:" + _TZ + r"))?(, fold=1)?\)"
)
_DATE_CALL = re.compile(r"datetime\.date\((\d{1,4}), (\d{1,2}), (\d{1,2})\)")
_UUID_RAW = re.compile(
    r"UUID\('([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'\)"
)
_STRING_CALLS = (("Decimal(\x00)", _DECIMAL),)


def python_repr_to_json(text: str) -> str:
    """Rewrite the repr of plain data as JSON text, or raise ValueError.

    ``ast`` is slow and memory-hungry on large results (~1 s and ~150 MB per MB of text),
    so the common case is transliterated: the text is split into string literals and what
    lies between them; only the parts between are rewritten (``None`` → ``null``,
    tuples → arrays, ``Decimal('1.5')`` → ``1.5e0``, ``datetime.date(2024, 1, 5)`` →
    ``"2024-01-05"``). Nothing is evaluated; anything else leaves invalid JSON behind and
    ``json.loads`` rejects it, and the caller falls back to the AST reader.
    """
    if _SENTINEL in text or _DECIMAL in text:
        raise ValueError("unexpected control character")
    if "\\" not in text and '"' not in text:
        # Every quote delimits a string without escapes: splitting runs in C. No string
        # can contain a quote, so a constructor pattern cannot hide inside one.
        if "ZoneInfo" in text:
            text = _ZONEINFO_RAW.sub(r"<zone:\1>", text)
        parts = text.split("'")
        if len(parts) % 2 == 0:
            raise ValueError("unbalanced quotes")
    else:
        parts = _PY_STRING.split(text)
        if "ZoneInfo(" in text:
            # named zones hold a string: rewritten in the raw text when none of the
            # string literals holds one too (then every occurrence is a real call)
            outside = sum(part.count("ZoneInfo(") for part in parts[0::2])
            if outside == text.count("ZoneInfo("):
                text = _ZONEINFO_RAW.sub(r"<zone:\1>", text)
                parts = _PY_STRING.split(text)
        parts[1::2] = [_json_string_body(token) for token in parts[1::2]]
    between = _SENTINEL.join(parts[0::2])
    if "UUID(" in text:
        # Every UUID(...) in the text must be a well-formed one (a count and one findall,
        # both in C); then the calls between strings are unwrapped to their text.
        if text.count("UUID(") != len(_UUID_RAW.findall(text)):
            raise ValueError("a UUID call the fast reader does not check")
        between = between.replace("UUID(\x00)", _SENTINEL)
    for call, mark in _STRING_CALLS:
        if call in between:
            between = between.replace(call, mark)
    if "datetime." in between:  # before the words: "tzinfo" holds "inf"
        between = _DATETIME_CALL.sub(_iso_datetime, between)
        between = _DATE_CALL.sub(_iso_date, between)
    for python_word, json_word in _PY_WORDS:
        if python_word in between:
            between = between.replace(python_word, json_word)
    if "(" in between:
        between = between.replace("(", "[").replace(")", "]")
    # Plain strings get their quotes back; decimals stay bare with "e0", a JSON float.
    between = between.replace(_SENTINEL, '"\x00"')
    if _DECIMAL in between:
        between = between.replace(_DECIMAL, "\x00e0")
    pieces = between.split(_SENTINEL)
    strings = parts[1::2]
    out = [None] * (len(pieces) + len(strings))
    out[0::2] = pieces
    out[1::2] = strings
    return "".join(out)


_NON_JSON_ESCAPE = re.compile(r'\\[^nrtbfu"/]')  # searched with the \\ pairs taken out


def _json_string_body(token: str) -> str:
    """A Python string-literal token as the inside of a JSON string literal."""
    inner = token[1:-1]
    if token[0] == "'":
        if "\\" in inner:
            inner = inner.replace("\\'", "'")  # \' is never an escaped backslash's end
        inner = inner.replace('"', '\\"')
    if "\\" in inner and _NON_JSON_ESCAPE.search(inner.replace("\\\\", "")):
        # \x41, \U0001f600, \a ...: Python's own reading, then JSON's writing
        return json.dumps(ast.literal_eval(token), ensure_ascii=False)[1:-1]
    return inner


@functools.lru_cache(maxsize=256)
def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return text + f":{secs:02d}" if secs else text


def _iso_datetime(m: re.Match[str]) -> str:
    """``datetime.datetime(...)`` as ``datetime.isoformat()`` writes it, in quotes.

    Runs once per timestamp, so it formats the digits as text. A repr never holds an
    impossible date; hand-written text that does is left for the table step, which then
    keeps that column as text.
    """
    y, mo, d, h, mi, s, us, utc, neg, seconds, zone, fold = m.groups()
    if zone:  # a named zone: the offset depends on the date
        value = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0),
                            int(us or 0), tzinfo=_zoneinfo(zone), fold=1 if fold else 0)
        return '"' + value.isoformat() + '"'
    text = f'"{y:0>4}-{mo:0>2}-{d:0>2}T{h:0>2}:{mi:0>2}:{s or "00":0>2}'
    if us:
        text += "." + us.rjust(6, "0")
    if utc:
        return text + '+00:00"'
    if seconds is not None:
        return text + _offset_text(int(seconds) - (86400 if neg else 0)) + '"'
    return text + '"'


@functools.lru_cache(maxsize=4096)
def _iso_date_text(call: str, y: str, mo: str, d: str) -> str:
    return '"' + dt.date(int(y), int(mo), int(d)).isoformat() + '"'


def _iso_date(m: re.Match[str]) -> str:
    return _iso_date_text(*m.group(0, 1, 2, 3))


# --------------------------------------------------------------------------- AST reader


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError("Decimal takes text or a number")
    return float(Decimal(value))


def _datetime_text(*args: Any, **kwargs: Any) -> str:
    return dt.datetime(*args, **kwargs).isoformat()


def _date_text(*args: Any) -> str:
    return dt.date(*args).isoformat()


def _zoneinfo(key: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(key)


_CALLS: dict[str, Any] = {
    "Decimal": _as_float,
    "decimal.Decimal": _as_float,
    "datetime.datetime": _datetime_text,
    "datetime.date": _date_text,
    "datetime.time": dt.time,
    "datetime.timedelta": dt.timedelta,
    "datetime.timezone": dt.timezone,
    "zoneinfo.ZoneInfo": _zoneinfo,
    "ZoneInfo": _zoneinfo,
    "UUID": lambda value: str(uuid.UUID(value)),
    "uuid.UUID": lambda value: str(uuid.UUID(value)),
    "IPv4Address": lambda v: str(ipaddress.IPv4Address(v)),
    "IPv6Address": lambda v: str(ipaddress.IPv6Address(v)),
    "IPv4Network": lambda v: str(ipaddress.IPv4Network(v)),
    "IPv6Network": lambda v: str(ipaddress.IPv6Network(v)),
    "IPv4Interface": lambda v: str(ipaddress.IPv4Interface(v)),
    "IPv6Interface": lambda v: str(ipaddress.IPv6Interface(v)),
    "set": set,
    "frozenset": frozenset,
}
_NAMES: dict[str, Any] = {
    "nan": float("nan"),
    "inf": float("inf"),
    "datetime.timezone.utc": dt.timezone.utc,
    "timezone.utc": dt.timezone.utc,
}
_MAX_CALL_ARGS = 8


def literal_value(text: str) -> Any:
    """The value of a Python literal, allowing only the whitelisted constructors."""
    tree = ast.parse(text.strip(), mode="eval")
    return _walk(tree.body)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    raise ValueError("not a name")


def _walk(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List):
        return [_walk(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return [_walk(e) for e in node.elts]  # as the JSON reader gives it
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("** in a literal")
        return {_walk(k): _walk(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if isinstance(node, ast.Set):
        return {_walk(e) for e in node.elts}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _walk(node.operand)
        if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
            raise ValueError("sign on a non-number")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = _dotted(node)
        if name in _NAMES:
            return _NAMES[name]
        raise ValueError(f"name not allowed: {name}")
    if isinstance(node, ast.Call):
        name = _dotted(node.func)
        function = _CALLS.get(name)
        if function is None or len(node.args) + len(node.keywords) > _MAX_CALL_ARGS:
            raise ValueError(f"call not allowed: {name}")
        if any(k.arg is None for k in node.keywords) or any(
            isinstance(a, ast.Starred) for a in node.args
        ):
            raise ValueError("* or ** in a call")
        args = [_walk(a) for a in node.args]
        kwargs = {k.arg: _walk(k.value) for k in node.keywords}
        return function(*args, **kwargs)
    raise ValueError(f"not a literal: {type(node).__name__}")
