"""The provider-neutral contract between the agent loop and each wire format.

The loop keeps the conversation as a list of neutral `Message`s; a provider turns it
into its wire format, sends it with the tools, streams text back through `on_text`,
and answers with one `Turn`. Retries of transient failures happen inside
`complete()`; what escapes it is a `ProviderError` with a one-line message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass
class ToolCall:
    """A tool call the model asked for. `arguments` is the raw JSON text it sent."""

    id: str
    name: str
    arguments: str


@dataclass
class Message:
    """One entry of the conversation, whatever the provider.

    - user: `content` is the prompt.
    - assistant: `content` is its text (may be empty), `tool_calls` what it asked for.
    - tool: `content` is the result text for `tool_call_id` (`name` is the tool's name).
    `extra` carries provider-specific items that must go back verbatim (e.g. the
    Responses API's hosted `mcp_call` items, Anthropic thinking blocks).
    """

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    extra: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ToolSpec:
    """A tool offered to the model (name already qualified and sanitized)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class HostedMcpServer:
    """A remote MCP server the provider itself calls (Responses API `type: mcp`)."""

    label: str
    url: str
    description: str = ""
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    allowed_tools: list[str] | None = None


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None  # in USD, when the provider reports it

    def add(self, other: Usage | None) -> None:
        if other is None:
            return
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        if other.cost is not None:
            self.cost = (self.cost or 0.0) + other.cost

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class HostedCall:
    """A tool call the provider ran itself (hosted MCP), reported for display."""

    server: str
    tool: str
    arguments: str
    output: str | None
    error: str | None = None


@dataclass
class Turn:
    """One model reply: text, tool calls to run, usage, and hosted calls already run."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    hosted_calls: list[HostedCall] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    model: str | None = None  # the model the provider says answered (OpenRouter may route)


@dataclass
class Request:
    """Everything one model request needs."""

    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    system: str | None = None
    temperature: float | None = None
    stream: bool = True
    hosted_servers: list[HostedMcpServer] = field(default_factory=list)
    max_tokens: int | None = None
    idle_timeout: float | None = None
    """Seconds a reply may go without data (None: the provider's own `timeout`)."""
    deadline: float | None = None
    """`time.monotonic()` by which the whole run must be over (bounds long waits)."""


TextSink = Callable[[str], None]
"""Receives streamed text deltas as they arrive (called on the loop thread)."""


class ProviderError(Exception):
    """A provider failure worth one line: bad key, bad request, retries exhausted."""


class Provider(Protocol):
    """One wire format. Implementations live in this package, one module each."""

    name: str
    model: str

    async def complete(self, request: Request, on_text: TextSink | None = None) -> Turn: ...

    async def aclose(self) -> None: ...


def interleave(known: list[dict], kept: list[dict], key: str) -> list[dict]:
    """Re-insert provider items kept in `Message.extra` at the positions they had."""
    result = list(known)
    for entry in sorted(kept, key=lambda e: e.get("index", 0)):
        result.insert(min(int(entry.get("index", 0)), len(result)), entry[key])
    return result
