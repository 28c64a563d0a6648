"""Tool arguments typed on a magic line: `key=value ...` or one JSON object."""

from __future__ import annotations

import json
from typing import Any

from .config import ConfigError


def parse_target(text: str) -> tuple[str, str]:
    """`server.tool` → (server, tool). Tool names may contain dots; server names may not."""
    server, sep, tool = text.partition(".")
    if not sep or not server or not tool:
        raise ConfigError(f"expected SERVER.TOOL, got {text!r}")
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
            raise ConfigError(f"expected key=value, got {token!r}")
        if key in arguments:
            raise ConfigError(f"argument {key!r} given twice")
        if properties and key not in properties and not schema.get("additionalProperties"):
            known = ", ".join(properties)
            raise ConfigError(f"unknown argument {key!r} (the tool takes: {known})")
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
            raise ConfigError(f"argument {key!r} must be a number, got {raw!r}") from None
    if kinds == {"boolean"}:
        lowered = raw.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"argument {key!r} must be true or false, got {raw!r}")
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
