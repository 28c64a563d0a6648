"""Run the agent from the kernel's main thread: pump its events into the view.

The loop runs on the session thread; this side renders what it publishes and answers
approval requests (`asking.approve_call` / `approve_code`: widgets in Jupyter, else a
prompt), so displays and questions happen on the main thread. In code mode it
also runs the model's code here (`CodeRequest`): displays land in the right cell and the
stop button interrupts it. A tool the code calls goes through `SessionManager.call_tool`,
which submits the call to the loop and waits for it: the loop is free meanwhile (the
agent only awaits the request's reply future), so this cannot deadlock.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, MutableMapping
from typing import Any

from ..host.sessions import SessionManager
from .events import (
    ApprovalAnswered,
    ApprovalRequest,
    CodeFinished,
    CodeRequest,
    Decision,
    Event,
    Notice,
)
from .loop import Agent, AgentOptions, RunResult


def run_agent(
    manager: SessionManager,
    agent: Agent,
    prompt: str,
    options: AgentOptions,
    show: Callable[[Event], None],
    ask: Callable[[ApprovalRequest], Decision],
    idle: Callable[[], None] | None = None,
    code: Callable[[CodeRequest], CodeFinished] | None = None,
) -> RunResult:
    """Run one agent turn; returns when the model answers, raises on error or interrupt.

    `code` answers code mode's requests (`run_code_request`); without it they are denied.
    """
    events: queue.SimpleQueue = queue.SimpleQueue()

    def on_event(event: Event) -> None:
        if isinstance(event, ApprovalRequest):
            show(event)  # the call's block: waiting for approval
            decision = ask(event)
            if decision.action == "deny" and decision.text:
                show(Notice(decision.text, level="warning"))
            event.reply.set_result(decision)
            show(ApprovalAnswered(event.call_id, decision))
        elif isinstance(event, CodeRequest):
            show(event)  # the block with the code, before anyone is asked about it
            if code is None:
                finished = CodeFinished(event.call_id, "denied", event.code,
                                        error="code mode is not available here")
            else:
                finished = code(event)
            if finished.status == "denied" and finished.error and not event.reply.done():
                show(Notice(finished.error, level="warning"))
            if not event.reply.done():
                event.reply.set_result(finished)
        else:
            show(event)

    try:
        return manager.run(
            agent.run(prompt, options, events.put),
            on_event=on_event,
            events=events,
            on_idle=idle,
            label="agent run",
        )
    finally:
        # What the loop published while it was being cancelled (usage, last results).
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                break
            if not isinstance(event, (ApprovalRequest, CodeRequest)):
                show(event)


def run_code_request(
    request: CodeRequest,
    namespace: MutableMapping[str, Any],
    ask: Callable[[CodeRequest], tuple[str, str]] | None = None,
) -> CodeFinished:
    """Ask about one code block with `ask` (allow, deny, or edit and run: the notebook's
    is `display.asking.approve_code`), then run it here; without `ask`, a block that
    needs asking is denied.

    The stop button (KeyboardInterrupt, here or inside a tool the code called) cancels
    the request, so the loop ends the run and answers the call for the model, and is
    raised on to end the cell.
    """
    from .code_mode import run_code

    code, edited = request.code, False
    try:
        if request.ask:
            if ask is None:
                return CodeFinished(request.call_id, "denied", code,
                                    error="code needs approval but nobody is asked here")
            action, text = ask(request)
            if action == "deny":
                return CodeFinished(request.call_id, "denied", code, error=text or None)
            if action == "edit":
                code, edited = text, text != request.code
        return run_code(code, namespace, request.call_id, edited)
    except KeyboardInterrupt:
        request.reply.cancel()
        raise
