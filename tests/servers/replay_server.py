"""An MCP server (stdio) that answers exactly as real data servers did.

Each file in tests/data/shapes/ becomes a tool named after it (``mduck__execute_query__
big_3000_rows``) with that server's ``outputSchema``; calling it returns the captured
CallToolResult as it was received: content, structured content and ``isError``.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

SHAPES = Path(__file__).resolve().parent.parent / "data" / "shapes"
ENTRIES = {
    path.stem: json.loads(path.read_text(encoding="utf-8"))
    for path in sorted(SHAPES.glob("*.json"))
}
ENTRIES = {name: entry for name, entry in ENTRIES.items() if "content" in entry["result"]}


async def list_tools(ctx, params) -> types.ListToolsResult:
    return types.ListToolsResult(
        tools=[
            types.Tool(name=name, description=f"{entry['server']}.{entry['tool']} as captured",
                       input_schema={"type": "object", "properties": {}},
                       output_schema=entry.get("output_schema"))
            for name, entry in ENTRIES.items()
        ]
    )


async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    return types.CallToolResult.model_validate(ENTRIES[params.name]["result"])


server = Server("replay-server", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
