"""A deterministic stand-in "model" for the tutorials: OpenAI chat completions on 127.0.0.1.

    python tests/fakes/notebook_model.py --port 0 --port-file PATH

binds 127.0.0.1 only, writes the port it got to PATH and serves until killed. Point a
provider at it with `OPENROUTER_BASE_URL=http://127.0.0.1:PORT/v1` (any path ending in
`/chat/completions` works, so `.../api/v1` does too) and any key. `scripts/test.sh` and
`scripts/build_notebooks.py --execute` run the notebooks against it, so CI needs no key
and no network; `tests/browser/` uses it for the tutorials' agent cells too.

It answers by rules, not by a script: each rule is keyed on the latest user message
and on how many rounds of tool calls already came back for it. A rule first asks for
tool calls, by the names it is offered (matched by suffix, `data__query_db` or
`remote__query_db`, so server names do not matter), with the SQL a careful analyst would
write for that tutorial question; once the results are back it writes a short answer
computed from the rows it received (the tables reach a model as CSV, see
`mcp_magic.tables.results.frame_for_model`). Refused and failed calls are reported as such.
Where the host offers a `result_name` argument, the exploratory-analysis rules name
their tables as an analyst would (`targets`, `actuals`, `south_categories`, ...). Every
reply says `"model": "scripted-notebook-model"`, whatever model was asked for, so the
usage line under a cell says that this stand-in answered. An unknown prompt gets a
polite generic answer. Replies stream as SSE chunks (text in
pieces, tool-call arguments in fragments, a usage chunk, `data: [DONE]`) or come as one
JSON body when the request does not ask to stream; token counts are estimated from the
text, so the same conversation always gets the same reply. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REVENUE_STATUSES = "status in ('completed', 'shipped')"
REGIONS = ("North", "South", "East", "West", "Central")

TOP_CUSTOMERS_SQL = f"""select customer, segment, region,
       count(distinct order_id) as orders,
       round(sum(amount), 2) as spent
from sales
where {REVENUE_STATUSES}
group by customer_id, customer, segment, region
order by spent desc
limit 3"""

QUARTERLY_ACTUALS_SQL = f"""select region,
       substr(order_date, 1, 4) || '-Q' || ((cast(substr(order_date, 6, 2) as integer) + 2) / 3)
           as quarter,
       round(sum(amount), 2) as revenue,
       count(distinct order_id) as orders
from sales
where {REVENUE_STATUSES}
  and order_date >= '2025-01-01' and order_date < '2026-01-01'
group by region, quarter
order by region, quarter"""

CATEGORY_SQL = f"""select category,
       round(sum(case when order_date < '2025-01-01' then amount else 0 end), 2) as revenue_2024,
       round(sum(case when order_date >= '2025-01-01' then amount else 0 end), 2) as revenue_2025
from sales
where region = '{{region}}' and {REVENUE_STATUSES}
  and order_date >= '2024-01-01' and order_date < '2026-01-01'
group by category
order by revenue_2025 - revenue_2024"""

CHANNEL_SQL = f"""select channel,
       count(distinct order_id) as orders,
       round(sum(amount), 2) as revenue
from sales
where {REVENUE_STATUSES}
group by channel
order by revenue desc"""

CHANNEL_GROWTH_SQL = f"""select channel,
       round(sum(case when order_date < '2025-01-01' then amount else 0 end), 2) as revenue_2024,
       round(sum(case when order_date >= '2025-01-01' then amount else 0 end), 2) as revenue_2025
from sales
where {REVENUE_STATUSES}
  and order_date >= '2024-01-01' and order_date < '2026-01-01'
group by channel
order by channel"""

SERVED_AS = "scripted-notebook-model"
"""What replies say in `model`, whatever model was asked for: the usage line under each
agent cell then says that this stand-in answered, not the model the notebook names."""

GENERIC_ANSWER = (
    "I am the scripted stand-in model that runs the mcp_magic tutorials offline, so I only "
    "know the tutorials' questions. To ask anything else, point `%%agent` at a real model: "
    "set `OPENROUTER_API_KEY` (or another provider's key) and pick the model with "
    '`%config McpMagics.default_model = "openrouter:openai/gpt-4o-mini"`.'
)


# ---------------------------------------------------------------------------
# reading the conversation


def message_text(message: dict[str, Any]) -> str:
    """A message's text: a string, or the text parts of a content list."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _number(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


_TABLE_START = re.compile(
    r"^(?:\d[\d,]* rows? × \d+ columns? \(CSV\):|rows(?: \(first \d+ shown\))?:)$"
)
_VARIABLE = re.compile(r"notebook variable `([^`]+)`")


def parse_table(content: str) -> list[dict[str, Any]] | None:
    """The rows of a table as mcp_magic tells a model about it (CSV after a header line)."""
    lines = content.splitlines()
    for index, line in enumerate(lines):
        if _TABLE_START.match(line.strip()):
            body = []
            for row in lines[index + 1 :]:
                if row.startswith("The full table is in"):
                    break
                body.append(row)
            reader = csv.DictReader(io.StringIO("\n".join(body)))
            return [{k: _number(v or "") for k, v in row.items()} for row in reader]
    return None


@dataclass
class ToolResult:
    """One tool call the model made and what came back."""

    name: str
    arguments: dict[str, Any]
    content: str
    rows: list[dict[str, Any]] | None = None
    variable: str | None = None

    @property
    def tool(self) -> str:
        """The tool's own name: `data__query_db` → `query_db`."""
        return self.name.rsplit("__", 1)[-1]

    @property
    def denied(self) -> bool:
        return self.content.startswith("The user denied")

    @property
    def failed(self) -> bool:
        return self.content.startswith("Error:")

    @property
    def columns(self) -> set[str]:
        return set(self.rows[0]) if self.rows else set()


def tool_results(messages: list[dict[str, Any]]) -> list[ToolResult]:
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    results = []
    for message in messages:
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except ValueError:
                arguments = {}
            calls[call.get("id", "")] = (function.get("name", ""), arguments)
        if message.get("role") == "tool":
            name, arguments = calls.get(message.get("tool_call_id", ""), ("?", {}))
            content = message_text(message)
            match = _VARIABLE.search(content)
            results.append(
                ToolResult(
                    name,
                    arguments,
                    content,
                    parse_table(content),
                    match.group(1) if match else None,
                )
            )
    return results


@dataclass
class Context:
    """The request, seen from the latest user message."""

    prompt: str
    step: int  # rounds of tool calls already made for this prompt
    tools: list[dict[str, Any]]
    results: list[ToolResult]  # for this prompt
    history: list[ToolResult]  # the whole conversation

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Context:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        start = users[-1] if users else 0
        turn = messages[start + 1 :]
        tools = [
            t.get("function") or {}
            for t in body.get("tools") or []
            if isinstance(t, dict) and t.get("type", "function") == "function"
        ]
        return cls(
            prompt=message_text(messages[start]) if users else "",
            step=sum(1 for m in turn if m.get("role") == "assistant" and m.get("tool_calls")),
            tools=tools,
            results=tool_results(turn),
            history=tool_results(messages),
        )

    def named(self, tool: str, arguments: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        """A call that names its table, when the host offers `result_name` for the tool."""
        offered = next((t for t in self.tools if t.get("name") == tool), {})
        properties = (offered.get("parameters") or {}).get("properties") or {}
        if "result_name" in properties:
            arguments = {**arguments, "result_name": name}
        return tool, arguments

    def tool(self, suffix: str, prefer: Callable[[dict[str, Any]], bool] | None = None) -> str:
        """The offered tool whose name ends in `suffix` (preferring those `prefer` likes)."""
        names = [t for t in self.tools if str(t.get("name", "")).rsplit("__", 1)[-1] == suffix]
        if prefer is not None:
            names = sorted(names, key=lambda t: not prefer(t))
        if not names:
            raise MissingTool(suffix)
        return str(names[0]["name"])

    def table(self, *columns: str, history: bool = False) -> ToolResult | None:
        """The latest table result that has these columns."""
        for result in reversed(self.history if history else self.results):
            if result.rows and set(columns) <= result.columns:
                return result
        return None

    def region(self) -> str | None:
        """A region named in the prompt."""
        for name in REGIONS:
            if re.search(rf"\b{name}\b", self.prompt):
                return name
        return None


class MissingTool(Exception):
    """A rule needs a tool the request did not offer."""


# ---------------------------------------------------------------------------
# replies


@dataclass
class Reply:
    text: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def ask(*calls: tuple[str, dict[str, Any]]) -> Reply:
    return Reply(calls=list(calls))


def money(value: float) -> str:
    """An amount, rounded, with no currency sign.

    (Two `$` in one paragraph of Markdown would render as LaTeX math in JupyterLab.)
    """
    sign = "−" if value < 0 else ""
    return f"{sign}{abs(value):,.0f}"


def percent(value: float, signed: bool = False) -> str:
    return f"{value:+.0%}".replace("-", "−") if signed else f"{value:.0%}"


def var(result: ToolResult | None) -> str:
    return f"`{result.variable}`" if result is not None and result.variable else "the table"


def trouble(ctx: Context) -> Reply | None:
    """A plain account of refused or failed calls, if any."""
    denied = [r for r in ctx.results if r.denied]
    failed = [r for r in ctx.results if r.failed]
    if denied:
        names = ", ".join(f"`{r.tool}`" for r in denied)
        return Reply(
            f"I did not run {names}: the call needed your approval and was denied, so "
            "nothing was changed. If you do want it, run the cell again and answer `y` at "
            "the prompt, or use `--approve never`."
        )
    if failed:
        first = failed[0].content.removeprefix("Error:").strip()
        return Reply(f"The `{failed[0].tool}` call failed, so I cannot answer yet: {first}")
    return None


def has(*words: str) -> Callable[[str], bool]:
    """All of `words` in the prompt (case-insensitive); `a|b` means either."""

    def matches(prompt: str) -> bool:
        text = prompt.lower()
        return all(any(w in text for w in word.split("|")) for word in words)

    return matches


# -- quickstart ----------------------------------------------------------------------


def top_customers(ctx: Context) -> Reply:
    if ctx.step == 0:
        return ask((ctx.tool("query_db"), {"sql": TOP_CUSTOMERS_SQL}))
    result = ctx.table("customer", "spent")
    if result is None:
        return trouble(ctx) or Reply("The query returned no customers.")
    lines = [
        f"{i}. **{row['customer']}** ({row['segment']}, {row['region']}): "
        f"spent {money(row['spent'])} over {row['orders']} orders"
        for i, row in enumerate(result.rows or [], 1)
    ]
    return Reply(
        f"The {len(lines)} customers who spent the most, counting completed and shipped "
        "orders:\n\n" + "\n".join(lines) + f"\n\nThe rows I used are in {var(result)}."
    )


# -- exploratory data analysis -------------------------------------------------------


def overview(ctx: Context) -> Reply:
    if ctx.step == 0:
        return ask(
            ctx.named(ctx.tool("list_files"), {"path": ".", "recursive": True}, "files"),
            ctx.named(ctx.tool("list_tables"), {}, "db_tables"),
        )
    files = ctx.table("name", "type", "size")
    tables = ctx.table("name", "type", "rows")
    if files is None or tables is None:
        return trouble(ctx) or Reply("I could not list the files and tables.")
    names = [row["name"] for row in files.rows or [] if row["type"] == "file"]
    csvs = [n for n in names if str(n).endswith(".csv")]
    targets = next((n for n in csvs if "target" in str(n)), None)
    base = [r for r in tables.rows or [] if r["type"] == "table"]
    views = [r["name"] for r in tables.rows or [] if r["type"] == "view"]
    parts = [
        f"**Files** ({len(names)}): " + ", ".join(f"`{n}`" for n in names) + ".",
        "**Database**: tables "
        + ", ".join(f"`{r['name']}` ({r['rows']:,} rows)" for r in base)
        + (", and views " + ", ".join(f"`{v}`" for v in views) if views else "")
        + ".",
    ]
    if targets:
        parts.append(
            f"`{targets}` has the targets; the actual revenue is in the database, where "
            "the `sales` view has one row per order item with its region, date, status and "
            "amount. So: read the targets file, sum `amount` from `sales` for 2025 per region "
            "and quarter (completed and shipped orders), and compare."
        )
    parts.append(f"The file list is in {var(files)} and the tables in {var(tables)}.")
    return Reply("\n\n".join(parts))


def targets_vs_actuals(ctx: Context) -> Reply:
    if ctx.step == 0:
        listed = ctx.table("name", "type", "size", history=True)
        names = [str(r["name"]) for r in (listed.rows or [])] if listed else []
        path = next((n for n in names if "target" in n and n.endswith(".csv")), None)
        return ask(
            ctx.named(ctx.tool("read_csv"), {"path": path or "targets_2025.csv"}, "targets"),
            ctx.named(ctx.tool("query_db"), {"sql": QUARTERLY_ACTUALS_SQL}, "actuals"),
        )
    targets = ctx.table("region", "target_revenue")
    actuals = ctx.table("region", "quarter", "revenue")
    if targets is None or actuals is None:
        return trouble(ctx) or Reply("I could not get both the targets and the actuals.")
    totals: dict[str, list[float]] = {}
    for row in targets.rows or []:
        totals.setdefault(row["region"], [0.0, 0.0])[0] += row["target_revenue"] or 0
    for row in actuals.rows or []:
        totals.setdefault(row["region"], [0.0, 0.0])[1] += row["revenue"] or 0
    ranked = sorted(
        ((region, target, actual) for region, (target, actual) in totals.items() if target),
        key=lambda item: item[2] / item[1],
    )
    missed = [item for item in ranked if item[2] < item[1]]
    beat = [item for item in reversed(ranked) if item[2] >= item[1]]

    def line(item: tuple[str, float, float]) -> str:
        region, target, actual = item
        return (
            f"- **{region}**: {money(actual)} against a target of {money(target)} "
            f"({percent(actual / target)})"
        )

    text = []
    if missed:
        text.append(f"{len(missed)} of {len(ranked)} regions missed their 2025 revenue target:")
        text += [line(item) for item in missed]
        worst = max(missed, key=lambda item: item[1] - item[2])
        text.append(
            f"\n{worst[0]} is furthest behind in absolute terms: "
            f"{money(worst[1] - worst[2])} short."
        )
    if beat:
        text.append("\nAhead of target:" if missed else "Every region beat its target:")
        text += [line(item) for item in beat]
    text.append(
        f"\nTargets are in {var(targets)}, quarterly actuals in {var(actuals)} "
        "(completed and shipped orders only)."
    )
    return Reply("\n".join(text))


def category_drilldown(ctx: Context) -> Reply:
    region = ctx.region() or "South"
    if ctx.step == 0:
        sql = CATEGORY_SQL.format(region=region)
        return ask(ctx.named(ctx.tool("query_db"), {"sql": sql}, f"{region.lower()}_categories"))
    result = ctx.table("category", "revenue_2024", "revenue_2025")
    if result is None:
        return trouble(ctx) or Reply(f"The query returned nothing for {region}.")
    rows = [
        (r["category"], r["revenue_2024"] or 0.0, r["revenue_2025"] or 0.0)
        for r in result.rows or []
    ]
    change = sum(new - old for _, old, new in rows)
    falling = sorted((row for row in rows if row[2] < row[1]), key=lambda r: r[2] - r[1])
    growing = [row for row in rows if row[2] >= row[1]]
    text = [
        f"{region}'s revenue went from {money(sum(r[1] for r in rows))} in 2024 to "
        f"{money(sum(r[2] for r in rows))} in 2025 ({money(change)})."
    ]
    if falling:
        name, old, new = falling[0]
        share = (new - old) / change if change < 0 else 0
        text.append(
            f"**{name}** is the largest part of the drop: {money(old)} → {money(new)} "
            f"({percent((new - old) / old, signed=True)}), {percent(share)} of the decline."
        )
        if len(falling) > 1:
            text.append(
                "Also down: "
                + ", ".join(f"{n} ({percent((b - a) / a, signed=True)})" for n, a, b in falling[1:])
                + "."
            )
    if growing:
        text.append(
            "Only "
            + ", ".join(f"{n} ({percent((b - a) / a, signed=True)})" for n, a, b in growing)
            + " grew."
        )
    text.append(f"The breakdown is in {var(result)}.")
    return Reply(" ".join(text))


def summary(ctx: Context) -> Reply:
    targets = ctx.table("region", "target_revenue", history=True)
    actuals = ctx.table("region", "quarter", "revenue", history=True)
    categories = ctx.table("category", "revenue_2024", "revenue_2025", history=True)
    if targets is None or actuals is None:
        return Reply(
            "I have no results to summarize yet: ask me to compare the revenue with the "
            "targets first."
        )
    target: dict[str, float] = {}
    actual: dict[str, float] = {}
    for row in targets.rows or []:
        target[row["region"]] = target.get(row["region"], 0) + (row["target_revenue"] or 0)
    for row in actuals.rows or []:
        actual[row["region"]] = actual.get(row["region"], 0) + (row["revenue"] or 0)
    ratio = {r: actual.get(r, 0) / t for r, t in target.items() if t}
    missed = sorted((r for r in ratio if ratio[r] < 1), key=ratio.get)
    beat = sorted((r for r in ratio if ratio[r] >= 1), key=ratio.get, reverse=True)
    total_actual, total_target = sum(actual.values()), sum(target.values())
    bullets = [
        f"- **The year**: 2025 revenue was {money(total_actual)} against a target of "
        f"{money(total_target)} ({percent(total_actual / total_target)}), "
        "with the regions far apart."
    ]
    ahead = ", ".join(f"{r} ({percent(ratio[r])})" for r in beat)
    behind = ", ".join(f"{r} ({percent(ratio[r])})" for r in missed)
    bullets.append(f"- **Regions**: ahead of target {ahead or 'none'}; behind {behind or 'none'}.")
    if categories is not None and categories.rows:
        region = next((r for r in REGIONS if f"'{r}'" in categories.arguments.get("sql", "")), "")
        worst = min(
            categories.rows, key=lambda r: (r["revenue_2025"] or 0) - (r["revenue_2024"] or 0)
        )
        old, new = worst["revenue_2024"] or 0, worst["revenue_2025"] or 0
        bullets.append(
            f"- **Where it went{' in ' + region if region else ''}**: {worst['category']} "
            f"lost the most, {money(old - new)} ({percent((old - new) / old)}) less than in "
            "2024; that is the first thing to look into."
        )
    elif missed:
        bullets.append(
            f"- **Next**: find out why {missed[0]} fell short, e.g. by product category."
        )
    return Reply("\n".join(bullets))


# -- servers and models --------------------------------------------------------------


def channel_growth(ctx: Context) -> Reply:
    if ctx.step == 0:
        return ask((ctx.tool("query_db"), {"sql": CHANNEL_GROWTH_SQL}))
    result = ctx.table("channel", "revenue_2024", "revenue_2025")
    if result is None:
        return trouble(ctx) or Reply("The query returned no channels.")
    rows = sorted(
        result.rows or [],
        key=lambda r: (r["revenue_2025"] - r["revenue_2024"]) / r["revenue_2024"],
        reverse=True,
    )
    parts = [
        f"{r['channel']} {money(r['revenue_2024'])} → {money(r['revenue_2025'])} "
        f"({percent((r['revenue_2025'] - r['revenue_2024']) / r['revenue_2024'], signed=True)})"
        for r in rows
    ]
    return Reply(
        f"**{rows[0]['channel'].capitalize()}** grew fastest from 2024 to 2025: "
        + "; ".join(parts)
        + f". The numbers are in {var(result)}."
    )


def channels(ctx: Context) -> Reply:
    if ctx.step == 0:
        return ask((ctx.tool("query_db"), {"sql": CHANNEL_SQL}))
    result = ctx.table("channel", "revenue")
    if result is None:
        return trouble(ctx) or Reply("The query returned no channels.")
    rows = result.rows or []
    total = sum(r["revenue"] for r in rows) or 1
    top, rest = rows[0], rows[1:]
    return Reply(
        f"**{top['channel'].capitalize()}** brings the most revenue: {money(top['revenue'])} from "
        f"{top['orders']:,} orders, {percent(top['revenue'] / total)} of the total. Then "
        + " and ".join(
            f"{r['channel']} ({money(r['revenue'])}, {percent(r['revenue'] / total)})" for r in rest
        )
        + f". Completed and shipped orders only; the table is in {var(result)}."
    )


def _writable(tool: dict[str, Any]) -> bool:
    return "writes are allowed" in str(tool.get("description", "")).lower()


def write_note(ctx: Context) -> Reply:
    region = ctx.region() or "South"
    if ctx.step == 0:
        sql = (
            f"create table notes as select '{region}' as region, "
            f"'missed its 2025 revenue target' as note, date('now') as written"
        )
        return ask((ctx.tool("query_db", prefer=_writable), {"sql": sql}))
    problem = trouble(ctx)
    if problem is not None:
        return problem
    return Reply(
        f"Done: the database now has a table `notes` with one row for {region}. "
        "Check it with `select * from notes`."
    )


# ---------------------------------------------------------------------------
# code mode (`%%agent --code`): rules for a model that answers by writing Python
#
# When the request offers `run_python` (and nothing else), the model writes one block of
# pandas code: the servers' tools are functions in it (`data.read_csv(...)`,
# `data.query_db(...)`), the tables stay in the kernel, and only what the code prints
# comes back. The object to call is read from the tool's description (`data`, or
# `mcp_servers.data` when a notebook variable has that name).

CODE_TARGETS = """targets = {server}.read_csv(path="{path}")
actuals = {server}.query_db(sql=\"\"\"{sql}\"\"\")
comparison = targets.merge(actuals, on=["region", "quarter"], how="left")
by_region = comparison.groupby("region")[["target_revenue", "revenue"]].sum()
by_region["attainment"] = (by_region["revenue"] / by_region["target_revenue"]).round(3)
print(by_region.sort_values("attainment").to_csv())"""


def code_server(ctx: Context, function: str) -> str:
    """The expression for the server offering `function`, from run_python's description."""
    for tool in ctx.tools:
        if str(tool.get("name", "")).rsplit("__", 1)[-1] == "run_python":
            found = re.search(rf"^- ([\w.]+)\.{function}\(", str(tool.get("description", "")), re.M)
            if found:
                return found.group(1)
    raise MissingTool(function)


def printed_table(content: str) -> list[dict[str, Any]] | None:
    """The CSV a code block printed (the `Output:` part of its report)."""
    if not content.startswith("Output:"):
        return None
    body = []
    for line in content.splitlines()[1:]:
        if not line.strip() or line.startswith(("Value:", "Notebook variables set:", "Error:")):
            break
        body.append(line)
    reader = csv.DictReader(io.StringIO("\n".join(body)))
    return [{k: _number(v or "") for k, v in row.items()} for row in reader]


def code_trouble(ctx: Context) -> Reply | None:
    for result in ctx.results:
        if result.content.startswith("Not run"):
            return Reply(
                "I did not run the code: it needed your approval and was not approved, so "
                "nothing changed in the notebook. Run the cell again and answer `y`, or "
                "use `--approve never`."
            )
        if "Error:" in result.content:
            error = result.content[result.content.index("Error:") :].splitlines()[0]
            return Reply(f"My code failed, so I cannot answer yet: {error}")
    return None


def code_targets_vs_actuals(ctx: Context) -> Reply:
    if ctx.step == 0:
        code = CODE_TARGETS.format(
            server=code_server(ctx, "query_db"), path="targets_2025.csv", sql=QUARTERLY_ACTUALS_SQL
        )
        return ask((ctx.tool("run_python"), {"code": code}))
    rows = next((printed_table(r.content) for r in ctx.results if printed_table(r.content)), None)
    if not rows:
        return code_trouble(ctx) or Reply("My code printed no comparison.")
    missed = [r for r in rows if r["attainment"] < 1]
    beat = [r for r in reversed(rows) if r["attainment"] >= 1]

    def line(row: dict[str, Any]) -> str:
        return (
            f"- **{row['region']}**: {money(row['revenue'])} against a target of "
            f"{money(row['target_revenue'])} ({percent(row['attainment'])})"
        )

    text = []
    if missed:
        text.append(f"{len(missed)} of {len(rows)} regions missed their 2025 revenue target:")
        text += [line(r) for r in missed]
    if beat:
        text.append("\nAhead of target:" if missed else "Every region beat its target:")
        text += [line(r) for r in beat]
    text.append(
        "\nThe tables stayed in the notebook: `targets`, `actuals`, the joined `comparison` "
        "(per region and quarter) and `by_region`."
    )
    return Reply("\n".join(text))


CODE_RULES: list[tuple[Callable[[str], bool], Callable[[Context], Reply]]] = [
    (has("compare|against", "target"), code_targets_vs_actuals),
]


def code_mode_answer(ctx: Context) -> Reply | None:
    """A code-mode reply, when only `run_python` is offered and a code rule matches."""
    names = {str(t.get("name", "")).rsplit("__", 1)[-1] for t in ctx.tools}
    if "run_python" not in names:
        return None
    for matches, function in CODE_RULES:
        if matches(ctx.prompt):
            return function(ctx)
    return None


# ---------------------------------------------------------------------------
# the reply for a request

Rule = Callable[[Context], Reply]
RULES: list[tuple[Callable[[str], bool], Rule]] = [
    # The first match wins: the more specific questions come first.
    (has("note", "create|write|save|keep|add"), write_note),
    (has("summar"), summary),
    (has("customer", "spent|spend|biggest|top"), top_customers),
    (has("files", "tables"), overview),
    (has("categor"), category_drilldown),
    (has("compare|against", "target"), targets_vs_actuals),
    (has("channel", "grew|growth|faster|fastest|2025"), channel_growth),
    (has("channel"), channels),
]


def answer(body: dict[str, Any]) -> Reply:
    ctx = Context.from_body(body)
    with contextlib.suppress(MissingTool):
        coded = code_mode_answer(ctx)  # code mode: see its part above
        if coded is not None:
            return coded
    for matches, function in RULES:
        if matches(ctx.prompt):
            try:
                return function(ctx)
            except MissingTool as exc:
                offered = ", ".join(f"`{t.get('name')}`" for t in ctx.tools) or "none"
                return Reply(
                    f"I need a `{exc}` tool for this, but none was offered (tools: {offered}). "
                    "Connect the built-in data server with `%mcp connect data --builtin`, or "
                    "check `--allow`/`--deny`."
                )
    return Reply(GENERIC_ANSWER)


# ---------------------------------------------------------------------------
# the wire format

_ids = itertools.count(1)


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def usage_block(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    sent = json.dumps(body.get("messages") or [], sort_keys=True)
    sent += json.dumps(body.get("tools") or [], sort_keys=True)
    made = reply.text + "".join(name + json.dumps(args) for name, args in reply.calls)
    prompt, completion = estimate_tokens(sent), estimate_tokens(made)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def wire_calls(body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    seed = json.dumps(body.get("messages") or [], sort_keys=True)
    calls = []
    for index, (name, arguments) in enumerate(reply.calls):
        text = json.dumps(arguments)
        digest = hashlib.sha1(f"{seed}|{index}|{name}|{text}".encode()).hexdigest()[:16]
        calls.append(
            {
                "id": f"call_{digest}",
                "type": "function",
                "function": {"name": name, "arguments": text},
            }
        )
    return calls


def completion_body(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    calls = wire_calls(body, reply)
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-local-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": SERVED_AS,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": usage_block(body, reply),
    }


def text_pieces(text: str, size: int = 24) -> Iterator[str]:
    """Text in pieces of about `size` characters, cut after spaces (like tokens arrive)."""
    piece = ""
    for word in re.findall(r"\S+\s*|\s+", text):
        piece += word
        if len(piece) >= size:
            yield piece
            piece = ""
    if piece:
        yield piece


def stream_chunks(body: dict[str, Any], reply: Reply) -> Iterator[dict[str, Any]]:
    base = {
        "id": f"chatcmpl-local-{next(_ids)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": SERVED_AS,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    for piece in text_pieces(reply.text):
        yield chunk({"content": piece})
    calls = wire_calls(body, reply)
    for index, call in enumerate(calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    }
                ]
            }
        )
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        for part in (arguments[:half], arguments[half:]):
            if part:
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
    yield chunk({}, "tool_calls" if calls else "stop")
    options = body.get("stream_options") or {}
    if options.get("include_usage", True):
        yield {**base, "choices": [], "usage": usage_block(body, reply)}


def make_handler(delay: float, log: Callable[[str], None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log(format % args)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/").endswith("/models"):
                models = ["openai/gpt-4o-mini", "gpt-4o-mini", "local"]
                self._json(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": m, "object": "model", "owned_by": "notebook-model"}
                            for m in models
                        ],
                    },
                )
            else:
                self._json(404, {"error": {"code": 404, "message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
                self._json(404, {"error": {"code": 404, "message": f"no route {self.path}"}})
                return
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                    raise ValueError("expected a JSON object with messages")
            except ValueError as exc:
                self._json(400, {"error": {"code": 400, "message": f"bad request: {exc}"}})
                return
            reply = answer(body)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._json(200, completion_body(body, reply))

        def _json(self, status: int, data: Any) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _stream(self, body: dict[str, Any], reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for item in stream_chunks(body, reply):
                self.wfile.write(f"data: {json.dumps(item)}\n\n".encode())
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


def serve(port: int, port_file: Path | None, delay: float = 0.0, quiet: bool = False) -> None:
    def log(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    httpd = ThreadingHTTPServer(("127.0.0.1", port), make_handler(delay, log))
    httpd.daemon_threads = True
    bound = httpd.server_address[1]
    if port_file is not None:
        partial = port_file.with_name(port_file.name + ".partial")
        partial.write_text(f"{bound}\n", encoding="utf-8")
        os.replace(partial, port_file)  # whoever polls the file never reads half of it
    log(f"notebook model on http://127.0.0.1:{bound}/v1")

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    try:
        httpd.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--port-file", type=Path, help="write the port to this file")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--quiet", action="store_true", help="no request log on stderr")
    args = parser.parse_args(argv)
    serve(args.port, args.port_file, args.delay, args.quiet)


if __name__ == "__main__":
    main()
