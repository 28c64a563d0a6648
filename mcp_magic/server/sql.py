"""query_db, list_tables, describe_table and the schema resource over SQLite."""

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

import pydantic_core
from mcp.types import CallToolResult, TextContent

from .common import WRITES_HINT, Settings, ToolFailure, shorten
from .deferred import RawJson, defer
from .tables import (
    PREVIEW_ROWS,
    TEXT_LIMIT,
    AnswerBudget,
    Table,
    TableDescription,
    encode_blobs,
    infer_type,
    make_table,
    table_text,
    type_of_kinds,
)

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


class BoundedConnection(sqlite3.Connection):
    """A connection that notes when a value ran into SQLite's length limit.

    Most functions fail with "string or blob too big" there, but printf() and format()
    quietly answer NULL. They are routed through a second, in-memory connection with the
    same limit (SQLite's own implementation, same results), and a NULL from a non-NULL
    format raises instead.
    """

    too_big = False
    formatter: sqlite3.Connection | None = None

    def bound_formatters(self, max_bytes: int) -> None:
        self.formatter = helper = sqlite3.connect(":memory:", check_same_thread=False)
        helper.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_bytes)
        names = ["printf"] + (["format"] if sqlite3.sqlite_version_info >= (3, 38) else [])
        for name in names:
            def call(*args: Any, name: str = name) -> Any:
                marks = ", ".join("?" * len(args))
                value = helper.execute(f"SELECT {name}({marks})", args).fetchone()[0]
                if value is None and args and args[0] is not None:
                    self.too_big = True
                    raise ValueError("string or blob too big")
                return value

            self.create_function(name, -1, call, deterministic=True)

    def close(self) -> None:
        if self.formatter is not None:
            self.formatter.close()
        super().close()


def connect(settings: Settings, guard: Guard | None = None,
            cancel: threading.Event | None = None) -> BoundedConnection:
    """Open the database: read-only three ways unless writes are allowed, bounded in time
    (a progress handler stops work after ``settings.timeout`` or on `cancel`) and in the
    size of any one value (SQLite's length limit)."""
    mode = "rwc" if settings.allow_writes else "ro"
    uri = f"{settings.db.resolve().as_uri()}?mode={mode}"
    con = sqlite3.connect(uri, uri=True, isolation_level=None, factory=BoundedConnection)
    try:
        if not settings.allow_writes:
            con.execute("PRAGMA query_only = ON")
        con.set_authorizer(guard or Guard(settings.allow_writes))
        if hasattr(con, "setlimit"):  # Python >= 3.11; on 3.10 only the answer size is capped
            con.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, settings.max_value_bytes)
            con.bound_formatters(settings.max_value_bytes)
        deadline = time.monotonic() + settings.timeout

        def stop() -> bool:
            return time.monotonic() > deadline or (cancel is not None and cancel.is_set())

        con.set_progress_handler(stop, 20_000)
    except BaseException:
        con.close()
        raise
    return con


def limit_failure(tool: str, message: str, settings: Settings,
                  cancel: threading.Event | None = None) -> ToolFailure | None:
    """The one-line message for an SQLite error that a server limit caused, if it was one."""
    if message == "interrupted":
        if cancel is not None and cancel.is_set():
            return ToolFailure(f"{tool} was cancelled")
        work = "the query" if tool == "query_db" else "its work"
        return ToolFailure(f"{tool} stopped {work} after {settings.timeout:g} s, the server's "
                           "time limit per call (--timeout)")
    if "too big" in message:  # "string or blob too big"
        return ToolFailure(f"{tool} stopped: a value would be larger than "
                           f"{settings.max_value_bytes:,} bytes, the server's limit per value "
                           "(--max-value-bytes)")
    return None


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'



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


def sql_failure(exc: Exception, sql: str, guard: Guard, settings: Settings,
                cancel: threading.Event | None = None) -> ToolFailure:
    """Turn an sqlite3 error into a one-line message a model (and a person) can act on."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    reason = guard.explain(sql)
    if reason:
        return ToolFailure(reason)
    limited = limit_failure("query_db", message, settings, cancel)
    if limited:
        return limited
    if "one statement at a time" in message:
        return ToolFailure("query_db runs exactly one SQL statement per call; stacked statements "
                           "(several separated by ';') are refused")
    if "readonly database" in message or "query_only" in message:
        return ToolFailure(f"query_db is read-only: this statement would write ({WRITES_HINT})")
    if message.startswith("no such table"):
        message += " (list_tables shows the tables and views)"
    elif message.startswith("no such column"):
        message += " (describe_table shows a table's columns)"
    return ToolFailure(f"SQL error: {message}")


def fetch_rows(cursor: sqlite3.Cursor, limit: int,
               max_bytes: int) -> tuple[list[Any], bool, str | None]:
    """Up to `limit` rows and `max_bytes` (as JSON, roughly); whether more existed; why cut.

    Row by row: a chunk of rows could hold many values of the maximum size each.
    """
    budget = AnswerBudget(max_bytes)
    rows: list[Any] = []
    for row in cursor:
        if len(rows) == limit:
            return rows, True, None
        if not budget.admits(row):
            return rows, True, budget.note(len(rows))
        rows.append(row)
    return rows, False, None


JSON_BATCH = 2048  # rows serialized at a time by `fetch_json`


class JsonRows:
    """Rows fetched for a deferred JSON answer: held as Python rows while the table is
    small enough to be repeated as text (the answer is then built as always), else
    serialized batch by batch as they come (`pieces`), with the Python types seen per
    column (for the column types) and the first rows (for the text preview)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.rows: list[Any] = []  # not yet serialized
        self.pieces: list[bytes] | None = None  # the serialized batches, once big
        self.preview: list[Any] = []
        self.kinds: list[set[type]] = [set() for _ in range(width)]
        self.count = 0

    def add(self, row: Any) -> None:
        self.rows.append(row)
        self.count += 1
        if self.pieces is None:
            if self.count * max(self.width, 1) > TEXT_LIMIT:  # never repeated as text
                self.pieces = []
                self.preview = encode_blobs([list(r) for r in self.rows[:PREVIEW_ROWS]],
                                            ["BLOB"] * self.width)
                self.flush()
        elif len(self.rows) >= JSON_BATCH:
            self.flush()

    def flush(self) -> None:
        """Serialize the held rows (bytes as base64: they are in BLOB or TEXT columns)."""
        rows = self.rows
        if self.pieces is None or not rows:
            return
        for i, kinds in enumerate(self.kinds):
            kinds.update(map(type, map(itemgetter(i), rows)))
        if any(bytes in kinds for kinds in self.kinds):
            rows = encode_blobs(rows, ["BLOB"] * self.width)
        self.pieces.append(pydantic_core.to_json(rows)[1:-1])
        self.rows = []


def fetch_json(cursor: sqlite3.Cursor, limit: int, max_bytes: int,
               width: int) -> tuple[JsonRows, bool, str | None]:
    """`fetch_rows` for a deferred JSON answer: the same rows, the same cut."""
    budget = AnswerBudget(max_bytes)
    fetched = JsonRows(width)
    for row in cursor:
        if fetched.count == limit:
            return fetched, True, None
        if not budget.admits(row):
            return fetched, True, budget.note(fetched.count)
        fetched.add(row)
    return fetched, False, None


def skip_rows(cursor: sqlite3.Cursor, offset: int) -> None:
    """Step past the first `offset` rows (paging works for any statement this way)."""
    while offset > 0:
        skipped = len(cursor.fetchmany(min(offset, 65_536)))
        if not skipped:
            return
        offset -= skipped


def page_note(kept: int, limit: int, offset: int, cut_by_size: str | None) -> str:
    """One line saying the rows were cut and how to fetch the rest."""
    next_page = f"offset={offset + kept}"
    if cut_by_size:
        return f"{cut_by_size}; {next_page} fetches the next page"
    return (f"{kept:,} rows of more (limit={limit:,}); {next_page} fetches the next page, "
            "a larger limit= more at once")


def run_query(settings: Settings, sql: str, limit: int,
              cancel: threading.Event | None = None, arrow: bool = False, offset: int = 0,
              progress: Callable[[int, int | None], None] | None = None,
              deferred: bool = False) -> Table | CallToolResult:
    """The statement's rows as a table, after skipping `offset`; with `arrow`, the Arrow
    answer (server/arrow.py), built column by column from the cursor in one pass.
    `progress` hears the number of rows fetched so far (Arrow answers). With `deferred`
    (this server's writers send the answer) a big answer's rows or Arrow stream stay bytes
    until they are written (server/deferred.py)."""
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
            skip_rows(cursor, offset)
            if arrow:
                return _arrow_query(con, cursor, guard, names, limit, offset, settings, cancel,
                                    progress, deferred)
            if deferred:
                fetched, truncated, note = fetch_json(cursor, limit, settings.max_answer_bytes,
                                                      len(names))
                if fetched.pieces is not None:
                    cursor.close()
                    return _json_answer(con, guard, names, fetched, limit, offset, truncated,
                                        note)
                rows = fetched.rows
            else:
                rows, truncated, note = fetch_rows(cursor, limit, settings.max_answer_bytes)
        except (sqlite3.Error, sqlite3.Warning) as exc:  # Python < 3.11 warns on ';' stacks
            cause: Exception = sqlite3.DataError("string or blob too big") if con.too_big else exc
            raise sql_failure(cause, statement, guard, settings, cancel) from None
        cursor.close()
        declared = declared_types(con, set(guard.sources))
        types = column_types(names, rows, declared)
        if truncated:
            note = page_note(len(rows), limit, offset, note)
        return make_table(names, types, encode_blobs(rows, types), truncated, note)
    finally:
        con.close()


def _json_answer(con: BoundedConnection, guard: Guard, names: list[str], fetched: JsonRows,
                 limit: int, offset: int, truncated: bool, note: str | None) -> CallToolResult:
    """The answer `table_result` gives for these rows, with the rows deferred: serialized
    while they were fetched, written by this server's writers."""
    fetched.flush()
    declared = declared_types(con, set(guard.sources))
    types = []
    for name, kinds in zip(names, fetched.kinds, strict=True):
        kind = type_of_kinds(kinds)
        decl = declared.get(name)
        if decl and (kind == "NULL" or kind == "TEXT" and decl in ("DATE", "TIMESTAMP")):
            kind = decl
        types.append(kind)
    if truncated:
        note = page_note(fetched.count, limit, offset, note)
    table = make_table(names, types, fetched.preview, truncated, note)
    table["row_count"] = fetched.count
    text = table_text(table)
    pieces, fetched.pieces = fetched.pieces, None
    table["rows"] = defer(RawJson(pieces or []))  # type: ignore[typeddict-item]
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=dict(table))


def _arrow_query(con: BoundedConnection, cursor: sqlite3.Cursor, guard: Guard,
                 names: list[str], limit: int, offset: int, settings: Settings,
                 cancel: threading.Event | None,
                 progress: Callable[[int, int | None], None] | None,
                 deferred: bool = False) -> CallToolResult:
    from .arrow import arrow_answer, encode_ipc, fetch_columns

    declared = declared_types(con, set(guard.sources))  # the statement is prepared by now
    builder, truncated, note = fetch_columns(cursor, names, limit, settings.max_answer_bytes,
                                             cancel, declared, progress)
    cursor.close()
    if truncated:
        note = page_note(builder.rows, limit, offset, note)
    ipc, types = builder.finish_ipc()  # written chunk by chunk while fetching
    types = [declared.get(name, kind) if kind == "NULL" else kind
             for name, kind in zip(names, types, strict=True)]
    encoded = encode_ipc(ipc, names, builder.rows, deferred)  # frees the stream as it encodes
    del ipc
    return arrow_answer("query_db", encoded, types, builder.preview, truncated, note)


def table_kinds(con: sqlite3.Connection) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"
        " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name"
    ).fetchall()


def schema_failure(tool: str, exc: sqlite3.Error, settings: Settings,
                   cancel: threading.Event | None) -> ToolFailure:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return limit_failure(tool, message, settings, cancel) or ToolFailure(f"SQL error: {message}")


def list_tables_table(settings: Settings, cancel: threading.Event | None = None) -> Table:
    con = connect(settings, cancel=cancel)
    try:
        rows = []
        for name, kind in table_kinds(con):
            n_columns = con.execute("SELECT count(*) FROM pragma_table_info(?)", (name,))
            n_rows = None
            if kind == "table":  # counting a view would run its query
                n_rows = con.execute(f"SELECT count(*) FROM {quote_identifier(name)}").fetchone()[0]
            rows.append([name, kind, n_columns.fetchone()[0], n_rows])
    except sqlite3.Error as exc:
        raise schema_failure("list_tables", exc, settings, cancel) from None
    finally:
        con.close()
    return make_table(["name", "type", "columns", "rows"], ["TEXT", "TEXT", "INTEGER", "INTEGER"],
                      rows)


def describe_table_table(settings: Settings, table: str,
                         cancel: threading.Event | None = None) -> TableDescription:
    con = connect(settings, cancel=cancel)
    try:
        kinds = {name.lower(): (name, kind) for name, kind in table_kinds(con)}
        if table.lower() not in kinds:
            known = ", ".join(name for name, _ in kinds.values()) or "none"
            raise ToolFailure(f"no table or view named {shorten(table)} (known: {known})")
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
        raise schema_failure("describe_table", exc, settings, cancel) from None
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


