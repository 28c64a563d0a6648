"""Replay as code: a logged agent run as ordinary notebook cells, with no model in them.

Each tool call that ran becomes a `%mcp call` line binding the same variable, and
each code block that ran is kept as it ran; in the order they happened. The `%mcp
call` lines are written so that the magic reads them back to exactly the arguments
the model sent, whatever the values hold (quotes, `$`, braces, `#`, newlines): plain
`key=value` words when that round-trips, one JSON object otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..host.arguments import expand_variables, parse_tool_arguments, split_words, strip_comment
from ..host.config import ConfigError
from .runlog import HOSTED, Run

_PLAIN = re.compile(r"[A-Za-z0-9_.,:/@+-]+")  # a value that needs no quotes on a line
_REFERENCE = re.compile(r"\$(?=[\w.])")  # `$name`, `$.`: would expand; `$$` keeps a `$`

COMMENT_LINES = 40  # lines of a multi-line value shown in a comment above its call
Schemas = Callable[[str, str], "dict[str, Any] | None"]


def _escape_expansion(text: str) -> str:
    """Text that `$name` / `{expr}` expansion gives back unchanged."""
    text = _REFERENCE.sub("$$", text)
    return text.replace("{", "{{").replace("}", "}}")


def _word(key: str, value: Any) -> str:
    raw = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if _PLAIN.fullmatch(raw):
        return f"{key}={raw}"
    quoted = raw.replace("\\", "\\\\").replace('"', '\\"')
    return f'{key}="{_escape_expansion(quoted)}"'


def _json_word(arguments: Mapping[str, Any]) -> str:
    # JSON escapes newlines; `'` inside single quotes is written as \\u0027. A word that
    # starts with `{"` is never taken for a `{expr}` to expand, so it stays as typed.
    text = json.dumps(arguments, ensure_ascii=False, separators=(", ", ": "))
    return "'" + text.replace("'", "\\u0027") + "'"


def read_back(line: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    """What `%mcp call` makes of the words after `SERVER.TOOL` on `line` (for checking)."""
    words = split_words(expand_variables(strip_comment(line), {}))
    return parse_tool_arguments(words, schema)


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def call_arguments(arguments: Any, schema: dict[str, Any] | None) -> str:
    """The argument words for `%mcp call SERVER.TOOL ...` that read back as `arguments`."""
    if not isinstance(arguments, dict) or not arguments:
        return ""
    if not any("\n" in v or "\r" in v for v in arguments.values() if isinstance(v, str)):
        words = " ".join(_word(key, value) for key, value in arguments.items())
        try:
            if _same(read_back(words, schema), arguments):
                return words
        except ConfigError:
            pass
    return _json_word(arguments)


def call_line(
    server: str, tool: str, arguments: Any, variable: str | None, schema: dict[str, Any] | None
) -> str:
    words = call_arguments(arguments, schema)
    line = f"%mcp call {server}.{tool} {words}".rstrip()
    return f"{variable} = {line}" if variable else line


def _readable(arguments: Any) -> list[str]:
    """Comment lines showing the multi-line values of a call written as one JSON object."""
    out: list[str] = []
    for key, value in arguments.items() if isinstance(arguments, dict) else ():
        if isinstance(value, str) and "\n" in value:
            body = value.strip("\n").splitlines()
            shown = body[:COMMENT_LINES] + (["…"] if len(body) > COMMENT_LINES else [])
            out += [f"# {key}:"] + [f"#   {text}".rstrip() for text in shown]
    return out


def export_run(run: Run, schemas: Schemas | None = None) -> str:
    """The code that redoes `run` without a model: one cell's text.

    Tool calls that did not run (denied, failed, cancelled) and code blocks that were
    not approved stay out, each noted in a comment; calls the provider ran itself
    (hosted MCP) are noted too, as they ran outside the kernel.
    """
    first = run.prompt.strip().splitlines()[0] if run.prompt.strip() else ""
    if len(first) > 100:
        first = first[:100] + "…"
    lines = [f"# Run {run.id} of %agent, as code (no model needed): {first}".rstrip()]
    servers = sorted(
        {
            row["server"]
            for row in run.steps
            if row["kind"] == "tool"
            and row["status"] == "ok"
            and row["server"]
            and row["text"] != HOSTED
        }
    )
    if servers:
        lines.append(f"# servers used: {', '.join(servers)} (connect them first with %mcp connect)")
    steps = 0
    functions = False
    for row in run.steps:
        if row["kind"] == "tool":
            target = f"{row['server']}.{row['tool']}"
            if row["text"] == HOSTED:
                lines.append(f"# {target} was called by the provider, not the kernel")
                continue
            if row["status"] != "ok" or row["server"] in (None, "?"):
                lines.append(f"# skipped: {target} ({row['status']})")
                continue
            schema = schemas(row["server"], row["tool"]) if schemas else None
            line = call_line(row["server"], row["tool"], row["arguments"], row["variable"], schema)
            if line.endswith("}'"):  # one JSON object: show its multi-line values readably
                lines += _readable(row["arguments"])
            lines.append(line)
            steps += 1
        elif row["kind"] == "code":
            if row["status"] != "ok":
                lines.append(f"# skipped: a code block ({row['status']})")
                continue
            if not functions:  # the code calls tools as `server.tool(...)`
                lines.append("%mcp functions  # servers' tools as Python functions")
                functions = True
            lines.append(row["text"].rstrip())
            steps += 1
    if not steps:
        lines.append("# (nothing ran in the kernel: no tool call or code block to redo)")
    return "\n".join(lines) + "\n"
