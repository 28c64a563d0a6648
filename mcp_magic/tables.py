"""Tool results -> pandas DataFrames (pure functions, see DESIGN.md §2).

Detection runs in order of trust: ``structured_content``, JSON text, Python-literal text
(``str(list_of_dicts)``: rewritten to JSON when it is plain data, else ``ast.literal_eval``;
never ``eval``), then the plain-text formats, most specific first: file listings
(``[FILE] a.txt``), Markdown tables, CSV/TSV. Anything else is not a table and stays text.
Text that reads as an error (see ``error_text``) is never a table.

The table contract of the built-in data server (its ``structured_content``)::

    {"columns": ["region", "total"],          # or [{"name": "region", "type": "TEXT"}, ...]
     "types": ["TEXT", "REAL"],               # optional, SQLite-ish names, one per column
     "rows": [["North", 123.4], ["South", None]],   # lists (or dicts keyed by column)
     "row_count": 2,                          # optional: rows before truncation
     "truncated": False}                      # optional

``row_count`` and ``truncated`` are kept in ``DataFrame.attrs``.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

__all__ = ["error_text", "result_to_table"]

# --------------------------------------------------------------------------- errors

_MAX_ERROR_CHARS = 500
_ERROR_PREFIX_CHARS = 400

_ERROR_START = re.compile(
    r"""
    (?:
        [A-Za-z_][\w.]*(?:Error|Exception)\s*:          # ValueError: / sqlite3.OperationalError:
      | (?i:error|exception|fatal)\s*(?:\[[^\]\n]*\])?\s*:   # Error: / ERROR [E1]: / FATAL:
      | (?i:error)\s+\d+\b                              # ERROR 1064 (42000): ...
      | (?i:error)[.!]?\s*(?:\n|\Z)                     # a bare "Error" line
      | (?i:error\s+(?:executing|calling|running|while|during|processing)\b)
      | (?i:(?:database|sql|sqlite|query|tool|runtime|internal|server|connection|http|request
            |validation|execution|permission|mcp|api|unexpected|unknown|syntax)\s+error)\s*[:\-]
      | Traceback\ \(most\ recent\ call\ last\):
      | \[Errno\ \d+\]
    )
    """,
    re.VERBOSE,
)
_JSON_ERROR_START = re.compile(r'\{\s*"error"\s*:')
_JSON_ERROR_KEYS = frozenset({"error", "code", "message", "details", "status", "type"})
_JSON_ERROR_MAX_CHARS = 100_000


def error_text(text: str | None, is_error: bool) -> str | None:
    """Return a short error message if the result is an error, else None.

    Besides ``is_error``, this recognises errors reported with ``isError: false`` (the
    reference SQLite server answers ``Database error: no such table: foo``). Only the start of
    the text counts, so prose that mentions "error" further on is not flagged.
    """
    if is_error:
        return _shorten(text) or "The tool reported an error without a message."
    if not text:
        return None
    head = text[:_ERROR_PREFIX_CHARS].lstrip()
    if _ERROR_START.match(head):
        return _shorten(text)
    if _JSON_ERROR_START.match(head):
        return _json_error_message(text)
    return None


def _shorten(text: str | None) -> str:
    """Collapse an error text to one line (a traceback to its last line), capped in length."""
    text = (text or "").strip()
    if text.startswith("Traceback (most recent call last):"):
        text = text.splitlines()[-1].strip()
    text = " ".join(text[: _MAX_ERROR_CHARS * 2].split())
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 1].rstrip() + "…"
    return text


def _json_error_message(text: str) -> str | None:
    """``{"error": ...}`` (optionally with code/message/details) as an error, else None."""
    if len(text) > _JSON_ERROR_MAX_CHARS:
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not obj.get("error") or not obj.keys() <= _JSON_ERROR_KEYS:
        return None
    error = obj["error"]
    if isinstance(error, dict):
        error = error.get("message") or json.dumps(error)
    return _shorten(str(error))


# --------------------------------------------------------------------------- entry point


def result_to_table(
    structured_content: object, text: str | None, *, expect_table: bool = False
) -> pd.DataFrame | None:
    """Return a DataFrame when an MCP tool result is tabular, else None.

    ``structured_content`` is the result's ``structured_content``; ``text`` is its text
    content blocks concatenated. ``expect_table`` (tools that always answer with a table)
    turns empty results and lists of scalars into DataFrames instead of None.
    """
    if text is not None and error_text(text, False) is not None:
        return None
    if structured_content is not None:
        table = _from_object(structured_content, expect_table)
        if table is not None:
            return table
    if text is None:
        return None
    return _from_text(text, expect_table)


def _from_text(text: str, expect_table: bool) -> pd.DataFrame | None:
    start = _first_char(text)
    if not start:
        return pd.DataFrame() if expect_table else None
    if start in "[{(":
        parsed, ok = _parse_literal(text, start)
        if ok:
            return _from_object(parsed, expect_table)
    for parse in (_listing_table, _markdown_table, _delimited_table):
        table = parse(text)
        if table is not None:
            return table
    return None


def _first_char(text: str) -> str:
    """First non-whitespace character, without copying a large text."""
    for i in range(0, len(text), 256):
        chunk = text[i : i + 256].lstrip()
        if chunk:
            return chunk[0]
    return ""


_LITERAL_EVAL_MAX_CHARS = 2_000_000  # ast.literal_eval needs ~150 bytes of memory per char


def _parse_literal(text: str, start: str) -> tuple[Any, bool]:
    """JSON first (one ``json.loads``), then a Python literal (``str(list_of_dicts)``)."""
    if start != "(":
        try:
            return json.loads(text), True
        except ValueError:
            pass
        try:
            return json.loads(_python_repr_to_json(text)), True
        except (ValueError, SyntaxError):
            pass
    if len(text) > _LITERAL_EVAL_MAX_CHARS:
        return None, False
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None, False
    return value, isinstance(value, (list, tuple, dict))


_PY_STRING = re.compile(r"""('[^'\\\n]*(?:\\.[^'\\\n]*)*'|"[^"\\\n]*(?:\\.[^"\\\n]*)*")""")
_PY_WORDS = (("None", "null"), ("True", "true"), ("False", "false"), ("inf", "Infinity"),
             ("nan", "NaN"))
_SENTINEL = "\x00"


def _python_repr_to_json(text: str) -> str:
    """Rewrite the repr of plain data (``str(list_of_dicts)``) as JSON text.

    ``ast.literal_eval`` is slow and memory-hungry on large results (~1 s and ~150 MB per
    MB of text), so the common case is transliterated instead: the text is split into string
    literals and what lies between them, ``None``/``True``/``False`` are replaced only
    between strings, and each string literal becomes a JSON string. Nothing is evaluated;
    anything that is not plain data leaves invalid JSON behind and ``json.loads`` rejects it.
    """
    if _SENTINEL in text:
        raise ValueError("unexpected NUL character")
    if "\\" not in text and '"' not in text:
        # every quote delimits a string without escapes: all of it runs in C
        parts = text.split("'")
        joiner = '"'
    else:
        parts = _PY_STRING.split(text)
        parts[1::2] = [_json_string(token) for token in parts[1::2]]
        joiner = ""
    between = _SENTINEL.join(parts[0::2])
    for python_word, json_word in _PY_WORDS:
        between = between.replace(python_word, json_word)
    parts[0::2] = between.split(_SENTINEL)
    return joiner.join(parts)


def _json_string(token: str) -> str:
    """A Python string-literal token as a JSON string literal."""
    inner = token[1:-1]
    if "\\" in inner:
        return json.dumps(ast.literal_eval(token), ensure_ascii=False)
    if token[0] == '"':
        return token
    return '"' + inner.replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- objects

_CONTENT_BLOCK_TYPES = frozenset({"text", "image", "audio", "resource", "resource_link"})
_CONTENT_BLOCK_KEYS = frozenset(
    {"type", "text", "data", "mimeType", "resource", "uri", "name", "title", "description",
     "size", "annotations", "_meta", "icons"}
)
_TREE_KEYS = frozenset({"name", "type", "children"})
_TREE_TYPES = frozenset({"file", "directory"})


def _from_object(obj: object, expect_table: bool) -> pd.DataFrame | None:
    if isinstance(obj, (list, tuple)):
        return _records_table(obj, expect_table)
    if isinstance(obj, dict):
        return _dict_table(obj, expect_table)
    return None


def _dict_table(obj: dict, expect_table: bool, nested: bool = False) -> pd.DataFrame | None:
    if isinstance(obj.get("columns"), list) and isinstance(obj.get("rows", obj.get("data")), list):
        return _columns_rows_table(obj)
    if _is_tree_node(obj):
        return _tree_table([obj])
    list_keys = [k for k, v in obj.items() if isinstance(v, (list, tuple))]
    if len(list_keys) == 1:
        key = list_keys[0]
        return _records_table(obj[key], expect_table, name=str(key))
    if len(list_keys) >= 2 and len(list_keys) == len(obj):
        return _columns_dict_table(obj, expect_table)
    if len(obj) == 1 and not nested:
        (inner,) = obj.values()
        if isinstance(inner, dict):  # {"result": {"columns": ..., "rows": ...}}
            return _dict_table(inner, expect_table, nested=True)
    return None


def _records_table(
    records: Sequence[Any], expect_table: bool, name: str = "value"
) -> pd.DataFrame | None:
    """A list of dicts (the common case), built in one pass by pandas."""
    if len(records) == 0:
        return pd.DataFrame() if expect_table else None
    if isinstance(records, tuple):
        records = list(records)
    first = records[0]
    if isinstance(first, dict):
        if _is_content_block(first):
            return None
        if _is_tree_node(first) and all(_is_tree_node(r) for r in records):
            return _tree_table(records)
        try:
            return pd.DataFrame.from_records(records)
        except (TypeError, ValueError, AttributeError, KeyError):
            return None
    if not expect_table:
        return None
    try:
        if isinstance(first, (list, tuple)):
            return pd.DataFrame(list(records))
        return pd.DataFrame({name: list(records)})
    except (TypeError, ValueError):
        return None


def _is_content_block(obj: dict) -> bool:
    """An MCP content block (``{"type": "text", "text": ...}``) is a wrapper, not a row."""
    return obj.get("type") in _CONTENT_BLOCK_TYPES and obj.keys() <= _CONTENT_BLOCK_KEYS


def _columns_dict_table(obj: dict, expect_table: bool) -> pd.DataFrame | None:
    """``{"a": [1, 2], "b": [3, 4]}``: equal-length lists of scalars."""
    lengths = {len(v) for v in obj.values()}
    if len(lengths) != 1:
        return None
    (length,) = lengths
    if length == 0:
        return pd.DataFrame(columns=list(obj)) if expect_table else None
    if any(isinstance(v[0], (dict, list, tuple)) for v in obj.values()):
        return None
    try:
        return pd.DataFrame({k: list(v) for k, v in obj.items()})
    except (TypeError, ValueError):
        return None


def _columns_rows_table(obj: dict) -> pd.DataFrame | None:
    """The ``{"columns", "types", "rows", "row_count", "truncated"}`` contract."""
    rows = obj.get("rows", obj.get("data"))
    names, types = _column_specs(obj["columns"], obj.get("types"))
    try:
        if not rows:
            df = pd.DataFrame(columns=names)
        elif isinstance(rows[0], dict):
            df = pd.DataFrame.from_records(rows, columns=names)
        else:
            df = pd.DataFrame(rows, columns=names)
    except (TypeError, ValueError, AttributeError, KeyError):
        return None
    if any(types):
        _apply_types(df, types, lambda i: [_cell(row, i, names[i]) for row in rows])
    for key in ("row_count", "truncated"):
        if key in obj:
            df.attrs[key] = obj[key]
    return df


def _cell(row: Any, index: int, name: str) -> Any:
    return row.get(name) if isinstance(row, dict) else row[index]


def _column_specs(columns: list, types: object) -> tuple[list[str], list[str | None]]:
    """Column names and declared types from ``columns`` (names or dicts) and ``types``."""
    names: list[str] = []
    declared: list[str | None] = []
    for col in columns:
        if isinstance(col, dict):
            names.append(str(col.get("name", len(names))))
            declared.append(col.get("type"))
        else:
            names.append(str(col))
            declared.append(None)
    if isinstance(types, list):
        declared = [
            types[i] if i < len(types) else declared[i] for i in range(len(names))
        ]
    return names, declared


# --------------------------------------------------------------------------- types


def _type_kind(name: object) -> str | None:
    """Map an SQLite-ish type name to int / float / bool / datetime / text (or None)."""
    if not isinstance(name, str):
        return None
    t = name.strip().upper().split("(")[0].strip()
    if t in ("BOOLEAN", "BOOL"):
        return "bool"
    if t in ("DATE", "DATETIME") or t.startswith("TIMESTAMP"):
        return "datetime"
    if "INT" in t:  # SQLite affinity rule: INTEGER, BIGINT, SMALLINT, ...
        return "int"
    if t in ("NUMERIC", "DECIMAL", "NUMBER") or any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return "float"
    if t == "STRING" or any(k in t for k in ("CHAR", "CLOB", "TEXT")):
        return "text"
    return None


def _apply_types(
    df: pd.DataFrame, types: list[str | None], raw_column: Callable[[int], list]
) -> None:
    """Coerce columns to their declared types in place; a failed coercion leaves a column."""
    for i, declared in enumerate(types[: df.shape[1]]):
        kind = _type_kind(declared)
        if kind in (None, "text"):
            continue
        series = df.iloc[:, i]
        try:
            converted = _coerce(series, kind, lambda i=i: raw_column(i))
        except (TypeError, ValueError, OverflowError, IndexError, KeyError):
            continue
        if converted is not series:
            df.isetitem(i, converted)


_EXACT_FLOAT_INT = 2**53


def _coerce(series: pd.Series, kind: str, raw: Callable[[], list]) -> pd.Series:
    if kind == "int":
        if series.dtype.kind in "iu":
            return series
        if series.dtype.kind == "f" and series.abs().max() >= _EXACT_FLOAT_INT:
            # ints with nulls were widened to float64 and lost precision: rebuild exactly
            return pd.Series(pd.array(raw(), dtype="Int64"), index=series.index)
        return series.astype("Int64" if series.hasnans else "int64")
    if kind == "float":
        return series if series.dtype.kind == "f" else series.astype("float64")
    if kind == "bool":
        if series.dtype.kind == "b":
            return series
        if series.dtype.kind in "iuf":
            if not series.dropna().isin([0, 1]).all():
                return series
        elif series.dtype != object or not all(
            v is None or isinstance(v, bool) for v in series
        ):
            return series  # strings such as "false" would all turn True
        return series.astype("boolean" if series.hasnans else "bool")
    if kind == "datetime":
        if series.dtype.kind == "M" or series.dtype.kind in "iufb":
            return series  # epoch numbers are ambiguous (s? ms?): leave them
        return pd.to_datetime(series, format="ISO8601")
    return series


# --------------------------------------------------------------------------- trees


def _is_tree_node(obj: object) -> bool:
    return (
        isinstance(obj, dict)
        and "name" in obj
        and obj.get("type") in _TREE_TYPES
        and obj.keys() <= _TREE_KEYS
        and isinstance(obj.get("children", []), list)
    )


def _tree_table(roots: Sequence[dict]) -> pd.DataFrame:
    """Flatten the filesystem server's ``directory_tree`` (pre-order, like ``find``)."""
    rows: list[tuple[str, str, str, int]] = []
    stack: list[tuple[dict, str, int]] = [(node, "", 0) for node in reversed(roots)]
    while stack:
        node, parent, depth = stack.pop()
        name = str(node.get("name", ""))
        path = f"{parent}/{name}" if parent else name
        kind = "dir" if node.get("type") == "directory" else "file"
        rows.append((path, name, kind, depth))
        children = node.get("children") or []
        stack.extend(
            (child, path, depth + 1) for child in reversed(children) if isinstance(child, dict)
        )
    df = pd.DataFrame(rows, columns=["path", "name", "type", "depth"])
    df["depth"] = df["depth"].astype("int64")
    return df


# --------------------------------------------------------------------------- listings

_LISTING_LINE = re.compile(r"\[(FILE|DIR)\] (.*)")
_LISTING_SIZE = re.compile(r"(.*?)(\s+)(\d+(?:\.\d+)?) (B|KB|MB|GB|TB)")
_LISTING_TOTAL = re.compile(r"Total: \d+ files?, \d+ director(?:y|ies)")
_LISTING_COMBINED = re.compile(r"Combined size: \d+(?:\.\d+)? (?:B|KB|MB|GB|TB)")
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _listing_table(text: str) -> pd.DataFrame | None:
    """``[FILE] a.txt`` / ``[DIR] sub`` lines (the npm filesystem server's listings).

    ``list_directory_with_sizes`` appends sizes such as ``1.20 KB``; they become an
    approximate byte count in ``size``. Its summary lines are skipped.
    """
    if not text.lstrip().startswith(("[FILE]", "[DIR]", "Total:")):
        return None
    entries: list[tuple[str, str]] = []
    has_summary = False
    for line in text.splitlines():
        line = line.rstrip()
        if not line.strip():
            continue
        m = _LISTING_LINE.fullmatch(line)
        if m:
            entries.append((m.group(2), "file" if m.group(1) == "FILE" else "dir"))
        elif _LISTING_TOTAL.fullmatch(line) or _LISTING_COMBINED.fullmatch(line):
            has_summary = True
        else:
            return None
    if not entries and not has_summary:
        return None
    return _listing_frame(entries, has_summary)


def _listing_frame(entries: list[tuple[str, str]], has_summary: bool) -> pd.DataFrame:
    files = [_LISTING_SIZE.fullmatch(rest) for rest, kind in entries if kind == "file"]
    sized = has_summary or (
        bool(files) and all(m is not None and len(m.group(2)) >= 2 for m in files)
    )
    if not sized or not all(files):
        return pd.DataFrame(entries, columns=["name", "type"])
    names: list[str] = []
    sizes: list[int | None] = []
    for rest, kind in entries:
        m = _LISTING_SIZE.fullmatch(rest) if kind == "file" else None
        names.append(m.group(1) if m else rest)
        sizes.append(round(float(m.group(3)) * _SIZE_UNITS[m.group(4)]) if m else None)
    return pd.DataFrame(
        {
            "name": names,
            "type": [kind for _, kind in entries],
            "size": pd.array(sizes, dtype="Int64"),
        }
    )


# --------------------------------------------------------------------------- markdown

_MD_SEPARATOR_CELL = re.compile(r":?-+:?")
_MD_SPLIT = re.compile(r"(?<!\\)\|")


def _markdown_table(text: str) -> pd.DataFrame | None:
    """A whole-text Markdown (GFM) table: header row, ``|---|:--:|`` row, body rows."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 2 or "|" not in lines[0] or "|" not in lines[1]:
        return None
    header = _md_cells(lines[0])
    separator = _md_cells(lines[1])
    if len(separator) != len(header) or not all(
        _MD_SEPARATOR_CELL.fullmatch(c) for c in separator
    ):
        return None
    body: list[list[str]] = []
    for line in lines[2:]:
        if not line:
            continue
        if "|" not in line:
            return None  # prose after the table: not a pure table
        cells = _md_cells(line)
        body.append((cells + [""] * len(header))[: len(header)])
    columns = [_infer_column([row[i] for row in body]) for i in range(len(header))]
    df = pd.DataFrame(dict(enumerate(columns)))
    df.columns = header
    return df


def _md_cells(line: str) -> list[str]:
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _MD_SPLIT.split(line)]


def _infer_column(values: list[str]) -> pd.Series:
    """Numbers and booleans from text cells; empty cells are missing."""
    cleaned = [v if v != "" else None for v in values]
    present = [v for v in cleaned if v is not None]
    if present and all(v.lower() in ("true", "false") for v in present):
        return pd.Series([None if v is None else v.lower() == "true" for v in cleaned])
    try:
        return pd.to_numeric(pd.Series(cleaned, dtype=object))
    except (ValueError, TypeError):
        return pd.Series(cleaned) if cleaned else pd.Series([], dtype=object)


# --------------------------------------------------------------------------- csv / tsv

_DELIMITERS = ("\t", ",", ";")
_HEADER_CELL = re.compile(r"[\w$%#&()/.+\-' ]{1,64}")
_SENTENCE_END = re.compile(r"[^\W\d_][.!?]$")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


def _delimited_table(text: str) -> pd.DataFrame | None:
    """CSV/TSV, only when it clearly is one.

    A header row of name-like cells and at least one data row, every row with the same
    number of fields, and not reading like sentences (prose has commas too).
    """
    stripped = text.strip()
    first_line = stripped.split("\n", 1)[0]
    for delim in _DELIMITERS:
        if delim not in first_line:
            continue
        try:
            rows = [r for r in csv.reader(io.StringIO(stripped), delimiter=delim) if r]
        except csv.Error:
            continue
        width = len(rows[0])
        if len(rows) < 2 or width < 2 or any(len(r) != width for r in rows):
            continue
        if not _is_header(rows[0]) or _reads_like_prose(stripped):
            continue
        try:
            df = pd.read_csv(io.StringIO(stripped), sep=delim, skipinitialspace=True)
        except (ValueError, csv.Error):
            continue
        df.columns = [str(c).strip() for c in df.columns]
        return df
    return None


def _is_header(cells: list[str]) -> bool:
    names = [c.strip() for c in cells]
    if len(set(names)) != len(names) or all(_NUMBER.fullmatch(n) for n in names):
        return False
    return all(_is_header_name(n) for n in names)


def _is_header_name(name: str) -> bool:
    if not _HEADER_CELL.fullmatch(name) or name[-1] in ".!?":
        return False
    words = name.split()
    lowercase_words = sum(w[0].islower() for w in words[1:])
    # "date" or "First Name" are names; "violets are blue" is a phrase
    return len(words) <= 4 and not (len(words) >= 3 and lowercase_words >= 2)


def _reads_like_prose(text: str) -> bool:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    sentences = sum(bool(_SENTENCE_END.search(line)) for line in lines)
    return sentences * 2 >= len(lines)
