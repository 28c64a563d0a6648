"""Parsed values (dicts and lists) -> DataFrames: the shapes data servers answer with.

* a list of records (dicts), or of rows (lists or tuples) of one length;
* ``{"columns": [...], "rows": [[...]]}`` and its spellings (``headers``, ``fields``,
  ``column_names``; ``data``, ``values``, ``records``), with declared types under ``types``,
  ``columnTypes``, ``column_types``, ``dtypes``, in the column dicts, or in ``schema``;
* a 2-D ``values`` array whose first row is the header (spreadsheets);
* envelopes: the rows under one list-valued key (``data``, ``rows``, ``results``,
  ``records``, ``items``, or any single list), one or two levels deep. The other fields
  are kept in ``DataFrame.attrs``;
* a dict of equal-length columns; the filesystem server's ``directory_tree``.

Column names for rows come from a sibling key, else from the tool's ``outputSchema``, else
``col_0``, ``col_1``, ... Declared types (sibling key or ``outputSchema``) win over guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .columns import columns_frame, record_columns, row_columns
from .dtypes import Kind, apply_kinds, infer_columns, schema_kind, type_kind

__all__ = ["object_table", "Hints"]

_NAME_KEYS = ("columns", "column_names", "columnNames", "headers", "header", "fields", "cols")
_ROW_KEYS = ("rows", "data", "values", "records", "results", "result", "items")
_TYPE_KEYS = ("types", "columnTypes", "column_types", "columnTypeNames", "dtypes", "data_types",
              "dataTypes")
_ENVELOPE_KEYS = ("rows", "data", "results", "result", "records", "items", "values")
_MAX_DEPTH = 2

_CONTENT_BLOCK_TYPES = frozenset({"text", "image", "audio", "resource", "resource_link"})
_CONTENT_BLOCK_KEYS = frozenset(
    {"type", "text", "data", "mimeType", "resource", "uri", "name", "title", "description",
     "size", "annotations", "_meta", "icons"}
)
_TREE_KEYS = frozenset({"name", "type", "children"})
_TREE_TYPES = frozenset({"file", "directory"})


@dataclass
class Hints:
    """What the tool's ``outputSchema`` says about the answer."""

    schema: dict | None = None
    expect_table: bool = False

    def row_schema(self, path: Sequence[str]) -> tuple[list[str], list[Kind | None]]:
        """Column names and kinds for the rows found at ``path`` in the answer."""
        node = self.schema
        for key in path:
            node = _resolve(self.schema, node)
            props = node.get("properties") if isinstance(node, dict) else None
            if not isinstance(props, dict) or key not in props:
                return [], []
            node = props[key]
        node = _resolve(self.schema, node)
        items = _resolve(self.schema, node.get("items")) if isinstance(node, dict) else None
        if not isinstance(items, dict):
            return [], []
        if isinstance(items.get("properties"), dict):
            props = {k: _resolve(self.schema, v) for k, v in items["properties"].items()}
            return list(props), [schema_kind(v) for v in props.values()]
        prefix = items.get("prefixItems")
        if isinstance(prefix, list):
            prefix = [_resolve(self.schema, p) or {} for p in prefix]
            names = [p.get("title") for p in prefix]
            if all(isinstance(n, str) for n in names):
                return names, [schema_kind(p) for p in prefix]
            return [], [schema_kind(p) for p in prefix]
        return [], []


def _resolve(root: Any, node: Any) -> Any:
    """Follow a local ``$ref`` and unwrap ``anyOf: [X, null]``."""
    for _ in range(8):
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part) if isinstance(target, dict) else None
            node = target
            continue
        options = node.get("anyOf") or node.get("oneOf")
        if isinstance(options, list) and "type" not in node:
            real = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if len(real) == 1:
                node = real[0]
                continue
        return node
    return node


# --------------------------------------------------------------------------- entry


def object_table(obj: Any, hints: Hints) -> pd.DataFrame | None:
    """A DataFrame when ``obj`` (parsed JSON or literal) is tabular, else None."""
    if isinstance(obj, (list, tuple)):
        return _list_table(obj, hints, [])
    if isinstance(obj, dict):
        return _dict_table(obj, hints, [], 0)
    return None


def _dict_table(obj: dict, hints: Hints, path: list[str], depth: int) -> pd.DataFrame | None:
    if _is_tree_node(obj):
        return _tree_table([obj])
    names_key = next((k for k in _NAME_KEYS if isinstance(obj.get(k), list)), None)
    rows_key = next(
        (k for k in _ROW_KEYS if k != names_key and isinstance(obj.get(k), list)), None
    )
    if names_key and rows_key and _names_like(obj[names_key]):
        return _with_attrs(_columns_rows_table(obj, names_key, rows_key, hints, path),
                           obj, (names_key, rows_key, *_TYPE_KEYS))
    if isinstance(obj.get("values"), list) and names_key is None:
        table = _values_table(obj["values"])
        if table is not None:
            return _with_attrs(table, obj, ("values",))
    schema = obj.get("schema")
    if isinstance(schema, dict) and isinstance(schema.get("fields"), list) and rows_key:
        names, kinds = _field_specs(schema["fields"])
        table = _rows_table(obj[rows_key], names, kinds, hints.expect_table)
        return _with_attrs(table, obj, ("schema", rows_key))
    list_keys = [k for k, v in obj.items() if isinstance(v, (list, tuple))]
    if len(list_keys) >= 2 and len(list_keys) == len(obj):
        table = _columns_dict_table(obj, hints.expect_table)
        if table is not None:
            return table
    key = None
    if len(list_keys) == 1:
        key = list_keys[0]
    elif len(list_keys) > 1:
        key = next((k for k in _ENVELOPE_KEYS if k in list_keys and _rows_like(obj[k])), None)
    if key is not None:
        table = _list_table(obj[key], hints, [*path, str(key)], name=str(key))
        if table is None and not obj[key] and key in ("rows", "records"):
            table = pd.DataFrame()  # named as rows: an empty result, not an empty list
        return _with_attrs(table, obj, (key,))
    if depth >= _MAX_DEPTH:
        return None
    inner_keys = [k for k, v in obj.items() if isinstance(v, dict)]
    key = next((k for k in _ENVELOPE_KEYS if k in inner_keys), None)
    if key is None and len(obj) == 1 and inner_keys:
        key = inner_keys[0]  # {"result": {"columns": ..., "rows": ...}}
    if key is None:
        return None
    table = _dict_table(obj[key], hints, [*path, str(key)], depth + 1)
    return _with_attrs(table, obj, (key,), inner_first=True)


def _with_attrs(
    table: pd.DataFrame | None, obj: dict, used: Sequence[Any], inner_first: bool = False
) -> pd.DataFrame | None:
    """Keep every other field of the answer in ``attrs``: nothing disappears silently."""
    if table is None:
        return None
    extra = {str(k): v for k, v in obj.items() if k not in used}
    if extra:
        table.attrs = {**extra, **table.attrs} if inner_first else {**table.attrs, **extra}
    return table


def _names_like(values: list) -> bool:
    return all(isinstance(v, (str, int)) or (isinstance(v, dict) and "name" in v) for v in values)


def _rows_like(values: Any) -> bool:
    return isinstance(values, (list, tuple)) and (
        not values or isinstance(values[0], (dict, list, tuple))
    )


# --------------------------------------------------------------------------- lists


def _list_table(
    items: Sequence[Any], hints: Hints, path: list[str], name: str = "value"
) -> pd.DataFrame | None:
    names, kinds = hints.row_schema(path) if hints.schema else ([], [])
    if len(items) == 0:
        if names:
            return _typed_empty(names, kinds)
        return pd.DataFrame() if hints.expect_table else None
    first = items[0]
    if isinstance(first, dict):
        if _is_content_block(first):
            return None
        if _is_tree_node(first) and all(_is_tree_node(r) for r in items):
            return _tree_table(items)
        if len(items) == 1 and _is_statement(first):
            return _dict_table(first, hints, path, _MAX_DEPTH)
        return _records_table(items, names, kinds)
    if isinstance(first, (list, tuple)):
        return _rows_table(items, names, kinds, hints.expect_table)
    if not hints.expect_table:
        return None
    try:
        df = pd.DataFrame({name: list(items)})
    except (TypeError, ValueError):
        return None
    infer_columns(df)
    return df


def _is_statement(obj: dict) -> bool:
    """One statement's result wrapped in a list: ``[{"sql": ..., "rows": [...], "count": 3}]``."""
    lists = [k for k, v in obj.items() if isinstance(v, list)]
    return len(lists) == 1 and lists[0] in _ROW_KEYS and _rows_like(obj[lists[0]]) and len(obj) > 1


def _records_table(
    records: Sequence[dict], names: list[str], kinds: list[Kind | None]
) -> pd.DataFrame | None:
    if isinstance(records, tuple):
        records = list(records)
    by_name = dict(zip(names, kinds, strict=False)) if names else {}
    regular = record_columns(records)
    if regular is not None:  # every record has the same keys: built column by column
        keys, columns = regular
        return columns_frame(columns, keys, [by_name.get(str(k)) for k in keys])
    try:
        df = pd.DataFrame.from_records(records)
    except (TypeError, ValueError, AttributeError, KeyError):
        return None
    _type_columns(df, by_name)
    return df


def _rows_table(
    rows: Sequence[Any], names: list[str], kinds: Sequence[Kind | None], expect_table: bool
) -> pd.DataFrame | None:
    """Rows as lists or tuples: one length, named by ``names`` when they fit."""
    if not rows:
        return _typed_empty(names, kinds) if names or expect_table else None
    if isinstance(rows[0], dict):
        try:
            df = pd.DataFrame.from_records(list(rows), columns=names or None)
        except (TypeError, ValueError, AttributeError, KeyError):
            return None
        _apply(df, names, kinds, lambda i: [r.get(names[i]) for r in rows])
        return df
    try:
        widths = set(map(len, rows))
    except TypeError:
        return None
    if len(widths) != 1:
        return None
    (width,) = widths
    if width == 0:
        return None
    if len(names) != width:
        names, kinds = [f"col_{i}" for i in range(width)], kinds if len(kinds) == width else []
    columns = row_columns(rows, width)
    if columns is not None:  # lists and tuples only: built column by column
        return columns_frame(columns, names, kinds)
    try:
        df = pd.DataFrame.from_records(rows if isinstance(rows, list) else list(rows),
                                       columns=names)
    except (TypeError, ValueError):
        return None
    _apply(df, names, kinds, lambda i: [r[i] for r in rows])
    return df


def _apply(df: pd.DataFrame, names: list, kinds: Sequence[Kind | None], raw: Any) -> None:
    if any(kinds):
        apply_kinds(df, kinds, raw)
    infer_columns(df, [k is not None for k in kinds])


def _type_columns(df: pd.DataFrame, by_name: dict[str, Kind | None]) -> None:
    kinds = [by_name.get(str(c)) for c in df.columns]
    _apply(df, list(df.columns), kinds, None)


_EMPTY_DTYPES = {"int": "int64", "float": "float64", "bool": "bool",
                 "datetime": "datetime64[us]", "datetimetz": "datetime64[us, UTC]",
                 "timedelta": "timedelta64[us]"}


def _typed_empty(names: Sequence[str], kinds: Sequence[Kind | None]) -> pd.DataFrame:
    """No rows, but the columns and their declared dtypes."""
    kinds = list(kinds) + [None] * (len(names) - len(kinds))
    return pd.DataFrame(
        {i: pd.Series([], dtype=_EMPTY_DTYPES.get(k or "", object)) for i, k in enumerate(kinds)}
    ).set_axis(list(names), axis=1)


def _columns_rows_table(
    obj: dict, names_key: str, rows_key: str, hints: Hints, path: list[str]
) -> pd.DataFrame | None:
    names, kinds = _field_specs(obj[names_key])
    declared = next((obj[k] for k in _TYPE_KEYS if isinstance(obj.get(k), (list, dict))), None)
    if isinstance(declared, dict):  # {"id": "INTEGER", ...}
        declared = [declared.get(n) for n in names]
    if isinstance(declared, list):
        kinds = [
            type_kind(declared[i]) if i < len(declared) else kinds[i] for i in range(len(names))
        ]
    if not any(kinds) and hints.schema:
        schema_names, schema_kinds = hints.row_schema([*path, rows_key])
        by_name = dict(zip(schema_names, schema_kinds, strict=False))
        kinds = [by_name.get(n) for n in names]
    table = _rows_table(obj[rows_key], names, kinds, True)
    return table


def _field_specs(fields: list) -> tuple[list[str], list[Kind | None]]:
    """Column names and kinds from names, or dicts with ``name`` and a type."""
    names: list[str] = []
    kinds: list[Kind | None] = []
    for col in fields:
        if isinstance(col, dict):
            names.append(str(col.get("name", col.get("title", f"col_{len(names)}"))))
            declared = next(
                (col[k] for k in ("type", "dataType", "data_type", "dataTypeID", "format",
                                  "type_code") if col.get(k) is not None),
                None,
            )
            kinds.append(schema_kind(col) if "format" in col else type_kind(declared))
        else:
            names.append(str(col))
            kinds.append(None)
    return names, kinds


def _values_table(values: list) -> pd.DataFrame | None:
    """A spreadsheet range: the first row is the header; short rows are padded."""
    if len(values) < 1 or not _all_lists(values):
        return None
    header = values[0]
    if not header or not all(isinstance(h, str) and h.strip() for h in header):
        return None
    if len(set(header)) != len(header):
        return None
    width = len(header)
    body = values[1:]
    widths = set(map(len, body))
    if widths and max(widths) > width:
        return None
    if widths - {width}:  # spreadsheets leave out empty cells at the end of a row
        body = [r + [None] * (width - len(r)) if len(r) < width else r for r in body]
    if not body:
        return pd.DataFrame(columns=header)
    # and send empty cells as "": those are missing
    columns = row_columns(body, width) or [[row[i] for row in body] for i in range(width)]
    return columns_frame(columns, header, [], empty_is_null=True)


def _all_lists(values: list) -> bool:
    """``all(isinstance(v, list) for v in values)``, with the loop in C."""
    return all(issubclass(t, list) for t in set(map(type, values)))


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
        df = pd.DataFrame({k: list(v) for k, v in obj.items()})
    except (TypeError, ValueError):
        return None
    infer_columns(df)
    return df


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
