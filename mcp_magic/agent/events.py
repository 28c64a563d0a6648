"""What the agent loop publishes while it runs, for a view to show.

The loop runs on the session thread and never touches the display; it puts these
events on a queue that the kernel's main thread drains and renders, because widgets
updated from another thread end up in the wrong cell.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from typing import Any, Literal

from .providers.base import Usage

CallStatus = Literal["running", "ok", "error", "denied", "cancelled"]


@dataclass
class TextDelta:
    """Answer text as it streams in."""

    text: str


@dataclass
class ToolCallStarted:
    call_id: str
    server: str
    tool: str
    arguments: Any  # the parsed JSON object, or the raw text when it was not valid JSON
    hosted: bool = False  # run by the provider itself (hosted MCP), not by the kernel


@dataclass
class ToolCallFinished:
    call_id: str
    status: CallStatus
    duration: float
    result: Any = None  # a DataFrame, text, or JSON-like value: what the user sees
    variable: str | None = None  # the notebook variable the result was bound to
    error: str | None = None
    raw: Any = None  # the tool's CallToolResult, for a view of the call (MCP Apps)


@dataclass
class UsageReport:
    usage: Usage
    model: str
    steps: int
    reported: bool = True  # False when no reply carried usage (shown as "not reported")
    total: Usage | None = None  # the whole conversation so far, this run included
    served_by: str | None = None  # the model the provider says answered, when not `model`


@dataclass
class ModelReply:
    """One model reply, for the run log: its text, how many tools it asked for, usage."""

    step: int
    text: str
    tool_calls: int
    usage: Usage | None
    duration: float


@dataclass
class Notice:
    """A one-line remark: a retry, a step limit reached, a call refused."""

    text: str
    level: Literal["info", "warning"] = "info"


@dataclass
class Decision:
    """The user's answer to an approval request."""

    action: Literal["allow", "deny", "answer"]
    text: str | None = None  # the reply typed in the tool's place, for "answer"


@dataclass
class ApprovalRequest:
    """The loop waits on `reply` until the main thread sets a Decision on it."""

    call_id: str
    server: str
    tool: str
    arguments: Any
    reason: str
    reply: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)


@dataclass
class ApprovalAnswered:
    """The user answered an `ApprovalRequest`: the call runs, or is denied."""

    call_id: str
    decision: Decision


@dataclass
class CodeRequest:
    """Code mode: the model asks to run Python in the kernel.

    The loop waits on `reply`; the main thread asks for approval when `ask` is set
    (allow, deny, or edit and run), runs the code in the notebook's namespace, and sets
    a `CodeFinished` on it.
    """

    call_id: str
    code: str
    ask: bool
    reply: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)


@dataclass
class CodeFinished:
    """One code block, as it ran (or did not): what the view shows and the run log keeps."""

    call_id: str
    status: CallStatus
    code: str  # the code that ran: the model's, or the user's edit of it
    duration: float = 0.0
    output: str = ""  # what it printed, bounded
    result: Any = None  # the value of its last expression, if any (a DataFrame, text, ...)
    variables: list[str] = field(default_factory=list)  # notebook names it created or rebound
    error: str | None = None  # one line, when it raised or was denied
    edited: bool = False  # the user changed the code before it ran


Event = (
    TextDelta
    | ToolCallStarted
    | ToolCallFinished
    | UsageReport
    | Notice
    | ApprovalRequest
    | ApprovalAnswered
    | CodeRequest
    | CodeFinished
    | ModelReply
)
