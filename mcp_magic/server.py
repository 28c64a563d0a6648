"""The built-in MCP data server of mcp_magic: SQL over SQLite and files under a root.

Runs as its own process (``python -m mcp_magic.server`` or ``mcp-magic-server``) and so
imports nothing from the rest of ``mcp_magic``. Every tabular tool answers with the
same structured content, which the host turns into a DataFrame::

    {"columns": [...], "types": [...], "rows": [[...], ...], "row_count": N, "truncated": false}

``query_db`` is read-only unless the server is started with ``--allow-writes``. That is
enforced three times over: the database is opened with ``mode=ro``, ``PRAGMA query_only``
is on, and an authorizer denies every action that is not a read. ``ATTACH`` (and with it
``VACUUM INTO``) is refused even with writes allowed: it would reach files outside the
database. File tools are confined to ``--root``.
"""

import argparse
import base64
import csv
import datetime as dt
import importlib.metadata
import logging
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, TypedDict

import anyio
import anyio.to_thread
import pydantic_core
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, SkipValidation, WithJsonSchema

logger = logging.getLogger("mcp_magic.server")

DEFAULT_DB = Path(__file__).parent / "data" / "sample.db"
DEFAULT_LIMIT = 100_000
DEFAULT_TIMEOUT = 120.0
PREVIEW_ROWS = 20
TEXT_LIMIT = 64 * 1024  # larger tables get a summary as text content (the data stays structured)
WRITES_HINT = "start the server with --allow-writes to permit writes"


_ROWS_SCHEMA = {"type": "array", "title": "Rows",
                "description": "The rows, each a list of cell values in column order."}


class Table(TypedDict):
    """The table shape every tabular tool returns (the host converts it to a DataFrame)."""

    columns: Annotated[list[str], Field(description="Column names, in order.")]
    types: Annotated[
        list[str],
        Field(description="One type per column: INTEGER, REAL, TEXT, BLOB (base64 text), "
                          "DATE, TIMESTAMP (ISO 8601 text) or NULL (no non-null value)."),
    ]
    # No per-row schema and no server-side validation: clients validate structured content
    # against the output schema, and checking 100,000 rows cell by cell takes seconds.
    rows: Annotated[list[list[Any]], SkipValidation(), WithJsonSchema(_ROWS_SCHEMA)]
    row_count: Annotated[int, Field(description="Number of rows returned.")]
    truncated: Annotated[bool, Field(description="True when more rows existed than the limit.")]


class TableDescription(Table):
    """A table's columns (one row each) plus facts about the table itself."""

    table: Annotated[str, Field(description="The table or view described.")]
    kind: Annotated[str, Field(description="'table' or 'view'.")]
    table_rows: Annotated[int, Field(description="Number of rows in the table or view.")]


class ToolFailure(Exception):
    """An anticipated failure: its message goes to the client as an ``isError`` result."""


@dataclass(frozen=True)
class Settings:
    db: Path
    root: Path
    allow_writes: bool = False
    timeout: float = DEFAULT_TIMEOUT


def make_table(columns: Sequence[str], types: Sequence[str], rows: list[Any],
               truncated: bool = False) -> Table:
    return Table(columns=list(columns), types=list(types), rows=rows, row_count=len(rows),
                 truncated=truncated)


# --------------------------------------------------------------------------- SQLite access

# Authorizer action codes from sqlite3.h (spelled out: not every Python exports them all).
_ACTION_NAMES = {
    1: "CREATE INDEX", 2: "CREATE TABLE", 3: "CREATE TEMP INDEX", 4: "CREATE TEMP TABLE",
    5: "CREATE TEMP TRIGGER", 6: "CREATE TEMP VIEW", 7: "CREATE TRIGGER", 8: "CREATE VIEW",
    9: "DELETE", 10: "DROP INDEX", 11: "DROP TABLE", 12: "DROP TEMP INDEX",
    13: "DROP TEMP TABLE", 14: "DROP TEMP TRIGGER", 15: "DROP TEMP VIEW", 16: "DROP TRIGGER",
    17: "DROP VIEW", 18: "INSERT", 23: "UPDATE", 26: "ALTER TABLE", 27: "REINDEX",
    28: "ANALYZE", 29: "CREATE VIRTUAL TABLE", 30: "DROP VIRTUAL TABLE",
}
_PRAGMA, _READ, _SELECT, _TRANSACTION, _UPDATE = 19, 20, 21, 22, 23
_ATTACH, _DETACH, _FUNCTION, _SAVEPOINT, _RECURSIVE = 24, 25, 31, 32, 33
_OK, _DENY, _IGNORE = 0, 1, 2
_SCHEMA_TABLES = {"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"}
# Pragmas that take an argument and only report something.
_QUERY_PRAGMAS = {
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
}
# Pragmas that change the database even without an argument.
_ACTING_PRAGMAS = {"optimize", "wal_checkpoint", "incremental_vacuum"}
# What CREATE/DROP act on, for naming a refused statement.
_OBJECTS = {"TABLE", "VIEW", "INDEX", "TRIGGER"}


class Guard:
    """sqlite3 authorizer: allows reads (or everything but ATTACH) and remembers why not.

    It also records which tables and views a statement reads, so declared column types
    (DATE, TIMESTAMP, ...) can be reported for the result.
    """

    def __init__(self, allow_writes: bool) -> None:
        self.allow_writes = allow_writes
        self.denied: list[str | None] = []  # what was refused, in order; None: schema table
        self.sources: set[str] = set()

    def __call__(self, action: int, arg1: str | None, arg2: str | None,
                 db: str | None, origin: str | None) -> int:
        if action == _READ:
            if db == "main":
                self.sources.add(arg1 or "")
                if origin:
                    self.sources.add(origin)
            return _OK
        if action in (_SELECT, _FUNCTION, _RECURSIVE):
            return _OK
        if action in (_ATTACH, _DETACH):
            if action == _ATTACH and arg1 == "" and self.allow_writes:
                return _OK  # plain VACUUM attaches a temporary database
            what = "VACUUM" if action == _ATTACH and arg1 == "" else (
                "ATTACH" if action == _ATTACH else "DETACH")
            return self._deny(what)
        if self.allow_writes:
            return _OK
        if action == _PRAGMA:
            return self._pragma(arg1 or "", arg2)
        if action == _UPDATE and arg1 in _SCHEMA_TABLES:
            # SQLite "updates" the schema table while declaring eponymous virtual tables
            # such as pragma_table_info(); ignoring the columns keeps those usable.
            return _IGNORE
        if action == _TRANSACTION:
            return self._deny(arg1 or "BEGIN")
        if action == _SAVEPOINT:
            return self._deny("SAVEPOINT")
        # DROP/CREATE first write to sqlite_master; the message then names the statement.
        what = _ACTION_NAMES.get(action, f"action {action}")
        return self._deny(None if arg1 in _SCHEMA_TABLES else what)

    def _pragma(self, name: str, value: str | None) -> int:
        name = name.lower()
        if name in _ACTING_PRAGMAS:
            return self._deny(f"PRAGMA {name}")
        if value is None or name in _QUERY_PRAGMAS:
            return _OK
        return self._deny(f"PRAGMA {name}={value}")

    def _deny(self, what: str | None) -> int:
        self.denied.append(what)
        return _DENY

    def explain(self, sql: str) -> str | None:
        """The message for the first denied action, if any."""
        if not self.denied:
            return None
        what = self.denied[0] or statement_kind(sql)
        if what in ("ATTACH", "DETACH"):
            return (f"query_db refuses {what}: only the server's own database can be used "
                    "(this includes VACUUM INTO)")
        return f"query_db is read-only: {what} is not allowed ({WRITES_HINT})"


def statement_kind(sql: str) -> str:
    """'DROP TABLE', 'CREATE INDEX', 'INSERT', ... from the statement's first words."""
    code = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S)
    words = [w.upper() for w in re.findall(r"[A-Za-z_]+", code)[:6]]
    if not words:
        return "this statement"
    if words[0] in ("CREATE", "DROP"):
        end = next((i for i, word in enumerate(words) if word in _OBJECTS), 0)
        return " ".join(words[:end + 1])  # CREATE TEMP VIEW, CREATE UNIQUE INDEX, ...
    if words[0] == "ALTER":
        return "ALTER TABLE"
    return words[0]


def connect(settings: Settings, guard: Guard | None = None,
            cancel: threading.Event | None = None) -> sqlite3.Connection:
    """Open the database: read-only three ways unless writes are allowed."""
    mode = "rwc" if settings.allow_writes else "ro"
    uri = f"{settings.db.resolve().as_uri()}?mode={mode}"
    con = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        if not settings.allow_writes:
            con.execute("PRAGMA query_only = ON")
        con.set_authorizer(guard or Guard(settings.allow_writes))
        deadline = time.monotonic() + settings.timeout

        def stop() -> bool:
            return time.monotonic() > deadline or (cancel is not None and cancel.is_set())

        con.set_progress_handler(stop, 20_000)
    except BaseException:
        con.close()
        raise
    return con


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_VALUE_TYPES = {int: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB"}


def infer_type(values: Iterable[Any]) -> str:
    """SQL type of a column from its Python values; NULL when none is non-null."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds:
        return "NULL"
    if len(kinds) == 1:
        return _VALUE_TYPES.get(kinds.pop(), "TEXT")
    if kinds <= {int, float}:
        return "REAL"
    return "TEXT"


def canonical_type(declared: str | None) -> str | None:
    """Map a declared column type to INTEGER/REAL/TEXT/BLOB/DATE/TIMESTAMP (None if unknown)."""
    decl = (declared or "").upper()
    if not decl:
        return None
    if "INT" in decl or "BOOL" in decl:
        return "INTEGER"
    if "DATETIME" in decl or "TIMESTAMP" in decl:
        return "TIMESTAMP"
    if "DATE" in decl:
        return "DATE"
    if any(word in decl for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in decl:
        return "BLOB"
    if any(word in decl for word in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
        return "REAL"
    return None


def declared_types(con: sqlite3.Connection, sources: Iterable[str]) -> dict[str, str]:
    """Column name -> canonical declared type over the tables/views a query read.

    Names that different sources declare differently are left out.
    """
    found: dict[str, str | None] = {}
    for source in sorted(s for s in sources if s and not s.startswith(("sqlite_", "pragma_"))):
        for name, decl in con.execute("SELECT name, type FROM pragma_table_info(?)", (source,)):
            kind = canonical_type(decl)
            if kind is None:
                continue
            found[name] = kind if found.get(name, kind) == kind else None
    return {name: kind for name, kind in found.items() if kind}


def column_types(names: Sequence[str], rows: Sequence[Sequence[Any]],
                 declared: dict[str, str]) -> list[str]:
    """Types from the values, refined by declared DATE/TIMESTAMP types (and for all-null)."""
    columns: Iterable[Sequence[Any]] = zip(*rows, strict=True) if rows else [()] * len(names)
    types = []
    for name, values in zip(names, columns, strict=True):
        inferred = infer_type(values)
        decl = declared.get(name)
        if decl and (inferred == "NULL" or inferred == "TEXT" and decl in ("DATE", "TIMESTAMP")):
            inferred = decl
        types.append(inferred)
    return types


def encode_blobs(rows: list[Any], types: list[str]) -> list[Any]:
    """BLOB cells become base64 text so the result is JSON."""
    blob_columns = [i for i, kind in enumerate(types) if kind in ("BLOB", "TEXT")]
    if not any(isinstance(row[i], bytes) for row in rows for i in blob_columns):
        return rows
    encoded = []
    for row in rows:
        row = list(row)
        for i in blob_columns:
            if isinstance(row[i], bytes):
                row[i] = base64.b64encode(row[i]).decode("ascii")
        encoded.append(row)
    return encoded


def sql_failure(exc: Exception, sql: str, guard: Guard, settings: Settings) -> ToolFailure:
    """Turn an sqlite3 error into a one-line message a model (and a person) can act on."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    reason = guard.explain(sql)
    if reason:
        return ToolFailure(reason)
    if "one statement at a time" in message:
        return ToolFailure("query_db runs exactly one SQL statement per call; stacked statements "
                           "(several separated by ';') are refused")
    if "readonly database" in message or "query_only" in message:
        return ToolFailure(f"query_db is read-only: this statement would write ({WRITES_HINT})")
    if message == "interrupted":
        return ToolFailure(f"query_db stopped the query after {settings.timeout:g} s "
                           "(or it was cancelled)")
    if message.startswith("no such table"):
        message += " (list_tables shows the tables and views)"
    elif message.startswith("no such column"):
        message += " (describe_table shows a table's columns)"
    return ToolFailure(f"SQL error: {message}")


def run_query(settings: Settings, sql: str, limit: int,
              cancel: threading.Event | None = None) -> Table:
    statement = sql.strip()
    if not statement:
        raise ToolFailure("query_db needs an SQL statement")
    guard = Guard(settings.allow_writes)
    con = connect(settings, guard, cancel)
    try:
        try:
            cursor = con.execute(statement)
            if cursor.description is None:
                affected = max(cursor.rowcount, 0)
                return make_table(["rows_affected"], ["INTEGER"], [[affected]])
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchmany(limit + 1)
        except (sqlite3.Error, sqlite3.Warning) as exc:  # Python < 3.11 warns on ';' stacks
            raise sql_failure(exc, statement, guard, settings) from None
        truncated = len(rows) > limit
        if truncated:
            del rows[limit:]
        cursor.close()
        declared = declared_types(con, set(guard.sources))
        types = column_types(names, rows, declared)
        return make_table(names, types, encode_blobs(rows, types), truncated)
    finally:
        con.close()


def table_kinds(con: sqlite3.Connection) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"
        " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name"
    ).fetchall()


def list_tables_table(settings: Settings) -> Table:
    con = connect(settings)
    try:
        rows = []
        for name, kind in table_kinds(con):
            n_columns = con.execute("SELECT count(*) FROM pragma_table_info(?)", (name,))
            n_rows = None
            if kind == "table":  # counting a view would run its query
                n_rows = con.execute(f"SELECT count(*) FROM {quote_identifier(name)}").fetchone()[0]
            rows.append([name, kind, n_columns.fetchone()[0], n_rows])
    except sqlite3.Error as exc:
        raise ToolFailure(f"SQL error: {exc}") from None
    finally:
        con.close()
    return make_table(["name", "type", "columns", "rows"], ["TEXT", "TEXT", "INTEGER", "INTEGER"],
                      rows)


def describe_table_table(settings: Settings, table: str) -> TableDescription:
    con = connect(settings)
    try:
        kinds = {name.lower(): (name, kind) for name, kind in table_kinds(con)}
        if table.lower() not in kinds:
            known = ", ".join(name for name, _ in kinds.values()) or "none"
            raise ToolFailure(f"no table or view named {table!r} (known: {known})")
        name, kind = kinds[table.lower()]
        references = {
            src: f"{target}.{column}" if column else target
            for _, _, target, src, column, *_ in con.execute(
                "SELECT * FROM pragma_foreign_key_list(?)", (name,))
        }
        rows = [
            [col, decl or None, notnull, default, pk, references.get(col)]
            for _, col, decl, notnull, default, pk in con.execute(
                "SELECT * FROM pragma_table_info(?)", (name,))
        ]
        count = con.execute(f"SELECT count(*) FROM {quote_identifier(name)}").fetchone()[0]
    except sqlite3.Error as exc:
        raise ToolFailure(f"SQL error: {exc}") from None
    finally:
        con.close()
    table_part = make_table(
        ["name", "type", "notnull", "default", "pk", "references"],
        ["TEXT", "TEXT", "INTEGER", "TEXT", "INTEGER", "TEXT"], rows)
    return {**table_part, "table": name, "kind": kind, "table_rows": count}


def schema_sql(settings: Settings) -> str:
    con = connect(settings)
    try:
        statements = [sql for (sql,) in con.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%'"
            " ESCAPE '\\' ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1"
            " WHEN 'view' THEN 2 ELSE 3 END, rowid")]
    finally:
        con.close()
    return "".join(f"{sql};\n\n" for sql in statements)


# --------------------------------------------------------------------------- files under the root


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class Jail:
    """Resolves user paths inside a root directory; refuses anything that leaves it."""

    def __init__(self, root: Path) -> None:
        self.given = Path(os.path.abspath(root))
        self.root = root.resolve()

    def resolve(self, path: str) -> Path:
        """The path to use for `path` (lexically normalized, under the root)."""
        if "\x00" in path:
            raise ToolFailure("path contains a NUL byte")
        raw = Path(path or ".")
        if raw.is_absolute():
            absolute = Path(os.path.normpath(raw))
            for base in (self.root, self.given):
                if _within(absolute, base):
                    candidate = self.root / absolute.relative_to(base)
                    break
            else:
                raise ToolFailure(f"{path!r} is outside the root directory {self.root}; "
                                  "use a path relative to the root")
        else:
            candidate = Path(os.path.normpath(self.root / raw))
            if not _within(candidate, self.root):
                raise ToolFailure(f"{path!r} escapes the root directory: '..' may not go above "
                                  f"{self.root}")
        self._check_symlinks(path, candidate)
        if not os.path.lexists(candidate):
            raise ToolFailure(f"{path!r} does not exist under the root directory {self.root}")
        return candidate

    def _check_symlinks(self, path: str, candidate: Path) -> None:
        current = self.root
        for part in candidate.relative_to(self.root).parts:
            current = current / part
            if current.is_symlink() and not _within(current.resolve(), self.root):
                link = self.name(current)
                raise ToolFailure(f"{path!r} goes through the symlink {link!r}, which points "
                                  "outside the root directory")

    def name(self, path: Path) -> str:
        """The name of `path` relative to the root, with POSIX separators."""
        return path.relative_to(self.root).as_posix()


def _entry_row(jail: Jail, path: Path) -> list[Any]:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        kind = "symlink"
    elif stat.S_ISDIR(st.st_mode):
        kind = "dir"
    else:
        kind = "file" if stat.S_ISREG(st.st_mode) else "other"
    size = st.st_size if kind != "dir" else None
    modified = dt.datetime.fromtimestamp(st.st_mtime, tz=dt.timezone.utc)
    return [jail.name(path), kind, size, modified.isoformat(timespec="seconds")]


def _walk(top: Path, recursive: bool) -> Iterable[Path]:
    """Entries under `top`, sorted per directory; symlinked directories are not entered."""
    if not recursive:
        with os.scandir(top) as entries:
            yield from sorted((Path(e.path) for e in entries), key=lambda p: p.name)
        return
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        base = Path(dirpath)
        yield from (base / name for name in sorted(dirnames + filenames))


def list_files_table(jail: Jail, path: str, pattern: str | None, recursive: bool,
                     limit: int) -> Table:
    target = jail.resolve(path)
    rows: list[list[Any]] = []
    truncated = False
    try:
        entries = _walk(target, recursive) if target.is_dir() else [target]
        for entry in entries:
            name = jail.name(entry)
            if pattern and not PurePosixPath(name).match(pattern):
                continue
            if len(rows) == limit:
                truncated = True
                break
            rows.append(_entry_row(jail, entry))
    except OSError as exc:
        raise ToolFailure(f"cannot list {path!r}: {exc.strerror or exc}") from None
    rows.sort(key=lambda row: row[0])
    return make_table(["name", "type", "size", "modified"],
                      ["TEXT", "TEXT", "INTEGER", "TIMESTAMP"], rows, truncated)


_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_REAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def _parse_column(values: list[str]) -> tuple[str, list[Any]]:
    """Convert one CSV column: INTEGER if all ints, REAL if all numbers, else TEXT.

    Empty cells are null; no NaN/inf, so the table stays valid JSON.
    """
    distinct = {v for v in values if v != ""}
    if not distinct:
        return "NULL", [None] * len(values)
    for kind, pattern, convert in (("INTEGER", _INTEGER, int), ("REAL", _REAL, float)):
        if all(pattern.fullmatch(v) for v in distinct):
            converted: dict[str, Any] = {v: convert(v) for v in distinct}
            converted[""] = None
            return kind, [converted[v] for v in values]
    return "TEXT", [v if v != "" else None for v in values]


def _unique_names(header: list[str]) -> list[str]:
    names: list[str] = []
    for i, raw in enumerate(header):
        name = raw.strip() or f"column_{i + 1}"
        base, n = name, 1
        while name in names:
            name, n = f"{base}.{n}", n + 1
        names.append(name)
    return names


def _dialect(sample: str, suffix: str) -> type[csv.Dialect] | csv.Dialect:
    if suffix in (".tsv", ".tab"):
        return csv.excel_tab
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def read_csv_table(jail: Jail, path: str, limit: int) -> Table:
    target = jail.resolve(path)
    if target.is_dir():
        raise ToolFailure(f"{path!r} is a directory; list_files shows what it contains")
    try:
        with open(target, newline="", encoding="utf-8-sig", errors="replace") as f:
            dialect = _dialect(f.read(64 * 1024), target.suffix.lower())
            f.seek(0)
            reader = csv.reader(f, dialect)
            header = next(reader, [])
            raw_rows = []
            for record in reader:
                if not record:
                    continue
                raw_rows.append(record)
                if len(raw_rows) > limit:
                    break
    except (OSError, csv.Error) as exc:
        raise ToolFailure(f"cannot read {path!r} as CSV: {exc}") from None
    truncated = len(raw_rows) > limit
    del raw_rows[limit:]
    names = _unique_names(header)
    width = len(names)
    padded = [(r + [""] * width)[:width] for r in raw_rows]
    columns = list(zip(*padded, strict=True)) if padded else [()] * width
    types, converted = [], []
    for values in columns:
        kind, cells = _parse_column(list(values))
        types.append(kind)
        converted.append(cells)
    rows = [list(row) for row in zip(*converted, strict=True)] if padded else []
    return make_table(names, types, rows, truncated)


# --------------------------------------------------------------------------- the MCP server


def table_text(table: Table | TableDescription) -> str:
    """The table as JSON text, or for a large one a summary with the first rows."""
    if table["row_count"] * len(table["columns"]) <= TEXT_LIMIT:  # else surely too long
        text = pydantic_core.to_json(table).decode()
        if len(text) <= TEXT_LIMIT:
            return text
    preview = pydantic_core.to_json(table["rows"][:PREVIEW_ROWS]).decode()
    columns = ", ".join(f"{name} {kind}"
                        for name, kind in zip(table["columns"], table["types"], strict=True))
    more = " (truncated: more rows exist)" if table["truncated"] else ""
    return (f"{table['row_count']} rows{more}, columns: {columns}. Too large to repeat as text: "
            f"the full table is in the structured content. First {PREVIEW_ROWS} rows: {preview}")


def table_result(table: Table | TableDescription) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=table_text(table))],
                          structured_content=dict(table))


async def call_in_thread(tool: str, work: Callable[[threading.Event], Table]) -> CallToolResult:
    """Run blocking work in a thread; failures become isError results, cancellation stops it."""
    cancel = threading.Event()
    try:
        table = await anyio.to_thread.run_sync(work, cancel, abandon_on_cancel=True)
    except ToolFailure as exc:
        logger.info("%s refused: %s", tool, exc)
        return CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)
    except anyio.get_cancelled_exc_class():
        cancel.set()  # the progress handler interrupts the query
        raise
    return table_result(table)


def describe_database(settings: Settings) -> str:
    try:
        con = connect(settings)
        try:
            kinds = table_kinds(con)
        finally:
            con.close()
    except sqlite3.Error:
        return ""
    tables = ", ".join(name for name, kind in kinds if kind == "table")
    views = ", ".join(name for name, kind in kinds if kind == "view")
    return f"Tables: {tables or 'none'}." + (f" Views: {views}." if views else "")


def instructions(settings: Settings) -> str:
    if settings.db.resolve() == DEFAULT_DB.resolve():
        what = ("a sample sales database (SQLite, 2024-2025: regions, customers, products, "
                "orders, order_items, and a `sales` view with one row per order item and "
                "its amount)")
    else:
        what = f"the SQLite database {settings.db.name}"
    access = "read and write" if settings.allow_writes else "read-only"
    return (
        f"Runs SQL over {what} with query_db ({access}); list_tables and describe_table "
        "show the schema. list_files and read_csv work on files under the server's root "
        "directory. Tabular results come back as {columns, types, rows, row_count, truncated}; "
        "dates are ISO 8601 text."
    )


def package_version() -> str:
    try:
        return importlib.metadata.version("mcp-magic")
    except importlib.metadata.PackageNotFoundError:  # running from a source checkout
        return "0+unknown"


def build_server(settings: Settings) -> MCPServer:
    """The MCPServer with the data tools, a schema resource and a prompt."""
    jail = Jail(settings.root)
    writes = settings.allow_writes
    server = MCPServer(
        name="mcp-magic-data",
        title="mcp_magic data server",
        instructions=instructions(settings),
        version=package_version(),
        log_level="INFO",
    )
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                idempotent_hint=True, open_world_hint=False)
    db_summary = describe_database(settings)

    @server.tool(
        title="Query the SQL database",
        annotations=ToolAnnotations(
            title="Query the SQL database",
            read_only_hint=not writes, destructive_hint=writes,
            idempotent_hint=not writes, open_world_hint=False),
        structured_output=True,
        description=(
            "Run one SQLite SQL statement and return the result as a table "
            "(columns, types, rows, row_count, truncated). "
            + ("Writes are allowed; a statement without result rows returns rows_affected. "
               if writes else
               "The database is read-only: INSERT/UPDATE/DELETE/DDL, ATTACH and PRAGMA writes "
               "are refused. ")
            + "Exactly one statement per call. Dates are ISO 8601 text: compare them with full "
            "'YYYY-MM-DD' literals and use strftime()/substr() to group by month or year. "
            + db_summary
        ),
    )
    async def query_db(
        sql: Annotated[str, Field(description="One SQLite statement, e.g. "
                                              "'select region, sum(amount) as total from sales "
                                              "group by region'.")],
        limit: Annotated[int, Field(ge=0, description="Maximum rows to return; more rows "
                                                      "set truncated=true.")] = DEFAULT_LIMIT,
    ) -> Annotated[CallToolResult, Table]:
        return await call_in_thread(
            "query_db", lambda cancel: run_query(settings, sql, limit, cancel))

    @server.tool(
        title="List database tables",
        annotations=read_only.model_copy(update={"title": "List database tables"}),
        structured_output=True,
        description="List the tables and views of the database with their number of columns "
                    "and (for tables) rows.",
    )
    async def list_tables() -> Annotated[CallToolResult, Table]:
        return await call_in_thread("list_tables", lambda _: list_tables_table(settings))

    @server.tool(
        title="Describe a table",
        annotations=read_only.model_copy(update={"title": "Describe a table"}),
        structured_output=True,
        description="Describe a table or view: one row per column with its declared type, "
                    "notnull, default, primary-key position and foreign-key reference; "
                    "table_rows gives the number of rows.",
    )
    async def describe_table(
        table: Annotated[str, Field(description="Name of a table or view.")],
    ) -> Annotated[CallToolResult, TableDescription]:
        return await call_in_thread(
            "describe_table", lambda _: describe_table_table(settings, table))

    @server.tool(
        title="List files",
        annotations=read_only.model_copy(update={"title": "List files"}),
        structured_output=True,
        description="List files and directories under the server's root directory as a table "
                    "(name relative to the root, type file/dir/symlink, size in bytes, modified "
                    "as ISO 8601 UTC). Paths may not leave the root.",
    )
    async def list_files(
        path: Annotated[str, Field(description="Directory (or file) relative to the root.")] = ".",
        pattern: Annotated[str | None, Field(description="Glob matched against names, "
                                                         "e.g. '*.csv'.")] = None,
        recursive: Annotated[bool, Field(description="Include subdirectories.")] = False,
        limit: Annotated[int, Field(ge=0, description="Maximum entries to return.")] = 10_000,
    ) -> Annotated[CallToolResult, Table]:
        return await call_in_thread(
            "list_files", lambda _: list_files_table(jail, path, pattern, recursive, limit))

    @server.tool(
        title="Read a CSV file",
        annotations=read_only.model_copy(update={"title": "Read a CSV file"}),
        structured_output=True,
        description="Read a CSV (or TSV) file under the root directory as a table; the first "
                    "row is the header, column types are inferred (INTEGER, REAL, TEXT) and "
                    "empty cells are null.",
    )
    async def read_csv(
        path: Annotated[str, Field(description="CSV file relative to the root.")],
        limit: Annotated[int, Field(ge=0, description="Maximum rows to return.")] = DEFAULT_LIMIT,
    ) -> Annotated[CallToolResult, Table]:
        return await call_in_thread("read_csv", lambda _: read_csv_table(jail, path, limit))

    @server.resource("schema://database", name="database schema", mime_type="application/sql",
                     description="The CREATE statements of the database's tables, indexes and "
                                 "views.")
    def database_schema() -> str:
        return schema_sql(settings)

    @server.prompt(title="Explore a table",
                   description="Ask for an exploratory look at one table of the database.")
    def explore_table(table: str) -> str:
        return (
            f"Explore the table `{table}` of the database. Use describe_table to see its "
            "columns, then query_db to look at ten sample rows, the null count and number of "
            "distinct values per column, and the range of numeric and date columns. Say how it "
            "relates to the other tables (foreign keys) and point out anything surprising."
        )

    return server


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mcp-magic-server",
        description="mcp_magic's built-in MCP server: SQL over SQLite and files under a root.")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help="SQLite database (default: the bundled sample sales database)")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="directory list_files and read_csv may see (default: cwd)")
    parser.add_argument("--allow-writes", action="store_true",
                        help="let query_db change the database (read-only by default)")
    parser.add_argument("--transport", choices=["stdio", "http", "sse"], default="stdio",
                        help="stdio (default), streamable HTTP at /mcp, or SSE at /sse")
    parser.add_argument("--host", default="127.0.0.1", help="host for http/sse")
    parser.add_argument("--port", type=int, default=8000, help="port for http/sse")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"stop a query after this many seconds (default {DEFAULT_TIMEOUT:g})")
    args = parser.parse_args(argv)
    if not args.allow_writes and not args.db.is_file():
        parser.error(f"database not found: {args.db}")
    if not args.root.is_dir():
        parser.error(f"root is not a directory: {args.root}")
    return args


class _ArgumentLogWording(logging.Filter):
    """The SDK logs "Tool 'x' rejected arguments: ['sql']" for a missing argument too.

    Its record is written inside the `except` that caught the validation error, so the
    error is at hand: say which arguments were missing and which had a wrong value.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        import sys

        if record.msg != "Tool %r rejected arguments: %r" or not isinstance(record.args, tuple):
            return True
        cause = getattr(sys.exc_info()[1], "__cause__", None)
        errors = getattr(cause, "errors", None)
        if not callable(errors):
            record.msg = "Tool %r: missing or invalid arguments: %s"
            record.args = (record.args[0], ", ".join(map(str, record.args[1])))
            return True
        missing: set[str] = set()
        invalid: set[str] = set()
        for error in errors():
            field = ".".join(str(part) for part in error.get("loc", ()))
            (missing if error.get("type") == "missing" else invalid).add(field)
        parts = [f"missing {', '.join(sorted(missing))}"] if missing else []
        parts += [f"invalid {', '.join(sorted(invalid))}"] if invalid else []
        record.msg = "Tool %r: arguments refused (%s)"
        record.args = (record.args[0], "; ".join(parts) or "invalid")
        return True


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.getLogger("mcp.server.mcpserver.server").addFilter(_ArgumentLogWording())
    settings = Settings(db=args.db, root=args.root, allow_writes=args.allow_writes,
                        timeout=args.timeout)
    server = build_server(settings)
    try:
        if args.transport == "http":
            server.run("streamable-http", host=args.host, port=args.port,
                       streamable_http_path="/mcp")
        elif args.transport == "sse":
            server.run("sse", host=args.host, port=args.port, sse_path="/sse")
        else:
            server.run("stdio")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
