"""Built-in tools that let the model see the notebook's DataFrames, in bounded previews.

They belong to a server named `notebook` as far as the user is concerned: `--allow` and
`--deny` match them like any other server's tools (`--deny notebook`, `--allow
notebook.list_dataframes`), and each call shows as a tool-call block.

They are hosted as a local tool source of the agent rather than as an in-process MCP
server on the SDK's in-memory transport. What they read is the kernel's own namespace,
so a session would add nothing but a protocol round trip, and a session would be one
more thing `%mcp disconnect --all`, `%mcp reconnect` and `%mcp list` must special-case
(it has no process, no log, and must never be closed by the user by accident). The
allow/deny semantics are the agent's own (`agent.is_allowed`), applied to `notebook.TOOL`
exactly as to a connected server. They are offered when the notebook holds at least one
DataFrame, and not at all when a connected server is itself called `notebook`.

They run on the session thread while the main thread waits for the run (it only draws
events then), and they only read: a copy of a few rows, `describe()`, `value_counts()`.

Every answer is bounded: at most `MAX_ROWS` rows, `MAX_COLUMNS` columns, cells cut at
`CELL_CHARS` characters, and `MAX_CHARS` characters in all. Whole tables are never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SERVER = "notebook"
MAX_ROWS = 50
MAX_COLUMNS = 40
CELL_CHARS = 80
MAX_CHARS = 4000


@dataclass(frozen=True)
class NotebookTool:
    name: str
    description: str
    input_schema: dict[str, Any]


_NAME = {"type": "string", "description": "The DataFrame's variable name."}
TOOLS = (
    NotebookTool(
        "list_dataframes",
        "List the pandas DataFrames in the user's notebook: name, rows, columns, memory, "
        "and column types. Read-only.",
        {"type": "object", "properties": {}},
    ),
    NotebookTool(
        "head",
        "The first rows of a DataFrame in the notebook (at most 50). Read-only.",
        {
            "type": "object",
            "properties": {
                "name": _NAME,
                "rows": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS, "default": 5},
            },
            "required": ["name"],
        },
    ),
    NotebookTool(
        "describe",
        "Summary statistics of a DataFrame in the notebook (pandas describe). Read-only.",
        {"type": "object", "properties": {"name": _NAME}, "required": ["name"]},
    ),
    NotebookTool(
        "value_counts",
        "The most frequent values of one column of a DataFrame in the notebook. Read-only.",
        {
            "type": "object",
            "properties": {
                "name": _NAME,
                "column": {"type": "string"},
                "top": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS, "default": 10},
            },
            "required": ["name", "column"],
        },
    ),
)
BY_NAME = {tool.name: tool for tool in TOOLS}


class NotebookToolError(ValueError):
    """A call the tools cannot answer (no such DataFrame, no such column); one line."""


def is_frame(value: Any) -> bool:
    """A DataFrame, by duck typing (pandas is not imported to ask)."""
    return hasattr(value, "to_csv") and hasattr(value, "dtypes") and hasattr(value, "memory_usage")


def dataframes(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The user's DataFrames: public names only (not `_`, `_1`, IPython's own)."""
    return {
        name: value
        for name, value in list(namespace.items())
        if not name.startswith("_") and is_frame(value)
    }


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _frame(namespace: Mapping[str, Any], name: str) -> Any:
    frames = dataframes(namespace)
    if name not in frames:
        known = ", ".join(sorted(frames)) or "none"
        raise NotebookToolError(
            f"no DataFrame named {name!r} in the notebook (DataFrames: {known})"
        )
    return frames[name]


def _bounded(frame: Any) -> Any:
    """At most MAX_COLUMNS columns, long cells cut."""
    if frame.shape[1] > MAX_COLUMNS:
        frame = frame.iloc[:, :MAX_COLUMNS]

    def cut(value: Any) -> Any:
        if isinstance(value, str) and len(value) > CELL_CHARS:
            return value[:CELL_CHARS] + "…"
        return value

    mapper = getattr(frame, "map", None) or frame.applymap
    return mapper(cut)


def _text(frame: Any, title: str, index: bool = False) -> str:
    csv_text = frame.to_csv(index=index).strip()
    if len(csv_text) > MAX_CHARS:
        csv_text = csv_text[:MAX_CHARS] + f"\n[... cut at {MAX_CHARS} characters]"
    return f"{title}\n{csv_text}"


def call(namespace: Mapping[str, Any], tool: str, arguments: dict[str, Any]) -> tuple[Any, str]:
    """Run one notebook tool: (what the user's block shows, what the model is told)."""
    import pandas as pd

    if tool == "list_dataframes":
        rows = []
        for name, frame in dataframes(namespace).items():
            types = ", ".join(f"{c}: {t}" for c, t in zip(frame.columns, frame.dtypes.astype(str)))
            if len(types) > 300:
                types = types[:300] + "…"
            rows.append(
                {
                    "name": name,
                    "rows": int(frame.shape[0]),
                    "columns": int(frame.shape[1]),
                    "memory": _size(float(frame.memory_usage(deep=True).sum())),
                    "column_types": types,
                }
            )
        table = pd.DataFrame(rows, columns=["name", "rows", "columns", "memory", "column_types"])
        if table.empty:
            return table, "There are no DataFrames in the notebook."
        return table, _text(table.head(MAX_ROWS), f"{len(table)} DataFrames in the notebook (CSV):")
    name = str(arguments.get("name", ""))
    frame = _frame(namespace, name)
    rows, cols = frame.shape
    if tool == "head":
        n = max(1, min(int(arguments.get("rows") or 5), MAX_ROWS))
        preview = _bounded(frame.head(n))
        title = f"`{name}`: {rows:,} rows × {cols} columns; first {min(n, rows)} rows (CSV):"
        return preview, _text(preview, title, index=not _plain_index(frame))
    if tool == "describe":
        summary = _bounded(frame.describe(include="all").T.reset_index(names="column"))
        return summary, _text(summary.head(MAX_ROWS), f"`{name}` ({rows:,} rows) described (CSV):")
    if tool == "value_counts":
        column = str(arguments.get("column", ""))
        if column not in frame.columns:
            raise NotebookToolError(
                f"`{name}` has no column {column!r} (columns: {', '.join(map(str, frame.columns))})"
            )
        n = max(1, min(int(arguments.get("top") or 10), MAX_ROWS))
        counts = frame[column].value_counts(dropna=False)
        top = _bounded(counts.head(n).rename_axis(column).reset_index(name="count"))
        title = f"`{name}`.{column}: {len(counts):,} distinct values; top {len(top)} (CSV):"
        return top, _text(top, title)
    raise NotebookToolError(f"the notebook has no tool {tool!r}")


def _plain_index(frame: Any) -> bool:
    """A default 0..n-1 index says nothing: left out of the preview."""
    import pandas as pd

    return isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
