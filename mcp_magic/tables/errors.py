"""Is a tool's answer an error? Text that reads as one, or an error envelope object."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["error_text", "envelope_error", "shorten"]

_MAX_ERROR_CHARS = 500
_ERROR_PREFIX_CHARS = 400

_ERROR_START = re.compile(
    r"""
    (?:
        [A-Za-z_][\w.]*(?:Error|Exception)\s*:          # ValueError: / sqlite3.OperationalError:
      | (?i:error|exception|fatal)\s*(?:\[[^\]\n]*\])?\s*:   # Error: / ERROR [E1]: / FATAL:
      | (?i:error)\s+\d+\b                              # ERROR 1064 (42000): ...
      | (?i:error)[.!]?\s*(?:\n|\Z)                     # a bare "Error" line
      | (?i:error\s+(?:executing|calling|running|while|during|processing)\b)
      | (?i:(?:database|sql|sqlite|query|tool|runtime|internal|server|connection|http|request
            |validation|execution|permission|mcp|api|unexpected|unknown|syntax)\s+error)\s*[:\-]
      | Traceback\ \(most\ recent\ call\ last\):
      | \[Errno\ \d+\]
    )
    """,
    re.VERBOSE,
)
_JSON_ERROR_START = re.compile(r'\{\s*"(?:error|errors|success|ok)"\s*:')
_JSON_ERROR_MAX_CHARS = 100_000


def error_text(text: str | None, is_error: bool) -> str | None:
    """Return a short error message if the result is an error, else None.

    Besides ``is_error``, this recognises errors reported with ``isError: false`` (the
    reference SQLite server answers ``Database error: no such table: foo``). Only the start of
    the text counts, so prose that mentions "error" further on is not flagged.
    """
    if is_error:
        return shorten(text) or "The tool reported an error without a message."
    if not text:
        return None
    head = text[:_ERROR_PREFIX_CHARS].lstrip()
    if _ERROR_START.match(head):
        return shorten(text)
    if _JSON_ERROR_START.match(head):
        return _json_error_message(text)
    return None


def shorten(text: str | None) -> str:
    """Collapse an error text to one line (a traceback to its last line), capped in length."""
    text = (text or "").strip()
    if text.startswith("Traceback (most recent call last):"):
        text = text.splitlines()[-1].strip()
    text = " ".join(text[: _MAX_ERROR_CHARS * 2].split())
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 1].rstrip() + "…"
    return text


def _json_error_message(text: str) -> str | None:
    """``{"error": ...}`` (optionally with code/message/details) as an error, else None."""
    if len(text) > _JSON_ERROR_MAX_CHARS:
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return envelope_error(obj)


_ERROR_ENVELOPE_KEYS = frozenset(
    {"error", "errors", "code", "message", "details", "detail", "status", "type", "errorType",
     "error_type", "errorCode", "error_code", "statusCode", "status_code", "hint", "success",
     "ok", "request_id", "requestId", "timestamp", "source_id"}
)
_FAILED_STATUS = frozenset({"error", "failed", "failure", "fail"})


def envelope_error(obj: Any) -> str | None:
    """The one-line message of an error envelope, else None.

    ``{"success": false, "error": "…", "errorType": "…"}``, ``{"ok": false, …}``,
    ``{"status": "error", "message": "…"}``, ``{"error": {"code": …, "message": …}}`` and
    ``{"errors": [{"message": …}]}`` with no data. An answer that also carries data (a
    ``rows`` list next to a ``warning``, a records list with an ``error`` column) is not an
    error.
    """
    if not isinstance(obj, dict) or not obj:
        return None
    failed = (
        obj.get("success") is False
        or obj.get("ok") is False
        or (isinstance(obj.get("status"), str) and obj["status"].lower() in _FAILED_STATUS)
    )
    message = _message(obj.get("error"))
    if failed:
        return shorten(
            message
            or _message(obj.get("errors"))
            or _message(obj.get("message"))
            or _message(obj.get("detail"))
            or "the tool reported a failure without a message"
        )
    if not obj.keys() <= _ERROR_ENVELOPE_KEYS | {"data", "extensions"}:
        return None
    if obj.get("data") and not failed:
        return None
    if message:
        return shorten(message)
    errors = obj.get("errors")
    if errors and not obj.get("data") and (message := _message(errors)):
        return shorten(message)
    return None


def _message(value: Any) -> str | None:
    """The human part of an error value: a string, a dict's message, a list's first."""
    if value is None or value is False or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return _message(value[0])
    if isinstance(value, dict):
        for key in ("message", "detail", "error", "reason", "description", "msg"):
            found = _message(value.get(key))
            if found:
                return found
        return json.dumps(value, ensure_ascii=False, default=str)
    if value is True:
        return None
    return str(value)
