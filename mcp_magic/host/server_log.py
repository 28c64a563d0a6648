"""What a server wrote: its stderr file, made readable for `%mcp log` and error lines.

Servers on the 1.x Python SDK do not know the 2026 `server/discover` request that the
client sends first to learn the protocol version. Each logs a pydantic error of 60 to
100 lines for it, then answers with an error, and the client falls back to
`initialize`. That noise comes before anything the server itself has to say, so it is
folded into one line when the log is shown. (The server writes its stderr straight
into the log file, so it cannot be filtered as it is written.)
"""

from __future__ import annotations

import re

NOTE_PREFIX = "[mcp_magic]"
"""Lines the host itself writes into a server's log start with this."""

PROBE_METHOD = "server/discover"

_PROBE_START = re.compile(r"Failed to validate (?:request|message)|validation errors? for \w+")
_PYDANTIC_LOCATION = re.compile(r"^[A-Za-z_][\w.\[\]'\-,]*$")
_RICH_RECORD = re.compile(r"^\s+(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\s{2,}\S")


def _continues_block(lines: list[str], index: int) -> bool:
    """A line of a pydantic error report: indented detail, or an error's location
    (a dotted path followed by its indented message)."""
    line = lines[index]
    if _RICH_RECORD.match(line):
        return False  # the next log record (rich leaves out a repeated time)
    if line[:1].isspace() and line.strip():
        return True
    following = lines[index + 1] if index + 1 < len(lines) else ""
    return bool(_PYDANTIC_LOCATION.match(line)) and following[:1].isspace()


def fold_probe_noise(lines: list[str], protocol: str | None) -> list[str]:
    """Replace each block of version-probe validation errors with one note."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not _PROBE_START.search(line):
            out.append(line)
            index += 1
            continue
        end = index + 1
        while end < len(lines) and _continues_block(lines, end):
            end += 1
        block = lines[index:end]
        if not any(PROBE_METHOD in part for part in block):
            out.append(line)
            index += 1
            continue
        speaks = f"server speaks protocol {protocol}" if protocol else "server/discover refused"
        out.append(
            f"{NOTE_PREFIX} {speaks} ({len(block)} lines of version-probe errors folded)"
        )
        index = end
    return out


def last_server_line(lines: list[str], limit: int = 200) -> str:
    """The server's own last non-blank line, not a note of the host's; cut to `limit`."""
    for line in reversed(lines):
        text = line.strip()
        if text and not text.startswith(NOTE_PREFIX):
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""
