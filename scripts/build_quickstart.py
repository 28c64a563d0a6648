"""Write notebooks/quickstart.ipynb from the cells below (then run it to save outputs)."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    new_markdown_cell(
        "# Quickstart: MCP tools in a notebook\n\n"
        "`mcp_magic` connects [Model Context Protocol](https://modelcontextprotocol.io) "
        "servers to this kernel. You call their tools from a cell, and tabular answers come "
        "back as pandas DataFrames.\n\n"
        "This notebook uses the **built-in data server**, which ships with the package: a "
        "small sales database (regions, customers, products, orders) and a file lister. "
        "No account and no network needed."
    ),
    new_code_cell("%load_ext mcp_magic"),
    new_markdown_cell(
        "`%mcp connect NAME --builtin` starts the built-in server as a child process of "
        "this kernel and opens an MCP session with it. Other servers connect the same way: "
        "`%mcp connect NAME -- COMMAND ARGS` for a local (stdio) server, `%mcp connect NAME "
        "URL` for a remote one."
    ),
    new_code_cell("%mcp connect data --builtin"),
    new_markdown_cell("What can it do? `%mcp tools` lists each tool with its parameters "
                      "(`?` marks optional ones)."),
    new_code_cell("%mcp tools data"),
    new_markdown_cell(
        "## Query the database\n\n"
        "`%mcp call SERVER.TOOL key=value ...` calls a tool. `query_db` answers with a "
        "table, so the result is a DataFrame, and an assignment binds it like any other "
        "value."
    ),
    new_code_cell(
        'revenue = %mcp call data.query_db sql="select region, round(sum(amount), 2) as '
        'total from sales group by region order by total desc"\nrevenue'
    ),
    new_markdown_cell("The column types come from the server, so numbers are numbers and "
                      "dates are dates:"),
    new_code_cell("# NBVAL_CHECK_OUTPUT\nrevenue.dtypes"),
    new_code_cell(
        'orders = %mcp call data.query_db sql="select order_id, order_date, status from '
        'orders"\nprint(orders.dtypes)\n'
        'orders.groupby(orders.order_date.dt.year).size()'
    ),
    new_markdown_cell(
        "The database is read-only unless the server was started with `--allow-writes`; "
        "a write is refused with a one-line error (uncomment to try):"
    ),
    new_code_cell('# %mcp call data.query_db sql="drop table orders"'),
    new_markdown_cell(
        "## Files, resources and logs\n\n`list_files` lists files under the server's root "
        "(by default the notebook's directory) and refuses paths outside it."
    ),
    new_code_cell('files = %mcp call data.list_files path="."\nfiles[["name", "type", "size"]]'),
    new_code_cell("%mcp resources data"),
    new_code_cell("schema = %mcp read schema://database\nprint(schema[:500])"),
    new_markdown_cell(
        "`%mcp list` shows every session; `%mcp log NAME` shows what a server wrote to "
        "stderr. `%mcp disconnect --all` stops every server process."
    ),
    new_code_cell("%mcp list"),
    new_code_cell("%mcp disconnect --all"),
]


def main() -> None:
    notebook = new_notebook(cells=CELLS)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    path = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"
    nbformat.write(notebook, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
