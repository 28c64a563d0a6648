"""A server that is not mcp_magic's, answering tables as Arrow and Parquet, for tests.

Tools: `arrow_table` (an Arrow IPC stream embedded), `parquet_table` (Parquet embedded),
`linked_table` (a resource link to `tables://sample.parquet`, read with resources/read),
`file_table` (a file:// link to a Parquet file it writes next to `ARROW_SERVER_DIR`) and
`plain` (JSON structured content). It ignores the client's extensions: it always answers
so. Run over stdio.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from mcp.server.mcpserver import MCPServer
from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ResourceLink,
    TextContent,
)

server = MCPServer(name="arrow-server")


def sample() -> pa.Table:
    return pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "score": pa.array([1.5, None, -2.0], pa.float64()),
        "count": pa.array([10, None, 30], pa.int64()),
        "name": pa.array(["a", None, "ccc"], pa.string()),
        "day": pa.array([dt.date(2024, 1, 2), None, dt.date(2025, 12, 31)], pa.date32()),
        "at": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5), None,
                        dt.datetime(2025, 6, 7, 8, 9, 10, 123456)], pa.timestamp("us")),
    })


def stream_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, sample().schema) as writer:
        writer.write_table(sample())
    return sink.getvalue().to_pybytes()


def parquet_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(sample(), sink)
    return sink.getvalue().to_pybytes()


def embedded(data: bytes, mime: str, uri: str) -> CallToolResult:
    blob = BlobResourceContents(uri=uri, mime_type=mime, blob=base64.b64encode(data).decode())
    return CallToolResult(content=[TextContent(type="text", text="3 rows, as a binary table"),
                                   EmbeddedResource(type="resource", resource=blob)])


@server.tool()
def arrow_table() -> CallToolResult:
    return embedded(stream_bytes(), "application/vnd.apache.arrow.stream", "tables://a.arrows")


@server.tool()
def parquet_table() -> CallToolResult:
    return embedded(parquet_bytes(), "application/vnd.apache.parquet", "tables://a.parquet")


@server.tool()
def linked_table() -> CallToolResult:
    link = ResourceLink(type="resource_link", uri="tables://sample.parquet", name="sample",
                        mime_type="application/vnd.apache.parquet")
    return CallToolResult(content=[TextContent(type="text", text="see the link"), link])


@server.tool()
def file_table() -> CallToolResult:
    path = Path(os.environ["ARROW_SERVER_DIR"]) / "sample table.parquet"
    pq.write_table(sample(), path)
    link = ResourceLink(type="resource_link", uri=path.as_uri(), name="sample")
    return CallToolResult(content=[TextContent(type="text", text="written"), link])


@server.tool()
def plain() -> dict[str, int]:
    return {"answer": 42}


@server.resource("tables://sample.parquet", mime_type="application/vnd.apache.parquet")
def sample_parquet() -> bytes:
    return parquet_bytes()


if __name__ == "__main__":
    server.run("stdio")
