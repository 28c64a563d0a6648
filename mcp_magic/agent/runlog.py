"""The run log: what each agent run did, kept in the kernel for audit and replay.

One `RunRecorder` per run sees every event the loop publishes (tool calls, code
blocks, model replies, notices, usage) and the few things only the loop knows (the
prompt, the model, the cell, how the run ended). Each step becomes one row, and a last
`end` row carries the run's status, duration, tokens and cost; `RunLog.frame()` is the
`%agent log` DataFrame and `RunLog.save()` writes the same rows as JSON Lines.

Secrets never enter the log: every string is redacted when it is recorded, with the
provider's key, the connected servers' header and env values, and the values of
environment variables named like keys or tokens.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..host.config import redact
from .events import (
    ApprovalRequest,
    CodeFinished,
    CodeRequest,
    Event,
    ModelReply,
    Notice,
    ToolCallFinished,
    ToolCallStarted,
    UsageReport,
)
from .providers.base import Usage

PREVIEW_LIMIT = 300  # characters of a result or output kept in a row
TEXT_LIMIT = 20_000  # characters of a prompt, reply or code kept in a row
COLUMNS = [
    "run", "step", "kind", "cell", "execution_count", "model", "time", "duration",
    "status", "server", "tool", "arguments", "variable", "text", "preview",
    "input_tokens", "output_tokens", "cost",
]  # fmt: skip
HOSTED = "run by the provider"  # the note on a tool call the provider made itself
_SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.I)


def environment_secrets(environ: Iterable[tuple[str, str]] | None = None) -> list[str]:
    """Values of environment variables whose names say they hold a key or a token."""
    items = os.environ.items() if environ is None else environ
    return [value for name, value in items if _SECRET_NAME.search(name) and len(value) >= 6]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def preview(value: Any) -> str:
    """A short text for a result: a table's shape and columns, or the start of a text."""
    if value is None:
        return ""
    if hasattr(value, "shape") and hasattr(value, "columns"):
        rows, cols = value.shape
        names = ", ".join(map(str, list(value.columns)[:20]))
        return f"{rows:,} rows × {cols} columns: {names}"
    if isinstance(value, str):
        return _clip(value, PREVIEW_LIMIT)
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return _clip(text, PREVIEW_LIMIT)


@dataclass
class Run:
    """One agent run: its settings, its steps (rows) and how it ended."""

    id: int
    prompt: str
    model: str
    cell: str | None = None  # the frontend's cell id, when it sends one
    execution_count: int | None = None
    started: str = field(default_factory=_now)
    status: str = "running"  # ok, stopped, error, interrupted
    usage: Usage = field(default_factory=Usage)
    steps: list[dict[str, Any]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)  # name → the call that bound it


class RunRecorder:
    """Turns one run's events into rows. Call it with each event, then `finish()`."""

    def __init__(self, run: Run, secrets: list[str]) -> None:
        self.run = run
        # longest first, so a secret that contains another is replaced whole
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self._rows: dict[str, dict[str, Any]] = {}  # call id → its row, until it finishes
        self._approvals: dict[str, Any] = {}  # call id → the future holding the user's answer
        self._code_seen: set[str] = set()
        self._began = time.monotonic()

    # -- redaction

    def clean(self, value: Any) -> Any:
        """`value` with every secret replaced by `***`, strings inside lists and dicts too."""
        if isinstance(value, str):
            return redact(value, self.secrets) if self.secrets else value
        if isinstance(value, dict):
            return {self.clean(k): self.clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.clean(v) for v in value]
        return value

    def _row(self, kind: str, **values: Any) -> dict[str, Any]:
        row = {column: None for column in COLUMNS}
        row.update(
            run=self.run.id,
            step=len(self.run.steps) + 1,
            kind=kind,
            cell=self.run.cell,
            execution_count=self.run.execution_count,
            model=self.run.model,
            time=_now(),
        )
        row.update({key: self.clean(value) for key, value in values.items()})
        self.run.steps.append(row)
        return row

    # -- what the loop knows

    def prompt(self) -> None:
        self._row("prompt", text=_clip(self.run.prompt, TEXT_LIMIT), status="ok")

    def finish(self, status: str, usage: Usage | None = None) -> None:
        """The last row: how the run ended, how long it took, its tokens and cost."""
        self.run.status = status
        if usage is not None:
            self.run.usage = usage
        for row in self._rows.values():  # stopped before they finished
            row["status"] = "cancelled"
        self._rows.clear()
        self._row(
            "end",
            status=status,
            duration=round(time.monotonic() - self._began, 3),
            input_tokens=self.run.usage.input_tokens,
            output_tokens=self.run.usage.output_tokens,
            cost=self.run.usage.cost,
        )

    # -- events

    def __call__(self, event: Event) -> None:
        if isinstance(event, ToolCallStarted):
            self._tool_started(event)
        elif isinstance(event, ApprovalRequest):
            self._approvals[event.call_id] = event.reply
        elif isinstance(event, ToolCallFinished):
            self._tool(event)
        elif isinstance(event, CodeRequest):
            event.reply.add_done_callback(self._code_reply)
        elif isinstance(event, CodeFinished):
            self._code(event)
        elif isinstance(event, ModelReply):
            usage = event.usage
            self._row(
                "reply",
                text=_clip(event.text, TEXT_LIMIT),
                status="tool calls" if event.tool_calls else "answer",
                duration=round(event.duration, 3),
                input_tokens=usage.input_tokens if usage else None,
                output_tokens=usage.output_tokens if usage else None,
                cost=usage.cost if usage else None,
            )
        elif isinstance(event, Notice):
            self._row("notice", text=event.text, status=event.level)
        elif isinstance(event, UsageReport):
            self.run.usage = event.usage

    def _tool_started(self, event: ToolCallStarted) -> None:
        """A row in the order the model asked (calls finish in any order), filled in later."""
        self._rows[event.call_id] = self._row(
            "tool",
            status="running",
            server=event.server,
            tool=event.tool,
            arguments=event.arguments,
            text=HOSTED if event.hosted else None,
        )

    def _tool(self, event: ToolCallFinished) -> None:
        row = self._rows.pop(event.call_id, None)
        if row is None:  # finished without a start we saw
            row = self._row("tool", server="?", tool=event.call_id)
        status = event.status
        decision = self._decision(event.call_id)
        if decision == "answer" and status == "ok":
            status = "answered"
            row["text"] = "the user answered in the tool's place; it did not run"
        elif decision == "allow":
            row["text"] = "approved by the user"
        preview_text = event.error if event.status != "ok" else preview(event.result)
        row.update(
            status=status,
            duration=round(event.duration, 3),
            variable=event.variable,
            preview=self.clean(preview_text),
        )
        if event.variable:
            self.run.variables[event.variable] = f"{row['server']}.{row['tool']}"

    def _decision(self, call_id: str) -> str | None:
        future = self._approvals.pop(call_id, None)
        if future is None or not future.done() or future.cancelled() or future.exception():
            return None
        return getattr(future.result(), "action", None)

    def _code_reply(self, future: Any) -> None:
        if not future.cancelled() and future.exception() is None:
            result = future.result()
            if isinstance(result, CodeFinished):
                self._code(result)

    def _code(self, event: CodeFinished) -> None:
        if event.call_id in self._code_seen:  # seen both on its request and as an event
            return
        self._code_seen.add(event.call_id)
        output = event.output or ""
        if event.error:
            output = f"{output}\n{event.error}".strip()
        self._row(
            "code",
            status=event.status,
            duration=round(event.duration, 3),
            text=_clip(event.code, TEXT_LIMIT),
            variable=", ".join(event.variables) or None,
            preview=_clip(output, PREVIEW_LIMIT) if output else preview(event.result),
            arguments={"edited": True} if event.edited else None,
        )
        for name in event.variables:
            self.run.variables[name] = "code"


class RunLog:
    """Every run of one notebook's agent, in order."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def start(
        self,
        prompt: str,
        model: str,
        secrets: list[str],
        cell: str | None = None,
        execution_count: int | None = None,
    ) -> RunRecorder:
        run = Run(len(self.runs) + 1, prompt, model, cell, execution_count)
        self.runs.append(run)
        recorder = RunRecorder(run, secrets + environment_secrets())
        run.prompt = recorder.clean(prompt)
        recorder.prompt()
        return recorder

    def get(self, run: int | None = None) -> Run:
        """Run `run` (1, 2, ...; negative counts from the end), or the last one."""
        if not self.runs:
            raise LookupError("no agent runs yet in this notebook")
        if run is None:
            return self.runs[-1]
        index = run - 1 if run > 0 else run
        if run == 0 or not -len(self.runs) <= index < len(self.runs):
            raise LookupError(f"no run {run}: runs are 1 to {len(self.runs)}")
        return self.runs[index]

    def rows(self, run: int | None = None) -> list[dict[str, Any]]:
        runs = self.runs if run is None else [self.get(run)]
        return [dict(row) for r in runs for row in r.steps]

    def frame(self, run: int | None = None) -> Any:
        """One row per step (prompt, reply, tool, code, notice, end), with its run and cell."""
        import pandas as pd

        rows = self.rows(run)
        for row in rows:
            if row["arguments"] is not None:
                row["arguments"] = json.dumps(row["arguments"], ensure_ascii=False, default=str)
        frame = pd.DataFrame(rows, columns=COLUMNS).convert_dtypes()  # counts stay whole
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        return frame

    def save(self, path: str, run: int | None = None) -> int:
        """Write the rows as JSON Lines (appending to nothing: the file is replaced)."""
        rows = self.rows(run)
        with open(path, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        return len(rows)


Publish = Callable[[Event], None]


def recording(recorder: RunRecorder, publish: Publish) -> Publish:
    """A publish function that records each event before passing it on."""

    def both(event: Event) -> None:
        recorder(event)
        publish(event)

    return both
