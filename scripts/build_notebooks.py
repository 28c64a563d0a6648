"""Write the tutorials in notebooks/ from the cell lists below; run them to save outputs.

    python scripts/build_notebooks.py                       # write them, without outputs
    python scripts/build_notebooks.py --execute             # ... and run each, saving outputs
    python scripts/build_notebooks.py --execute quickstart  # only some (by file stem)

`--execute` runs each notebook top to bottom in a fresh kernel, the way nbval does in CI:
`%%agent` cells talk to the scripted model in `tests/fakes/notebook_model.py`, started
on 127.0.0.1 for the run, through `OPENROUTER_BASE_URL` / `OPENAI_BASE_URL` and dummy
keys. No key and no network are needed. Widget views are dropped from the saved outputs
(their models do not outlive the kernel), which leaves the static `<details>` blocks
and text that GitHub, nbviewer and a fresh JupyterLab show.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_MODEL = ROOT / "tests" / "fakes" / "notebook_model.py"
DUMMY_KEY = "local-notebook-model"  # what the local model gets as a key; it checks none
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
AGENT_TAGS = ["raises-exception"]  # a missing key stops the cell, not "Run All"


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text.strip())


def with_image(cell: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Put notebooks/images/NAME into a Markdown cell as a data URI (`IMAGE:NAME` in its
    text), so the picture travels with the notebook: exports and copies elsewhere show
    it. (A cell attachment would do too, but JupyterLab first asks the browser for the
    `attachment:` URL itself, which logs an error in the page.)"""
    data = base64.b64encode((NOTEBOOKS / "images" / name).read_bytes()).decode()
    cell.source = cell.source.replace(f"IMAGE:{name}", f"data:image/png;base64,{data}")
    return cell


def code(source: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    cell = new_code_cell(source.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def agent(line: str, prompt: str) -> nbformat.NotebookNode:
    """A `%%agent` cell; tagged so that without a key "Run All" goes on past it."""
    head = f"%%agent {line}".rstrip()
    return code(f"{head}\n{prompt.strip()}", tags=AGENT_TAGS)


MODEL_CELL = """
import os

# The model for the %%agent cells, as provider:model (set MCP_MAGIC_MODEL to change it).
MODEL = os.environ.get("MCP_MAGIC_MODEL", "openrouter:openai/gpt-4o-mini")
%config McpMagics.default_model = MODEL
"""

KEY_CELL = """
# Paste a key here instead of setting it before starting Jupyter (it is not saved):
# from getpass import getpass
# os.environ["OPENROUTER_API_KEY"] = getpass("OpenRouter API key: ")
"""


def key_help(fallback: str) -> str:
    """The prose on models, keys, and what happens without a key."""
    return f"""
**Which model, which key.** `%%agent` cells send the conversation to a language model:
`MODEL` picks it as `provider:model`. The default, `openrouter:openai/gpt-4o-mini`, needs
an [OpenRouter](https://openrouter.ai) key in `OPENROUTER_API_KEY`. Other providers work
the same way with their own variable: `openai:gpt-4o-mini` with `OPENAI_API_KEY`,
`anthropic:claude-sonnet-4-5` with `ANTHROPIC_API_KEY`, `gemini:gemini-2.5-flash` with
`GEMINI_API_KEY`, or `ollama:qwen2.5` for a local [Ollama](https://ollama.com) with no key.
Set the variable before you start Jupyter, put `OPENROUTER_API_KEY=...` in a `.env` file
next to this notebook, or uncomment the next cell, which asks for the key without
saving it in the notebook. Keys are never printed.

**No key?** Then each `%%agent` cell stops with one line that names the variable to set
(`UsageError: OPENROUTER_API_KEY is not set: ...`). These cells carry the
`raises-exception` tag, which JupyterLab, Notebook 7 and nbval honour, so *Run All* goes
on past them{fallback}.

*The outputs saved in this notebook come from a run against a scripted stand-in model
on 127.0.0.1 (`tests/fakes/notebook_model.py`, the one CI uses), so they show what a
session looks like; a real model words its answers its own way and may pick other tool
calls.*
"""


# ---------------------------------------------------------------------------
# quickstart


def quickstart() -> list[nbformat.NotebookNode]:
    return [
        md(
            """
# Quickstart: MCP tools in a notebook

`mcp_magic` connects [Model Context Protocol](https://modelcontextprotocol.io) servers to
this kernel. You call their tools from a cell, and tabular answers come back as pandas
DataFrames. At the end, `%%agent` hands a question to a language model that calls the
same tools itself.

This notebook uses the **built-in data server**, which ships with the package: a small
sales database (regions, customers, products, orders) and a file lister. No account and
no network needed, except for the one `%%agent` cell, which needs a model (see there).
"""
        ),
        code("%load_ext mcp_magic"),
        md(
            """
The model for `%%agent` is chosen once, here at the top; nothing else in the notebook
depends on it. The last section says which key it needs.
"""
        ),
        code(MODEL_CELL),
        md(
            """
`%mcp connect NAME --builtin` starts the built-in server as a child process of this
kernel and opens an MCP session with it. Other servers connect the same way: `%mcp
connect NAME -- COMMAND ARGS` for a local (stdio) server, `%mcp connect NAME URL` for a
remote one (see `servers_and_models.ipynb`).
"""
        ),
        code("%mcp connect data --builtin"),
        md(
            "What can it do? `%mcp tools` lists each tool with its parameters (`?` marks "
            "optional ones) and its hints (read-only tools cannot change anything)."
        ),
        code("# NBVAL_CHECK_OUTPUT\n%mcp tools data"),
        md(
            """
## Query the database

`%mcp call SERVER.TOOL key=value ...` calls a tool. `query_db` answers with a table, so
the result is a DataFrame, and an assignment binds it like any other value.
"""
        ),
        code(
            "# NBVAL_CHECK_OUTPUT\n"
            'revenue = %mcp call data.query_db sql="select region, round(sum(amount), 2) as '
            'total from sales group by region order by total desc"\nrevenue'
        ),
        md("The column types come from the server, so numbers are numbers and dates are dates:"),
        code("# NBVAL_CHECK_OUTPUT\nrevenue.dtypes"),
        code(
            'orders = %mcp call data.query_db sql="select order_id, order_date, status from '
            'orders"\nprint(orders.dtypes)\n'
            "orders.groupby(orders.order_date.dt.year).size()"
        ),
        md(
            "The database is read-only unless the server was started with `--allow-writes`; "
            "a write is refused with a one-line error (uncomment to try):"
        ),
        code('# %mcp call data.query_db sql="drop table orders"'),
        md(
            """
## Files and resources

`list_files` lists files under the server's root (by default the notebook's directory)
and refuses paths outside it. Servers can also offer *resources*, documents you read
by URI; the built-in server offers the database schema.
"""
        ),
        code('files = %mcp call data.list_files path="."\nfiles[["name", "type", "size"]]'),
        code("%mcp resources data"),
        code("schema = %mcp read schema://database\nprint(schema[:500])"),
        md(
            """
## Ask a model: `%%agent`

`%%agent` sends the cell's text to the model chosen at the top, together with the tools
of every connected server. The model decides which tools to call; `mcp_magic` runs the
calls, sends back the results and streams the answer into the cell. Each tool call shows
as a collapsible block with the server, tool, status, duration and the variable its
table went to; open it to see the arguments and the rows.
"""
            + key_help("")
        ),
        code(KEY_CELL),
        agent("", "Which three customers spent the most? Show the rows you used."),
        md(
            "The table the model's query returned is the DataFrame `result_1` (the `else` "
            "is for a run without a key):"
        ),
        code(
            """
# NBVAL_CHECK_OUTPUT
result_1 if "result_1" in globals() else "no table: the %%agent cell did not run (no key?)"
"""
        ),
        md(
            """
The answer's text is in `answer`. A following `%%agent` cell continues the same
conversation; `%%agent --new` starts over. `%%agent?` lists the options: which servers
or tools the model may use (`--allow`, `--deny`), approval before tools run
(`--approve`), other variable names (`--out`, `--results`), and more.
`eda_with_live_tools.ipynb` takes this further.

## Sessions and logs

`%mcp list` shows every session; `%mcp log NAME` shows what a server wrote to stderr.
`%mcp disconnect --all` stops every server process.
"""
        ),
        code("%mcp list"),
        code("%mcp disconnect --all"),
    ]


# ---------------------------------------------------------------------------
# exploratory data analysis

ACTUALS_SQL = '''
ACTUALS_SQL = """
select region,
       substr(order_date, 1, 4) || '-Q' || ((cast(substr(order_date, 6, 2) as integer) + 2) / 3)
           as quarter,
       round(sum(amount), 2) as revenue
from sales
where status in ('completed', 'shipped') and order_date between '2025-01-01' and '2025-12-31'
group by region, quarter
"""
'''


def eda() -> list[nbformat.NotebookNode]:
    return [
        md(
            """
# Exploratory data analysis with live tools

A question a sales analyst gets every January: **did each region hit its 2025 revenue
targets, and where did the shortfall come from?** The answer is spread over a CSV file
of targets and a SQL database of orders. Here a language model does the legwork with the
built-in data server's tools (list the files, read the CSV, run SQL) over several
`%%agent` cells that build on each other, and then we take over with pandas and
matplotlib, working on the very tables the model fetched.

What this shows:

- tools from several sources (files and SQL) used together by the model;
- the conversation carrying on from cell to cell, and `{name}` putting a notebook
  variable into a prompt;
- the model's tables landing in notebook variables under names the model gives them
  (`targets`, `actuals`, ...), ready for pandas;
- `%agent log`, what each run did, and `%agent export`, a run turned into plain code that
  reruns without a model;
- code mode, where the model writes pandas code that calls the tools in the kernel, so
  the tables never pass through the model.
"""
        ),
        code(
            """
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import mcp_magic

%load_ext mcp_magic
"""
        ),
        code(MODEL_CELL),
        md(key_help(", and the cells after them fetch the same tables with `%mcp call`")),
        code(KEY_CELL),
        md(
            """
## The data

The built-in server gets the sample data folder that ships with `mcp_magic` as its root,
so `list_files` and `read_csv` see the targets file; `query_db` runs SQL on the sample
sales database (2024–2025).
"""
        ),
        code(
            """
FILES = Path(mcp_magic.__file__).parent / "data" / "files"
%mcp connect data --builtin --root $FILES
"""
        ),
        md(
            """
## 1. What is there to work with?

Rather than tell the model where everything is, let it look. It can call several tools
in one reply; they run at the same time.
"""
        ),
        agent(
            "",
            """
Our question: did each region hit its 2025 revenue targets? Before answering, find out
what we have: look at the files and at the database tables, and tell me which ones can
answer it.
""",
        ),
        md(
            """
Open a block to see what the model asked for and what came back. Every table a tool
returned is in a notebook variable, named in the block's header. The model picks the
names (with an extra `result_name` argument that `mcp_magic` offers with every tool and
takes off before the call), so here the file list is `files` and the database's tables
are `db_tables`. The answer's text is in `answer`.

A name never hides one of your variables, a Python builtin, or a table another cell
made: the table then gets a free variant (`targets_2`) and the cell says so in one
line. A table the model leaves unnamed gets `result_1`, `result_2`, ... by cell:
re-running a cell binds the same names again.

## 2. Targets against actuals

The conversation goes on: this cell can say "the targets" and the model knows what is
meant. Asking for the column names makes its table easy to use afterwards.
"""
        ),
        agent(
            "",
            """
Now compare 2025 revenue with the targets, per region and quarter. Count completed and
shipped orders only, and call the columns region, quarter and revenue.
""",
        ),
        md(
            """
The model called its tables `targets` and `actuals`. If they are not there (no key, or
a model that chose other names: see the blocks above), fetch the same two tables
directly with `%mcp call` and a query like the one the model wrote in the saved run.
"""
        ),
        code(ACTUALS_SQL),
        code(
            """
# NBVAL_CHECK_OUTPUT
if "targets" in globals() and "actuals" in globals():
    print("Using the tables the agent fetched.")
else:
    print("No agent tables: fetching them with %mcp call.")
    targets = %mcp call data.read_csv path="targets_2025.csv"
    actuals = %mcp call data.query_db sql="$ACTUALS_SQL"
print(f"targets: {targets.shape}, actuals: {actuals.shape}")
"""
        ),
        md(
            """
## 3. Take over with pandas

These are ordinary DataFrames. Join them, and compute how much of its target each
region reached, for the year and per quarter:
"""
        ),
        code(
            """
# NBVAL_CHECK_OUTPUT
quarters = targets.merge(actuals, on=["region", "quarter"])
quarters["attainment"] = quarters.revenue / quarters.target_revenue

by_region = quarters.groupby("region")[["target_revenue", "revenue"]].sum()
by_region["attainment"] = (by_region.revenue / by_region.target_revenue).round(3)
by_region.sort_values("attainment")
"""
        ),
        code(
            """
ax = (
    quarters.pivot(index="region", columns="quarter", values="attainment")
    .loc[by_region.sort_values("attainment").index]
    .mul(100)
    .plot.bar(figsize=(9, 4), rot=0, width=0.8)
)
ax.axhline(100, color="black", linewidth=1, linestyle="--")
ax.set(title="2025 revenue as % of target, per quarter", xlabel="", ylabel="% of target")
ax.legend(title="", ncols=4, loc="upper left", frameon=False)
ax.margins(y=0.15)  # room for the legend
plt.show()
"""
        ),
        md(
            """
Two regions stay below the line in most quarters. The one furthest behind for the
year is where to dig:
"""
        ),
        code("# NBVAL_CHECK_OUTPUT\nworst = by_region.attainment.idxmin()\nworst"),
        md(
            """
## 4. Why did it fall short?

`{worst}` in a prompt is replaced by the notebook variable `worst` (write `{{` for a
literal brace). The tables of this cell get their own names, so the ones above stay as
they are.
"""
        ),
        agent(
            "",
            "Why did {worst} fall short? Break its revenue down by product category, "
            "2025 against 2024.",
        ),
        code(
            '''
# NBVAL_CHECK_OUTPUT
name = f"{worst.lower()}_categories"  # the name the model gave the table in the saved run
if name in globals():
    categories = globals()[name]
else:
    print("No agent table: fetching it with %mcp call.")
    CATEGORY_SQL = f"""
    select category,
           round(sum(case when order_date < '2025-01-01' then amount else 0 end), 2)
               as revenue_2024,
           round(sum(case when order_date >= '2025-01-01' then amount else 0 end), 2)
               as revenue_2025
    from sales
    where region = '{worst}' and status in ('completed', 'shipped')
    group by category
    """
    categories = %mcp call data.query_db sql="$CATEGORY_SQL"
categories = categories.set_index("category")
categories["change"] = categories.revenue_2025 - categories.revenue_2024
categories["change_pct"] = (categories.change / categories.revenue_2024 * 100).round(1)
categories.sort_values("change")
'''
        ),
        md(
            """
## 5. Write it up

The model still has every result of this conversation, so a summary needs no new tool
calls. `--out summary` puts the answer's text in `summary` instead of `answer`.
"""
        ),
        agent(
            "--out summary",
            "Summarize what we found in three bullet points for the regional managers.",
        ),
        md(
            """
## 6. What did the model do? `%agent log`

Every run is kept in the kernel: the prompt, each model reply, each tool call with its
arguments, status, duration, a preview of its result and the variable it was bound to,
and the tokens (and cost, where the provider reports it). `%agent log` returns it as a
DataFrame, one row per step; `%agent log --save runs.jsonl` writes the same rows as JSON
Lines. Keys, header values and tokens never appear in it.
"""
        ),
        code(
            """
log = %agent log
log[["run", "step", "kind", "server", "tool", "variable", "status", "input_tokens"]]
""",
            tags=AGENT_TAGS,
        ),
        md(
            """
## 7. Replay without a model: `%agent export`

`%agent export` turns a run into ordinary code: one `%mcp call` line per tool call,
binding the same variable, and the code blocks that ran. In JupyterLab and terminal
IPython it lands in the next cell; `--to FILE` writes it to a file instead. Run 2 is the
targets cell (the `run` column above):
"""
        ),
        code(
            """
REPLAY = Path("eda_replay.ipy")
%agent export --run 2 --to $REPLAY
""",
            tags=AGENT_TAGS,
        ),
        code(
            """
# NBVAL_CHECK_OUTPUT
print(REPLAY.read_text() if REPLAY.exists() else "(no run to export: no key?)")
"""
        ),
        md(
            """
That code needs no model and no key, only the server. Run it, and check that it
rebuilds exactly the tables the model fetched (the names come from the log):
"""
        ),
        code(
            """
# NBVAL_CHECK_OUTPUT
if REPLAY.exists():
    names = log.query("run == 2").variable.dropna().tolist()
    fetched = {name: globals().pop(name) for name in names}
    %run $REPLAY
    for name, frame in fetched.items():
        pd.testing.assert_frame_equal(globals()[name], frame)
    print("Rebuilt without a model, equal to the agent's tables:", ", ".join(fetched))
    REPLAY.unlink()
"""
        ),
        md(
            """
## 8. The same question in code mode

With `--code` the model gets one tool, "run Python in this kernel", instead of the
servers' tools. In that code every server is an object whose tools are functions
(`data.query_db(sql=...)` returns the same DataFrame as `%mcp call`), so the model can
fetch both tables, join them in pandas and print only the summary it needs: the rows
never travel through the model. Each block shows as a collapsible block with its code
and output. Normally each one asks before it runs: the code waits in an editable box
with *Run* and *Deny* (edit it, and your version runs);
`--approve never` lets this tutorial run unattended, so use it only with code you would
run anyway.
"""
        ),
        agent(
            "--code --new --approve never",
            """
Compare 2025 revenue with the targets per region: fetch targets_2025.csv and the
quarterly revenue of completed and shipped orders, join them in pandas and show the
attainment per region.
""",
        ),
        md(
            """
The code's variables (`targets`, `actuals`, `comparison`, `by_region`) are in the
notebook now. Exported, the run is that code preceded by `%mcp functions`, which binds
the same server objects for ordinary cells, so it reruns without a model:
"""
        ),
        code(
            """
CODE_REPLAY = Path("eda_code_replay.ipy")
%agent export --to $CODE_REPLAY
""",
            tags=AGENT_TAGS,
        ),
        code(
            """
# NBVAL_CHECK_OUTPUT
if CODE_REPLAY.exists():
    print(CODE_REPLAY.read_text())
    fetched = by_region.copy()
    %run $CODE_REPLAY
    pd.testing.assert_frame_equal(by_region, fetched)
    print("Rebuilt without a model, equal to the agent's by_region")
    CODE_REPLAY.unlink()
"""
        ),
        md(
            """
`%%agent --new` would start a fresh conversation. Stop the server when done:
"""
        ),
        code("%mcp disconnect --all"),
    ]


# ---------------------------------------------------------------------------
# servers and models

MCP_JSON = """
```json
{
  "mcpServers": {
    "files": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "./data"]
    },
    "sqlite": {
      "command": "uvx",
      "args": ["--with", "mcp<2", "mcp-server-sqlite", "--db-path", "sales.db"]
    },
    "time": {"command": "uvx", "args": ["mcp-server-time"]},
    "remote": {
      "url": "https://example.com/mcp",
      "headers": {"Authorization": "Bearer ${MY_TOKEN}"}
    }
  }
}
```
"""


def servers_and_models() -> list[nbformat.NotebookNode]:
    return [
        md(
            """
# Connecting other servers and models

The quickstart used one built-in server and one model. Real work mixes servers
(a database, a file system, a remote API behind a token) and sometimes models. This
notebook shows:

1. local (stdio) servers from an **`mcpServers` file**, the format Claude Desktop,
   Cursor, mcphost and VS Code use;
2. a **remote server over streamable HTTP**, with an `Authorization` header whose
   token stays in an environment variable;
3. **switching providers** in the middle of a conversation, and limiting which
   servers the model may use;
4. **approval** before the model runs a tool that can change data;
5. **`%mcp log`**, to see what a server said.

To run anywhere without installing anything, every server here is `mcp_magic`'s own
built-in server, started in the different ways a real server would be; the forms for
popular npm and PyPI servers are shown alongside.
"""
        ),
        code(
            """
import atexit
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mcp_magic

%load_ext mcp_magic
"""
        ),
        code(MODEL_CELL),
        md(
            key_help("")
            + """
Section 3 also talks to `openai:gpt-4o-mini`, which needs `OPENAI_API_KEY`; change that
cell's model string to one your key reaches. (CI points both `OPENROUTER_BASE_URL` and
`OPENAI_BASE_URL` at its local stand-in model, so both providers answer there.)
"""
        ),
        code(KEY_CELL),
        md(
            """
## 1. Servers from an `mcpServers` file

Most MCP clients describe their servers in one JSON file. A typical one, with the
reference filesystem server from npm, the SQLite and time servers from PyPI (run by
[uv](https://docs.astral.sh/uv/)'s `uvx`, each in its own environment) and a remote
server:
"""
            + MCP_JSON
            + """
`%mcp connect --config FILE` connects every server in such a file (or `--config FILE
NAME ...`, some of them); one that fails to start is reported without stopping the
others. `${MY_TOKEN}` and `$MY_TOKEN` are read from the kernel's environment when the
server connects, so the file holds no secret.

Here we write a file with two servers that need no download: the built-in server
serving a copy of the sample files, and the same server on a **writable** scratch copy
of the sample database, for section 4. `sys.executable` is this kernel's Python, so the
servers run in the same environment; `cwd` is relative to the file.
"""
        ),
        code(
            """
SAMPLE = Path(mcp_magic.__file__).parent / "data"
WORK = Path(tempfile.mkdtemp(prefix="mcp-magic-tutorial-"))
atexit.register(shutil.rmtree, WORK, ignore_errors=True)  # removed with the kernel, or at the end
shutil.copytree(SAMPLE / "files", WORK / "files")
shutil.copy(SAMPLE / "sample.db", WORK / "scratch.db")

config = {
    "mcpServers": {
        "files": {
            "command": sys.executable,
            "args": ["-m", "mcp_magic.server", "--root", "files"],
            "cwd": ".",
        },
        "scratch": {
            "command": sys.executable,
            "args": ["-m", "mcp_magic.server", "--db", "scratch.db", "--allow-writes"],
            "cwd": ".",
        },
    }
}
config_file = WORK / "mcp.json"
with open(config_file, "w") as file:
    json.dump(config, file, indent=2)
"""
        ),
        code("%mcp connect --config $config_file"),
        code(
            '# NBVAL_CHECK_OUTPUT\ncsvs = %mcp call files.list_files path="." pattern="*.csv"\n'
            'csvs[["name", "type", "size"]]'
        ),
        md(
            """
## 2. A remote server over streamable HTTP

Remote servers are reached by URL: streamable HTTP by default, SSE when the URL ends in
`/sse` (or with `--transport sse`). To have one to talk to, start the built-in server
as a web server on a free port of this machine; it stands in for a server on another
host:
"""
        ),
        code(
            """
def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port):
    with socket.socket() as client:
        return client.connect_ex(("127.0.0.1", port)) == 0


port = free_port()
server = subprocess.Popen(
    [sys.executable, "-m", "mcp_magic.server", "--transport", "http", "--port", str(port)],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
atexit.register(server.terminate)  # stopped with the kernel, if not before

deadline = time.monotonic() + 30
while not listening(port):  # wait until it accepts connections
    if server.poll() is not None or time.monotonic() > deadline:
        raise RuntimeError("the HTTP server did not start")
    time.sleep(0.1)
url = f"http://127.0.0.1:{port}/mcp"
"""
        ),
        md(
            """
Servers on the internet usually want a token. `--header "K: V"` sends a header with
every request, and `$NAME` in its value is read from the kernel's environment when the
server connects, so the token itself never appears in the notebook, in `%mcp list`, in
logs or in error messages. The token below is a placeholder (this demo server ignores
it); you would set the variable before starting Jupyter, or with `getpass` as above.

One IPython detail: IPython fills `$name` and `{expr}` in a magic's line from *Python*
variables, here `$url`. In a line that does that, write `$$` for a `$` that should reach
`mcp_magic` as is. (`%mcp connect remote https://example.com/mcp --header
"Authorization: Bearer $TOKEN"`, with no Python variable in the line, needs no doubling.)
"""
        ),
        code(
            """
os.environ["DEMO_TOKEN"] = "placeholder-token"  # in real life: set outside the notebook
%mcp connect remote $url --header "Authorization: Bearer $$DEMO_TOKEN"
"""
        ),
        code(
            """
# NBVAL_CHECK_OUTPUT
%mcp call remote.query_db sql="select channel, count(*) as orders from orders group by channel"
"""
        ),
        md("Three servers are connected now, over two transports:"),
        code("%mcp list"),
        md(
            """
## 3. Ask, then switch providers

By default the model gets the tools of every connected server. `--allow` (and `--deny`)
take server names or `server.tool` globs, e.g. `--allow remote` or `--deny
"*.list_files"`.
"""
        ),
        agent("--allow remote", "Which sales channel brings the most revenue?"),
        md(
            """
Naming another model in the cell switches to it for this and the following cells, and
the conversation carries over: the new model sees everything so far, so "that" below
makes sense to it. Any `provider:model` works; `mcp_magic` speaks each provider's wire
format (OpenAI chat completions, Anthropic Messages, the Responses API).
"""
        ),
        agent(
            "openai:gpt-4o-mini --allow remote",
            "Has that changed in 2025? Which channel grew fastest compared with 2024?",
        ),
        md(
            "A later cell never overwrites an earlier cell's tables: `result_1` still holds "
            "the first answer's table, and the second model's is `result_2` (the `else` is "
            "for a run without a key):"
        ),
        code(
            """
# NBVAL_CHECK_OUTPUT
result_2 if "result_2" in globals() else "no table: the %%agent cell did not run (no key?)"
"""
        ),
        md(
            """
Any OpenAI-compatible server works too, for example a local vLLM, LM Studio or
llama.cpp server: give its URL per cell, or name it once.

```python
%%agent local:qwen2.5-7b-instruct --base-url http://localhost:8000/v1
...
%config McpMagics.endpoints = {"lmstudio": "http://localhost:1234/v1"}   # then lmstudio:MODEL
```

`<PROVIDER>_BASE_URL` (e.g. `OPENROUTER_BASE_URL`) sends a provider's requests to another
endpoint; that is how CI runs these notebooks against a local stand-in model.

## 4. Approval before writes

The `scratch` server was started with `--allow-writes`, so its `query_db` is not marked
read-only. With `--approve writes`, `mcp_magic` asks before running such a tool (use
`--approve always` to ask for every call). In JupyterLab the question appears in the
cell with *Allow* and *Deny* buttons, and *Run All* waits there for you; a reply typed in
its box and sent is given to the model *instead of* the tool's result (in terminal
IPython it is a prompt: `y`, `n`, or the reply). The model is told when a call was
refused.

When nobody can answer, as when this notebook was executed to save its outputs (or under
nbval or papermill), the call is denied rather than left waiting, and the cell says so:
"""
        ),
        agent(
            "--allow scratch --approve writes",
            "Keep a note in the scratch database: create a table notes with one row\n"
            "saying that South missed its 2025 revenue target.",
        ),
        md("The scratch database is unchanged (unless you approved the call yourself):"),
        code(
            '# NBVAL_CHECK_OUTPUT\n%mcp call scratch.query_db sql="select name from '
            "sqlite_master where name = 'notes'\""
        ),
        md(
            """
## 5. Logs

When a server misbehaves, `%mcp log NAME` shows what it wrote to stderr and the log
messages it sent. The built-in server logs the calls it refuses, so give it one to
refuse: a write on the read-only `files` server. On its own in a cell, that shows one
red line; here we catch the error (an ordinary exception) so the notebook goes on.
"""
        ),
        code(
            """
try:
    %mcp call files.query_db sql="drop table orders"
except Exception as error:
    print(f"{type(error).__name__}: {error}")
"""
        ),
        code("%mcp log files"),
        with_image(md(
            """
## 6. A tool with a view (MCP Apps)

Some servers give a tool an interactive **view**: a chart, a form, a map (the MCP Apps
extension). The tool names a `ui://` resource holding HTML; `mcp_magic` tells servers it
can show views, reads that resource when the tool is called and shows it in the cell,
above the tool's result, in a sandboxed frame: the view has no access to the notebook
page, and it may reach the network only where its server declared it. Buttons in the
view call tools through this kernel's session; a tool that does not say it only reads
asks you first (Allow / Deny under the view), and so does a link the view wants to open.
The view follows JupyterLab's light or dark theme.

![A tool's view in JupyterLab](IMAGE:apps_view.png)

A server with a view is an ordinary server plus an HTML page. Here is a small one, built
with the Python SDK's `Apps`: `region_chart(year)` reads the sample database and its
view draws the totals as bars; the year buttons in the view call the tool again. First
the page, which speaks the MCP Apps protocol (JSON-RPC over `postMessage`) with the host:
"""
        ), "apps_view.png"),
        code(
            """
VIEW_HTML = \'\'\'
<!DOCTYPE html><html><head><style>
  body { font: 13px sans-serif; margin: 8px; color: var(--color-text-primary, #222); }
  .bar { background: #4a90d9; height: 18px; margin: 3px 0; color: white; padding-left: 4px; }
</style></head><body>
<div><b id="title"></b> <button data-year="2024">2024</button>
<button data-year="2025">2025</button></div><div id="bars"></div>
<script>
let next = 1;
const waiting = {};
const send = (msg) => parent.postMessage({jsonrpc: "2.0", ...msg}, "*");
const ask = (method, params) => new Promise((done) => {
  waiting[next] = done;
  send({id: next++, method, params});
});
function draw(result) {
  if (!result || result.isError) return;
  const data = result.structuredContent || JSON.parse(result.content[0].text);
  document.getElementById("title").textContent = `Revenue by region, ${data.year}`;
  const top = Math.max(...data.rows.map((row) => row.total));
  document.getElementById("bars").innerHTML = data.rows.map((row) =>
    `<div class="bar" style="width:${80 * row.total / top}%">${row.region} ${row.total}</div>`
  ).join("");
  const height = document.body.scrollHeight + 16;
  send({method: "ui/notifications/size-changed", params: {height}});
}
window.addEventListener("message", (event) => {
  const msg = event.data || {};
  if (msg.id in waiting) {
    waiting[msg.id](msg.result);
    delete waiting[msg.id];
  } else if (msg.method === "ui/notifications/tool-result") {
    draw(msg.params);
  }
});
for (const button of document.querySelectorAll("button")) {
  button.onclick = async () => draw(await ask("tools/call",
    {name: "region_chart", arguments: {year: Number(button.dataset.year)}}));
}
ask("ui/initialize", {appInfo: {name: "regions", version: "1"}, appCapabilities: {},
                      protocolVersion: "2026-01-26"})
  .then(() => send({method: "ui/notifications/initialized", params: {}}));
</script></body></html>
\'\'\'
(WORK / "regions.html").write_text(VIEW_HTML);
"""
        ),
        md("Then the server, which serves the page as the tool's view:"),
        code(
            """
SERVER_PY = \'\'\'
import sqlite3
import sys
from pathlib import Path

from mcp.server.apps import Apps
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

DB = sys.argv[1]
VIEW = "ui://charts/regions.html"
apps = Apps()


@apps.tool(resource_uri=VIEW, annotations=ToolAnnotations(read_only_hint=True),
           description="Revenue by region for one year, drawn as bars in a view.")
def region_chart(year: int = 2025) -> dict:
    with sqlite3.connect(DB) as db:
        rows = db.execute(
            "select region, round(sum(amount)) from sales where order_date like ?"
            " group by region order by 2 desc", (f"{year}%",)).fetchall()
    return {"year": year, "rows": [{"region": r, "total": t} for r, t in rows]}


apps.add_html_resource(VIEW, Path(__file__).with_name("regions.html").read_text())
MCPServer(name="charts", extensions=[apps]).run("stdio")
\'\'\'
(WORK / "charts_server.py").write_text(SERVER_PY);
"""
        ),
        code("%mcp connect charts -- {sys.executable} {WORK}/charts_server.py {WORK}/scratch.db"),
        md(
            """
Calling the tool shows the view, then the result as usual (here a table, ready for the
next cell). A saved notebook, GitHub, nbviewer and an HTML export keep the result and
one line saying a view exists; the view itself is live while the kernel runs.
"""
        ),
        code("# NBVAL_CHECK_OUTPUT\n%mcp call charts.region_chart year=2025"),
        md(
            """
## Clean up

`%mcp disconnect --all` stops the stdio servers this kernel started; the HTTP server
was started by us, so we stop it ourselves, and remove the scratch directory.
"""
        ),
        code(
            """
%mcp disconnect --all
server.terminate()
server.wait(timeout=10)
shutil.rmtree(WORK, ignore_errors=True)
"""
        ),
    ]


NOTEBOOK_CELLS = {
    "quickstart": quickstart,
    "eda_with_live_tools": eda,
    "servers_and_models": servers_and_models,
}


# ---------------------------------------------------------------------------
# writing and executing


def build(stem: str) -> nbformat.NotebookNode:
    cells = NOTEBOOK_CELLS[stem]()
    for index, cell in enumerate(cells):
        cell["id"] = f"{stem[:40]}-{index:02d}"  # stable ids: rebuilding changes no ids
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


@contextlib.contextmanager
def local_model() -> Iterator[str]:
    """Start tests/fakes/notebook_model.py; yield its base URL; stop it."""
    with tempfile.TemporaryDirectory(prefix="notebook-model-") as tmp:
        port_file = Path(tmp) / "port"
        process = subprocess.Popen(
            [sys.executable, str(NOTEBOOK_MODEL), "--port", "0", "--port-file", str(port_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("tests/fakes/notebook_model.py did not start")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{int(port_file.read_text())}/v1"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def model_environment(url: str) -> dict[str, str]:
    """What the kernel needs so that every provider the tutorials name reaches `url`."""
    return {
        "OPENROUTER_BASE_URL": url,
        "OPENROUTER_API_KEY": DUMMY_KEY,
        "OPENAI_BASE_URL": url,
        "OPENAI_API_KEY": DUMMY_KEY,
    }


def clean_outputs(notebook: nbformat.NotebookNode) -> None:
    """Drop widget views (their state is not saved): the static fallbacks remain."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            data = output.get("data")
            if data is not None:
                data.pop(WIDGET_VIEW, None)
                if not data:
                    continue
            kept.append(output)
        cell.outputs = kept


def problems(notebook: nbformat.NotebookNode) -> list[str]:
    """Agent cells that failed, and machine paths that leaked into outputs."""
    found = []
    leaks = {str(ROOT), tempfile.gettempdir().rstrip("/") + "/", str(Path.home())}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        text = nbformat.writes(nbformat.from_dict({"outputs": cell.outputs}))
        if cell.source.startswith("%%agent") and (
            "UsageError" in text or any(o.output_type == "error" for o in cell.outputs)
        ):
            found.append(f"cell {index}: the agent cell failed:\n{text[:2000]}")
        for leak in leaks:
            if leak and leak in text:
                found.append(f"cell {index}: output contains the machine path {leak!r}")
    return found


def execute(notebook: nbformat.NotebookNode, path: Path, timeout: int) -> None:
    from nbclient import NotebookClient

    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        store_widget_state=False,
    )
    client.execute()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"which notebooks ({', '.join(NOTEBOOK_CELLS)})")
    parser.add_argument("--execute", action="store_true", help="run them and save outputs")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args(argv)
    names = args.names or list(NOTEBOOK_CELLS)
    unknown = [n for n in names if n not in NOTEBOOK_CELLS]
    if unknown:
        parser.error(f"unknown notebook(s): {', '.join(unknown)}")

    if not args.execute:
        for stem in names:
            path = NOTEBOOKS / f"{stem}.ipynb"
            nbformat.write(build(stem), path)
            print(f"wrote {path.relative_to(ROOT)}")
        return 0

    failed = False
    with local_model() as url:
        os.environ.update(model_environment(url))
        for key in ("MCP_MAGIC_MODEL", "MPLBACKEND"):
            os.environ.pop(key, None)  # the notebooks' defaults, and the inline backend
        bin_dir = str(Path(sys.executable).parent)
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        for stem in names:
            path = NOTEBOOKS / f"{stem}.ipynb"
            notebook = build(stem)
            started = time.monotonic()
            execute(notebook, path, args.timeout)
            clean_outputs(notebook)
            found = problems(notebook)
            nbformat.validate(notebook)
            nbformat.write(notebook, path)
            took = time.monotonic() - started
            print(f"executed {path.relative_to(ROOT)} in {took:.1f} s")
            for problem in found:
                print(f"  PROBLEM {problem}", file=sys.stderr)
            failed |= bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
