"""Run the agent from the kernel's main thread: pump its events into the view.

The loop runs on the session thread; this side renders what it publishes and answers
approval requests, so displays and `input()` happen on the main thread.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Callable

from .agent import Agent, AgentOptions, RunResult
from .events import ApprovalRequest, Decision, Event, Notice
from .sessions import SessionManager


def run_agent(
    manager: SessionManager,
    agent: Agent,
    prompt: str,
    options: AgentOptions,
    show: Callable[[Event], None],
    ask: Callable[[ApprovalRequest], Decision],
    idle: Callable[[], None] | None = None,
) -> RunResult:
    """Run one agent turn; returns when the model answers, raises on error or interrupt."""
    events: queue.SimpleQueue = queue.SimpleQueue()

    def on_event(event: Event) -> None:
        if isinstance(event, ApprovalRequest):
            decision = ask(event)
            if decision.action == "deny" and decision.text:
                show(Notice(decision.text, level="warning"))
            event.reply.set_result(decision)
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
            if not isinstance(event, ApprovalRequest):
                show(event)


def ask_user(request: ApprovalRequest, read: Callable[[str], str] = input) -> Decision:
    """Ask at an input prompt: allow, deny, or type the answer in the tool's place.

    Where nobody can answer (nbval, papermill: no stdin), the call is denied, so a
    non-interactive run never waits forever.
    """
    arguments = json.dumps(request.arguments, ensure_ascii=False, default=str)
    if len(arguments) > 300:
        arguments = arguments[:300] + "…"
    question = (
        f"Run {request.server}.{request.tool}({arguments})? ({request.reason})\n"
        "[y] allow  [n] deny  or type a reply to send instead: "
    )
    try:
        answer = read(question).strip()
    except (EOFError, NotImplementedError, RuntimeError):
        return Decision(
            "deny",
            f"{request.server}.{request.tool} needs approval but nobody can answer here "
            "(non-interactive run); it was denied. Use --approve never to allow it.",
        )
    if answer.lower() in ("y", "yes", "allow"):
        return Decision("allow")
    if answer.lower() in ("", "n", "no", "deny"):
        return Decision("deny")
    return Decision("answer", answer)
