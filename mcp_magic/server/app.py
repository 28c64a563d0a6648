"""The MCPServer with the data tools, a schema resource and a prompt."""

import contextlib
import importlib.metadata
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Annotated

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from .arrow import ArrowTables, wants_arrow
from .common import DEFAULT_DB, DEFAULT_LIMIT, Deadline, Settings, ToolFailure
from .deferred import WRITER_EXPANDS
from .files import Jail, list_files_table, read_csv_table
from .sql import (
    connect,
    describe_table_table,
    list_tables_table,
    run_query,
    schema_sql,
    table_kinds,
)
from .tables import Table, TableDescription, table_result

logger = logging.getLogger("mcp_magic.server")

GRACE = 5.0  # seconds past the time limit before a call that ignores it is abandoned


def error_result(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


async def call_in_thread(tool: str, settings: Settings,
                         work: Callable[[Deadline], Table | CallToolResult],
                         grace: float = GRACE, arrow: bool = False,
                         deferred: bool = False) -> CallToolResult:
    """Run blocking work in a thread, within the server's time limit per call.

    Anticipated failures become one-line isError results, and so does anything else (its
    traceback goes to the server's log). The work watches its `Deadline`; should it not
    return a little after the limit all the same, the call answers anyway and the thread
    is abandoned with its cancel flag set. A client's cancellation sets that flag too.
    With `arrow` a table becomes the Arrow answer (server/arrow.py); work may also build
    its result itself. With `deferred` its big parts may stay bytes until this server's
    writers send them (server/deferred.py).
    """
    cancel = threading.Event()
    deadline = Deadline(tool, settings.timeout, cancel)

    def run() -> CallToolResult:
        answer = work(deadline)
        if isinstance(answer, CallToolResult):
            return answer
        if arrow:
            from .arrow import arrow_table_result

            return arrow_table_result(tool, answer, deferred)
        return table_result(answer)

    try:
        with anyio.move_on_after(settings.timeout + grace) as scope:
            return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    except ToolFailure as exc:
        logger.info("%s refused: %s", tool, exc)
        return error_result(str(exc))
    except anyio.get_cancelled_exc_class():
        cancel.set()  # the progress handler interrupts the query, loops check the flag
        raise
    except Exception as exc:
        logger.exception("%s failed", tool)
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        return error_result(f"{tool} failed: {type(exc).__name__}" + (f": {first}" if first
                                                                      else ""))
    finally:
        cancel.set()  # whatever happened, the thread has nothing left to do
    assert scope.cancelled_caught
    logger.warning("%s did not stop at its time limit; abandoned", tool)
    return error_result(deadline.failure().args[0])


def progress_reporter(ctx: Context | None,
                      limit: int) -> Callable[[int, int | None], None] | None:
    """Rows fetched so far as progress notifications, from the worker thread (only when the
    client asked for progress); out of `limit` until the total is known."""
    if ctx is None:
        return None
    try:
        meta = ctx.request_context.meta or {}
    except (AttributeError, ValueError, LookupError):
        return None
    if meta.get("progress_token", meta.get("progressToken")) is None:
        return None

    def report(rows: int, total: int | None) -> None:
        with contextlib.suppress(Exception):  # a closed stream must not fail the query
            anyio.from_thread.run(ctx.report_progress, rows, total if total is not None
                                  else limit, f"{rows:,} rows")

    return report


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
        "directory. Tabular results come back as {columns, types, rows, row_count, truncated} "
        "(plus a note when a limit cut the rows: query_db pages with offset=); "
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
        extensions=[ArrowTables()],
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
        offset: Annotated[int, Field(ge=0, description="Rows to skip first, for paging: "
                                                       "offset=100000 with limit=100000 is the "
                                                       "second page.")] = 0,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, Table]:
        arrow = wants_arrow(ctx)
        progress = progress_reporter(ctx, limit)
        deferred = WRITER_EXPANDS.get()
        return await call_in_thread(
            "query_db", settings,
            lambda d: run_query(settings, sql, limit, d.cancel, arrow, offset, progress,
                                deferred))

    @server.tool(
        title="List database tables",
        annotations=read_only.model_copy(update={"title": "List database tables"}),
        structured_output=True,
        description="List the tables and views of the database with their number of columns "
                    "and (for tables) rows.",
    )
    async def list_tables() -> Annotated[CallToolResult, Table]:
        return await call_in_thread(
            "list_tables", settings, lambda d: list_tables_table(settings, d.cancel))

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
            "describe_table", settings, lambda d: describe_table_table(settings, table, d.cancel))

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
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, Table]:
        return await call_in_thread(
            "list_files", settings,
            lambda d: list_files_table(jail, path, pattern, recursive, limit, d,
                                       settings.max_answer_bytes), arrow=wants_arrow(ctx),
            deferred=WRITER_EXPANDS.get())

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
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, Table]:
        return await call_in_thread(
            "read_csv", settings,
            lambda d: read_csv_table(jail, path, limit, d, settings.max_value_bytes,
                                     settings.max_answer_bytes), arrow=wants_arrow(ctx),
            deferred=WRITER_EXPANDS.get())

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


