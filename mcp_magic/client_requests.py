"""Requests a server makes of the client: elicitation, sampling, roots.

All of them reach the user through one path: a handler the host was given (a widget or
terminal prompt in a notebook, a callback from `Host(elicit=...)`). With no one to ask,
the answer is "decline" and a line says so. A handler that fails is remembered on the
session, so the tool call that caused it raises instead of returning the server's
error text as a value.

The SDK takes these as `Client(elicitation_callback=, sampling_callback=,
list_roots_callback=)` and uses them for both request styles: a 2025 server's request,
and a 2026 `InputRequiredResult` that the SDK answers and retries (multi-round-trip).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Elicitation:
    """A server asks the user for input: a form (`schema`) or a page to visit (`url`)."""

    server: str
    message: str
    schema: dict[str, Any] = field(default_factory=dict)
    url: str | None = None

    @property
    def defaults(self) -> dict[str, Any]:
        """The schema's defaults (SEP-1034): what an untouched form submits."""
        properties = self.schema.get("properties", {}) if self.schema else {}
        return {k: v["default"] for k, v in properties.items() if "default" in v}


@dataclass
class Answer:
    action: str  # "accept", "decline" or "cancel"
    content: dict[str, Any] | None = None


ElicitHandler = Callable[[Elicitation], "Answer | dict[str, Any] | None"]
"""Returns the accepted values (a dict), an `Answer`, or None to decline."""


def accept_defaults(request: Elicitation) -> Answer:
    """An elicitation handler that submits the form as it is, defaults filled in."""
    return Answer("accept", request.defaults)


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")


@dataclass
class ClientRequests:
    """The handlers for one host; `callbacks(session)` gives the SDK Client's kwargs."""

    elicit: ElicitHandler | None = None
    sample: Callable[[str, Any], Any] | None = None
    roots: list[str] | None = None
    """Directories the servers may work in. None: roots are not offered at all, since a
    server told of roots may replace the directories its command line gave it (the
    filesystem server does)."""
    say: Callable[[str], None] = _say

    def callbacks(self, session: Any) -> dict[str, Any]:
        callbacks = {
            "elicitation_callback": self._elicitation(session),
            "sampling_callback": self._sampling(session),
        }
        if self.roots is not None:
            callbacks["list_roots_callback"] = self._roots()
        return callbacks

    def _elicitation(self, session: Any) -> Any:
        from mcp import types

        async def answer(context: Any, params: Any) -> Any:
            request = Elicitation(
                server=session.name,
                message=getattr(params, "message", ""),
                schema=getattr(params, "requested_schema", None) or {},
                url=getattr(params, "url", None),
            )
            if self.elicit is None:
                self.say(
                    f"{session.name} asked for input ({request.message!r}): declined, "
                    "no one to answer (pass elicit= to Host)"
                )
                return types.ElicitResult(action="decline")
            try:
                reply = await asyncio.to_thread(self.elicit, request)
            except Exception as exc:
                note = f"elicitation failed: {type(exc).__name__}: {exc}"
                session.request_failures.append(note)
                return types.ErrorData(code=types.INTERNAL_ERROR, message=note)
            if reply is None:
                return types.ElicitResult(action="decline")
            if isinstance(reply, dict):
                return types.ElicitResult(action="accept", content=reply)
            return types.ElicitResult(action=reply.action, content=reply.content)

        return answer

    def _sampling(self, session: Any) -> Any:
        from mcp import types

        async def answer(context: Any, params: Any) -> Any:
            if self.sample is None:
                note = f"{session.name} asked for a model completion: declined, no model set up"
                self.say(note)
                return types.ErrorData(code=types.INVALID_REQUEST, message=note)
            try:
                return await asyncio.to_thread(self.sample, session.name, params)
            except Exception as exc:
                note = f"sampling failed: {type(exc).__name__}: {exc}"
                session.request_failures.append(note)
                return types.ErrorData(code=types.INTERNAL_ERROR, message=note)

        return answer

    def _roots(self) -> Any:
        from mcp import types

        async def answer(context: Any) -> Any:
            folders = self.roots or []
            return types.ListRootsResult(
                roots=[
                    types.Root(uri=Path(f).expanduser().resolve().as_uri(), name=Path(f).name)
                    for f in folders
                ]
            )

        return answer
