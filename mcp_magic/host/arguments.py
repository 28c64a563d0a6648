"""Tool arguments typed on a magic line: `key=value ...` or one JSON object.

Everything here is linear in the length of the line: `shlex.split` and IPython's
`var_expand` are not (a 1 MB value took more than 30 s), so the line is split and
its `$name` / `{expr}` references expanded by the regex scanners below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .config import ConfigError

LINE_LIMIT = 10_000_000
"""Default bound on a `%mcp` line, in characters (`%config McpMagics.line_limit`)."""


def clip(text: str, limit: int = 60) -> str:
    """`repr` of a piece of user input for an error message, cut to `limit` characters."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


def format_size(chars: int) -> str:
    """A size in characters as a reader would say it: 980 B, 20 kB, 1.2 MB."""
    if chars < 1000:
        return f"{chars} B"
    if chars < 1_000_000:
        return f"{chars / 1000:.0f} kB"
    return f"{chars / 1_000_000:.1f} MB"


def check_line_length(line: str, limit: int | None) -> None:
    """A line over the limit is refused in one line that says what to do instead."""
    if limit is not None and limit > 0 and len(line) > limit:
        raise ConfigError(
            f"the %mcp line is {format_size(len(line))}, over the {format_size(limit)} limit "
            "(%config McpMagics.line_limit); pass large values from Python: "
            "mcp_magic.Host().call(...)"
        )


# -- splitting a line into words, like a POSIX shell ---------------------------------

_SHELL_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | '(?P<single>[^']*)'
      | "(?P<double>[^"\\]*(?:\\.[^"\\]*)*)"
      | \\(?P<escaped>.)
      | (?P<plain>[^\s'"\\]+)
      | (?P<bad>['"\\])""",
    re.VERBOSE | re.DOTALL,
)
_DOUBLE_ESCAPE = re.compile(r'\\(["\\])')


_COMMENT_SCAN = re.compile(
    r"""'[^']*'|"(?:\\.|[^"\\])*"|\\.|(?P<comment>(?:^|(?<=\s))\#)|[^'"\\\#]+|.""",
    re.DOTALL,
)


def strip_comment(line: str) -> str:
    """The line without a trailing `# comment`, as a shell reads it: a `#` that starts
    a word outside quotes. `a#b`, `'#'` and `"x # y"` stay."""
    if "#" not in line:
        return line
    for match in _COMMENT_SCAN.finditer(line):
        if match.lastgroup == "comment":
            return line[: match.start()].rstrip()
    return line


def split_words(line: str) -> list[str]:
    """Shell-like words, as `shlex.split(line)` gives them, in linear time.

    `sql="select * from t"` is one word with its quotes removed; inside double quotes a
    backslash escapes only `"` and `\\`; outside quotes it escapes any character.
    """
    if not any(char in line for char in "'\"\\"):
        return line.split()  # no quoting: the same words, and much faster
    words: list[str] = []
    parts: list[str] = []
    in_word = False
    for match in _SHELL_TOKEN.finditer(line):
        kind = match.lastgroup
        if kind == "space":
            if in_word:
                words.append("".join(parts))
                parts, in_word = [], False
            continue
        if kind == "bad":
            problem = "No escaped character" if match.group() == "\\" else "No closing quotation"
            raise ConfigError(f"cannot parse arguments: {problem}")
        text = match.group(kind)
        if kind == "double":
            text = _DOUBLE_ESCAPE.sub(r"\1", text)
        parts.append(text)
        in_word = True
    if in_word:
        words.append("".join(parts))
    return words


# -- $name and {expr} from the notebook's namespace ----------------------------------

_RAW_WORD = re.compile(
    r"""(?:[^\s'"\\]+|'[^']*'|"[^"\\]*(?:\\.[^"\\]*)*"|\\.|['"\\])+""", re.DOTALL
)
"""A word of the line before its quotes are removed (the unit that expands or not)."""
_PIECE = re.compile(
    r"""(?P<quoted>'[^']*')
      | (?P<dollars>\$\$(?=[\w.]))
      | \$(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)
      | (?P<open>\{\{)
      | (?P<close>\}\})
      | \{(?P<expr>[^{}]*)\}
      | (?P<lone>[{}])
      | (?P<text>[^'${}]+|[$'])""",
    re.VERBOSE | re.DOTALL,
)
_CONVERSION = re.compile(r"(.*)!([rsa])\s*$", re.DOTALL)


class _Unexpanded(Exception):
    """This word is not meant for expansion (JSON, a stray brace): keep it as typed."""


def expand_variables(line: str, namespace: Mapping[str, Any]) -> str:
    """IPython's `$name` / `{expr}` expansion of a magic line, word by word, linear.

    As in IPython: `$$` gives `$`, `{{` and `}}` give braces, `$name` inside single
    quotes stays as typed, and a word whose expansion fails (JSON, a stray brace, an
    expression that raises) stays as typed. A name the notebook does not define stays
    too (`$TOKEN`, `${TOKEN}`), for the kernel-side environment expansion of headers
    and env values; the other references in the same word still expand.
    """
    if "$" not in line and "{" not in line and "}" not in line:
        return line
    compiled: dict[str, Any] = {}

    def word(match: re.Match[str]) -> str:
        raw = match.group()
        if "$" not in raw and "{" not in raw and "}" not in raw:
            return raw
        try:
            return _expand_word(raw, namespace, compiled, dollars=True)
        except _Unexpanded:
            return raw

    return _RAW_WORD.sub(word, line)


def _expand_word(
    text: str, namespace: Mapping[str, Any], compiled: dict[str, Any], dollars: bool
) -> str:
    out: list[str] = []
    for match in _PIECE.finditer(text):
        kind = match.lastgroup
        if kind == "text":
            out.append(match.group())
        elif kind == "quoted":
            inner = match.group()[1:-1]
            out.append("'" + _expand_word(inner, namespace, compiled, dollars=False) + "'")
        elif kind == "dollars":
            out.append("$")
        elif kind == "name":
            if not dollars:
                out.append(match.group())
                continue
            out.append(_evaluate(match.group("name"), match.group(), namespace, compiled))
        elif kind == "open":
            out.append("{")
        elif kind == "close":
            out.append("}")
        elif kind == "expr":
            out.append(_evaluate(match.group("expr"), match.group(), namespace, compiled))
        else:  # a lone brace: not a format string (JSON, a typo)
            raise _Unexpanded
    return "".join(out)


def _evaluate(
    expression: str, typed: str, namespace: Mapping[str, Any], compiled: dict[str, Any]
) -> str:
    conversion = None
    found = _CONVERSION.match(expression)
    if found:
        expression, conversion = found.group(1), found.group(2)
    try:
        code = compiled.get(expression)
        if code is None:
            code = compiled[expression] = compile(expression.strip(), "<%mcp line>", "eval")
        value = eval(code, namespace)  # noqa: S307 - the user's own notebook expression
    except NameError:
        return typed  # not a notebook name: left for environment expansion
    except Exception:
        raise _Unexpanded from None
    if conversion == "r":
        return repr(value)
    if conversion == "a":
        return ascii(value)
    return format(value, "")


def parse_target(text: str) -> tuple[str, str]:
    """`server.tool` → (server, tool). Tool names may contain dots; server names may not."""
    server, sep, tool = text.partition(".")
    if not sep or not server or not tool:
        raise ConfigError(f"expected SERVER.TOOL, got {clip(text)}")
    return server, tool


def parse_tool_arguments(tokens: list[str], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Turn the words after `SERVER.TOOL` into a JSON object for the call.

    One word starting with `{` is a JSON object. Otherwise each word is `key=value`;
    the value is typed by the tool's input schema when it says what it wants, and
    read as JSON (numbers, true/false/null, lists, objects) when it does not.
    """
    if len(tokens) == 1 and tokens[0].lstrip().startswith("{"):
        try:
            value = json.loads(tokens[0])
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON arguments: {exc.msg} at column {exc.colno}") from None
        if not isinstance(value, dict):
            raise ConfigError("JSON arguments must be an object")
        return value
    properties = (schema or {}).get("properties") or {}
    arguments: dict[str, Any] = {}
    for token in tokens:
        key, sep, raw = token.partition("=")
        if not sep or not key.isidentifier() and not key.replace("-", "_").isidentifier():
            raise ConfigError(f"expected key=value, got {clip(token)}")
        if key in arguments:
            raise ConfigError(f"argument {clip(key)} given twice")
        if properties and key not in properties and not schema.get("additionalProperties"):
            known = ", ".join(properties)
            raise ConfigError(f"unknown argument {clip(key)} (the tool takes: {known})")
        arguments[key] = _typed(key, raw, properties.get(key))
    return arguments


def _typed(key: str, raw: str, prop: Any) -> Any:
    kinds = schema_types(prop)
    if kinds == {"string"}:
        return raw
    if kinds and kinds <= {"integer", "number"}:
        try:
            return int(raw) if "integer" in kinds and raw.lstrip("+-").isdigit() else float(raw)
        except ValueError:
            raise ConfigError(f"argument {key!r} must be a number, got {clip(raw)}") from None
    if kinds == {"boolean"}:
        lowered = raw.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"argument {key!r} must be true or false, got {clip(raw)}")
    if kinds and kinds <= {"array", "object"}:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigError(
                f"argument {key!r} must be JSON ({'/'.join(sorted(kinds))})"
            ) from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def missing_required(arguments: Mapping[str, Any], schema: dict[str, Any] | None) -> list[str]:
    """The parameters the tool's input schema requires that `arguments` does not give."""
    required = (schema or {}).get("required") or []
    return [name for name in required if isinstance(name, str) and name not in arguments]


def missing_message(target: str, arguments: Mapping[str, Any], schema: dict[str, Any] | None
                    ) -> str | None:
    """`missing required argument 'sql': data.query_db(sql: string, ...)`, or None."""
    missing = missing_required(arguments, schema)
    if not missing:
        return None
    return (
        f"missing required argument{'s' if len(missing) > 1 else ''} "
        f"{', '.join(map(repr, missing))}: {tool_signature(target, schema)}"
    )


def parameter_summary(schema: dict[str, Any] | None) -> str:
    """`sql: string, limit?: integer`: each parameter, `?` when optional, and its type."""
    schema = schema or {}
    required = set(schema.get("required") or [])
    parts = []
    for name, prop in (schema.get("properties") or {}).items():
        kind = "|".join(sorted(schema_types(prop))) or "any"
        parts.append(f"{name}{'' if name in required else '?'}: {kind}")
    return ", ".join(parts)


def tool_signature(target: str, schema: dict[str, Any] | None) -> str:
    """`data.query_db(sql: string, limit?: integer)`, for messages."""
    return f"{target}({parameter_summary(schema)})"


def schema_types(prop: Any) -> set[str]:
    if not isinstance(prop, dict):
        return set()
    kind = prop.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if k != "null"}
    options = prop.get("anyOf") or prop.get("oneOf") or []
    kinds: set[str] = set()
    for option in options:
        kinds |= schema_types(option)
    kinds.discard("null")
    return kinds
