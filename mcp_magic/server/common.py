"""What every part of the data server shares: its settings, limits and failures."""

import threading
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB = Path(__file__).resolve().parent.parent / "data" / "sample.db"
DEFAULT_LIMIT = 100_000
DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_VALUE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_ANSWER_BYTES = 32 * 1024 * 1024
WRITES_HINT = "start the server with --allow-writes to permit writes"


class ToolFailure(Exception):
    """An anticipated failure: its message goes to the client as an ``isError`` result."""


@dataclass(frozen=True)
class Settings:
    db: Path
    root: Path
    allow_writes: bool = False
    timeout: float = DEFAULT_TIMEOUT  # seconds any one tool call may work
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES  # one SQL value, one CSV line
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES  # the rows of one answer, roughly as JSON


class Deadline:
    """The end of one tool call's time: checked by loops, set off early by a cancellation."""

    def __init__(self, tool: str, seconds: float, cancel: threading.Event | None = None) -> None:
        self.tool = tool
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.cancel = cancel

    def passed(self) -> bool:
        return time.monotonic() > self.end or (self.cancel is not None and self.cancel.is_set())

    def check(self) -> None:
        if self.passed():
            raise self.failure()

    def failure(self) -> ToolFailure:
        if time.monotonic() <= self.end and self.cancel is not None and self.cancel.is_set():
            return ToolFailure(f"{self.tool} was cancelled")
        return ToolFailure(f"{self.tool} stopped after {self.seconds:g} s, the server's time "
                           "limit per call (--timeout)")


def shorten(text: str, limit: int = 60) -> str:
    """`repr(text)`, cut to about `limit` characters for one-line messages."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"
