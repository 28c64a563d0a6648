"""What every part of the data server shares: its settings and the anticipated failure."""

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB = Path(__file__).resolve().parent.parent / "data" / "sample.db"
DEFAULT_LIMIT = 100_000
DEFAULT_TIMEOUT = 120.0
WRITES_HINT = "start the server with --allow-writes to permit writes"


class ToolFailure(Exception):
    """An anticipated failure: its message goes to the client as an ``isError`` result."""


@dataclass(frozen=True)
class Settings:
    db: Path
    root: Path
    allow_writes: bool = False
    timeout: float = DEFAULT_TIMEOUT


