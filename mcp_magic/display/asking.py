"""Asking the user in the notebook: a server's form or link (elicitation), approval of a
sampling request, of an agent's tool call or of a code block, the address a remote
browser was sent to after an authorization. One path for all of them.

Everything here runs on the thread waiting for the call (the kernel's main thread, see
`SessionManager.on_main`), so the question shows in the running cell: as ipywidgets in
Jupyter (see `ask_form_widgets`), else through `input()` (a prompt in terminal IPython,
the kernel's stdin text field with an older kernel or `ask_with = "prompt"`). Where
nobody can answer (nbval, papermill: no stdin; a script with stdin closed) it raises
`Declined`, which the caller turns into "declined" and one line. The stop button during
a question cancels the call waiting on it.

The form logic (schema -> fields, parsing, validation, the answer) is plain functions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..agent.events import ApprovalRequest, CodeRequest, Decision
from ..host.client_requests import Answer, Declined, Elicitation, SamplingRequest

Read = Callable[[str], str]
Show = Callable[[str, str | None], None]
"""show(text, html): a text block, and an HTML version for a notebook (or None)."""

TEXT_LIMIT = 600  # characters of one sampled message shown for approval
MESSAGES_SHOWN = 8  # the last messages of a sampling request shown for approval


# -- the form: plain functions ---------------------------------------------------------


@dataclass
class Field:
    """One field of an elicitation form (a property of the requested schema)."""

    name: str
    kind: str  # "string", "number", "integer", "boolean", "choice", "choices"
    title: str = ""
    description: str = ""
    required: bool = False
    default: Any = None
    choices: list[Any] = field(default_factory=list)
    choice_titles: list[str] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    format: str | None = None

    @property
    def label(self) -> str:
        return self.title or self.name

    def hint(self) -> str:
        """What to type: the kind, the choices, the bounds, the default."""
        if self.kind in ("choice", "choices"):
            options = ", ".join(
                f"{i + 1}={t}" for i, t in enumerate(self.choice_titles or map(str, self.choices))
            )
            what = options + (" (several: 1,3)" if self.kind == "choices" else "")
        elif self.kind == "boolean":
            what = "y/n"
        else:
            what = self.format or self.kind
            if self.minimum is not None or self.maximum is not None:
                low = "" if self.minimum is None else f"{self.minimum:g}"
                high = "" if self.maximum is None else f"{self.maximum:g}"
                what += f" {low}..{high}"
        if self.default is not None:
            shown = self.default
            if self.kind == "boolean":
                shown = "y" if self.default else "n"
            elif self.kind == "choices":
                shown = ", ".join(map(str, self.default))
            what += f", default {shown}"
        elif not self.required:
            what += ", optional"
        return what


def _choices(spec: dict[str, Any]) -> tuple[list[Any], list[str]]:
    if "enum" in spec:
        values = list(spec["enum"])
        titles = spec.get("enumNames") or []
        return values, [str(t) for t in titles] if len(titles) == len(values) else []
    options = spec.get("oneOf") or spec.get("anyOf") or []
    values = [o["const"] for o in options if isinstance(o, dict) and "const" in o]
    titles = [str(o.get("title", o["const"])) for o in options if isinstance(o, dict)
              and "const" in o]
    return values, titles


def fields_of(schema: dict[str, Any]) -> list[Field]:
    """The fields of a requested schema (a flat object of primitive properties)."""
    properties = (schema or {}).get("properties") or {}
    required = set((schema or {}).get("required") or [])
    fields = []
    for name, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "string")
        choices, titles = _choices(spec)
        if kind == "array":
            choices, titles = _choices(spec.get("items") or {})
            kind = "choices"
        elif choices:
            kind = "choice"
        fields.append(Field(
            name=name, kind=kind if kind in (
                "string", "number", "integer", "boolean", "choice", "choices") else "string",
            title=str(spec.get("title") or ""), description=str(spec.get("description") or ""),
            required=name in required, default=spec.get("default"),
            choices=choices, choice_titles=titles,
            minimum=spec.get("minimum"), maximum=spec.get("maximum"),
            min_length=spec.get("minLength", spec.get("minItems")),
            max_length=spec.get("maxLength", spec.get("maxItems")),
            format=spec.get("format"),
        ))
    return fields


def _pick(f: Field, word: str) -> Any:
    word = word.strip()
    if word.isdigit() and 1 <= int(word) <= len(f.choices):
        return f.choices[int(word) - 1]
    for value, title in zip(f.choices, f.choice_titles or map(str, f.choices), strict=False):
        if word.lower() in (str(value).lower(), title.lower()):
            return value
    raise ValueError(f"{f.label}: pick one of {', '.join(map(str, f.choices))}")


def parse_value(f: Field, text: str) -> Any:
    """The value typed for a field; None for an empty answer. Raises ValueError (one line)."""
    text = text.strip()
    if not text:
        return None
    if f.kind == "boolean":
        if text.lower() in ("y", "yes", "true", "1"):
            return True
        if text.lower() in ("n", "no", "false", "0"):
            return False
        raise ValueError(f"{f.label}: answer y or n")
    if f.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{f.label}: a whole number, got {text!r}") from None
    if f.kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{f.label}: a number, got {text!r}") from None
        return int(number) if number.is_integer() and "." not in text else number
    if f.kind == "choice":
        return _pick(f, text)
    if f.kind == "choices":
        return [_pick(f, word) for word in text.split(",") if word.strip()]
    return text


_FORMATS = {
    "email": re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    "uri": re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$"),
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "date-time": re.compile(
        r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
    ),
}


def problem(f: Field, value: Any) -> str | None:
    """Why a field's value is not acceptable, in one line; None if it is."""
    if value is None:
        return f"{f.label} is required" if f.required else None
    if f.kind in ("number", "integer"):
        if f.minimum is not None and value < f.minimum:
            return f"{f.label}: at least {f.minimum:g}"
        if f.maximum is not None and value > f.maximum:
            return f"{f.label}: at most {f.maximum:g}"
    if f.kind == "string":
        if f.min_length is not None and len(value) < f.min_length:
            return f"{f.label}: at least {f.min_length} characters"
        if f.max_length is not None and len(value) > f.max_length:
            return f"{f.label}: at most {f.max_length} characters"
        pattern = _FORMATS.get(f.format or "")
        if pattern is not None and not pattern.match(value):
            return f"{f.label}: not a valid {f.format}"
    if f.kind == "choices":
        if f.min_length is not None and len(value) < f.min_length:
            return f"{f.label}: pick at least {f.min_length}"
        if f.max_length is not None and len(value) > f.max_length:
            return f"{f.label}: pick at most {f.max_length}"
    return None


def assemble(fields: list[Field], values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The content to accept (defaults for what was left empty, optional empties left
    out) and the problems that stop it, one line each."""
    content: dict[str, Any] = {}
    problems = []
    for f in fields:
        value = values.get(f.name)
        if value is None:
            value = f.default
        why = problem(f, value)
        if why:
            problems.append(why)
        elif value is not None:
            content[f.name] = value
    return content, problems


# -- asking at a prompt ------------------------------------------------------------------


def _read(read: Read, question: str) -> str:
    try:
        return read(question)
    except (EOFError, NotImplementedError, RuntimeError, OSError):
        # StdinNotImplementedError (nbval, papermill) is a NotImplementedError.
        raise Declined("nobody can answer here (non-interactive run)") from None


def _choose(read: Read, question: str, options: dict[str, str]) -> str:
    """One of `options` (typed word -> action); asks again on anything else."""
    while True:
        word = _read(read, question).strip().lower()
        if word in options:
            return options[word]


def ask_form(request: Elicitation, read: Read, show: Show) -> Answer:
    """A form-mode elicitation, field by field; the user can decline or cancel first."""
    fields = fields_of(request.schema)
    lines = [f"{request.server} asks: {request.message}"]
    lines += [f"  {f.label} ({f.hint()})" + (f": {f.description}" if f.description else "")
              for f in fields]
    show("\n".join(lines), _form_html(request, fields))
    action = _choose(read, "[y] answer  [n] decline  [c] cancel: ", {
        "y": "accept", "yes": "accept", "": "accept", "n": "decline", "no": "decline",
        "c": "cancel", "cancel": "cancel"})
    if action != "accept":
        return Answer(action)
    while True:
        values: dict[str, Any] = {}
        for f in fields:
            while True:
                text = _read(read, f"{f.label} ({f.hint()}): ")
                try:
                    value = parse_value(f, text)
                except ValueError as exc:
                    show(str(exc), None)
                    continue
                why = problem(f, f.default if value is None else value)
                if why:
                    show(why, None)
                    continue
                values[f.name] = value
                break
        content, problems = assemble(fields, values)
        if not problems:
            return Answer("accept", content)
        show("; ".join(problems), None)  # pragma: no cover (each field was checked)


def ask_url(request: Elicitation, read: Read, show: Show,
            open_url: Callable[[str], None] | None = None) -> Answer:
    """A URL-mode elicitation: the link is shown, and opened only after consent."""
    from html import escape

    url = request.url or ""
    show(
        f"{request.server} asks you to open {url}\n  {request.message}",
        f"<b>{escape(request.server)}</b> asks you to open "
        f'<a href="{escape(url)}" target="_blank" rel="noopener">{escape(url)}</a>'
        f"<br>{escape(request.message)}",
    )
    action = _choose(read, "[y] open it  [n] decline  [c] cancel: ", {
        "y": "accept", "yes": "accept", "n": "decline", "no": "decline", "": "decline",
        "c": "cancel", "cancel": "cancel"})
    if action == "accept" and open_url is not None:
        open_url(url)
    return Answer(action)


def approve_sampling(request: SamplingRequest, read: Read, show: Show) -> bool:
    """Shows what a server wants a model to answer (bounded) and asks allow/deny."""
    from html import escape

    def bounded(text: str) -> str:
        return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + "…"

    shown = request.messages[-MESSAGES_SHOWN:]
    skipped = len(request.messages) - len(shown)
    lines = [f"{request.server} asks the notebook's model to answer"
             + (f" (at most {request.max_tokens} tokens)" if request.max_tokens else "") + ":"]
    if request.system:
        lines.append(f"  [system] {bounded(request.system)}")
    if skipped:
        lines.append(f"  ({skipped} earlier messages)")
    lines += [f"  [{role}] {bounded(text)}" for role, text in shown]
    if request.tools:
        lines.append(f"  (the model is offered the tools {', '.join(request.tools)})")
    text = "\n".join(lines)
    show(text, f"<pre style='white-space:pre-wrap'>{escape(text)}</pre>")
    return _choose(read, "[y] allow  [n] deny: ", {
        "y": True, "yes": True, "allow": True, "n": False, "no": False, "deny": False,
        "": False}) is True


def ask_redirect(url: str, read: Read, show: Show) -> str:
    """For a kernel the browser cannot reach: the link, then the address pasted back."""
    from html import escape

    show(
        f"Authorize in your browser: {url}\nThen paste the address the browser was sent "
        "to (it shows an error page; copy its address bar).",
        f'<a href="{escape(url)}" target="_blank" rel="noopener">Authorize this server</a>'
        " — then paste below the address your browser was sent to (it may show an error "
        "page: copy its address bar).",
    )
    while True:
        pasted = _read(read, "Redirected address: ").strip()
        if pasted == "cancel":
            return ""  # the authorization says it was not completed
        if pasted:
            return pasted


NOBODY_FOR_CALL = ("{what} needs approval but nobody can answer here (non-interactive "
                   "run); it was denied. Use --approve never to allow it.")
NOBODY_FOR_CODE = ("code needs approval but nobody can answer here (non-interactive run); "
                   "it was denied. Use --approve never to run the model's code without "
                   "asking.")
_UNANSWERABLE = (Declined, EOFError, NotImplementedError, RuntimeError)
"""What `read` raises where nobody can answer: no stdin (nbval, papermill, a closed
terminal), or no cell waiting."""


def call_question(request: ApprovalRequest) -> str:
    """The approval question for an agent's tool call, its arguments bounded."""
    import json

    arguments = json.dumps(request.arguments, ensure_ascii=False, default=str)
    if len(arguments) > 300:
        arguments = arguments[:300] + "…"
    return f"Run {request.server}.{request.tool}({arguments})? ({request.reason})"


def ask_call(request: ApprovalRequest, read: Read) -> Decision:
    """Allow, deny, or type the answer in the tool's place, at a prompt."""
    try:
        answer = read(call_question(request) + "\n[y] allow  [n] deny  or type a reply to "
                      "send instead: ").strip()
    except _UNANSWERABLE:
        return Decision("deny", NOBODY_FOR_CALL.format(what=f"{request.server}.{request.tool}"))
    if answer.lower() in ("y", "yes", "allow"):
        return Decision("allow")
    if answer.lower() in ("", "n", "no", "deny"):
        return Decision("deny")
    return Decision("answer", answer)


def ask_code(request: CodeRequest, read: Read) -> tuple[str, str]:
    """("allow", code), ("deny", reason or ""), or ("edit", new code), at a prompt."""
    try:
        answer = read("Run this code in the notebook? [y] run  [n] deny  [e] edit and "
                      "run: ").strip().lower()
        if answer in ("e", "edit"):
            lines = []
            while True:
                line = read("new code, line by line; an empty line ends it: "
                            if not lines else "... ")
                if not line.strip():
                    break
                lines.append(line)
            if not lines:
                return "deny", "the user cleared the code"
            return "edit", "\n".join(lines)
    except _UNANSWERABLE:
        return "deny", NOBODY_FOR_CODE
    if answer in ("y", "yes", "run", "allow"):
        return "allow", request.code
    return "deny", ""


# -- where the questions are shown ------------------------------------------------------


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return None
    return get_ipython()


def in_kernel() -> bool:
    return getattr(_shell(), "kernel", None) is not None


def show(text: str, html: str | None = None) -> None:
    """In a kernel, HTML in the running cell; elsewhere, text on stdout."""
    if html is not None and in_kernel():
        from IPython.display import HTML, display

        display(HTML(html))
    else:
        print(text, flush=True)


def read(question: str) -> str:
    """`input()`, with the kernel's own (a text field in Jupyter)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        # Asked while no cell waits (a server's request between calls): no prompt to use.
        raise Declined("nobody is waiting for an answer (no call in progress)")
    shell = _shell()
    kernel = getattr(shell, "kernel", None)
    if kernel is not None and not getattr(kernel, "_allow_stdin", True):
        raise Declined("nobody can answer here (non-interactive run)")
    return input(question)


def open_in_browser(url: str) -> None:
    """Opens a link the user agreed to open: locally, unless no browser is wanted."""
    if in_kernel():
        from html import escape

        show(url, f'<a href="{escape(url)}" target="_blank" rel="noopener">Open {escape(url)}'
                  "</a>")
    if os.environ.get("MCP_MAGIC_NO_BROWSER") is None:
        import contextlib
        import webbrowser

        with contextlib.suppress(Exception):
            webbrowser.open(url)


def _widget_show(actions: list[tuple[str, str, str]], field: str | None = None,
                 answers: dict[str, str] | None = None) -> tuple[Show, Read]:
    """A `show` and `read` pair for the prompt flows above, as one widget question: what
    is shown becomes its body; the first `read` shows it and maps the button pressed to
    the word the prompt flow expects (or returns the text typed)."""
    shown: list[tuple[str, str | None]] = []
    last: list[tuple[str, str | None]] = []

    def show_(text: str, html: str | None = None) -> None:
        shown.append((text, html))

    def read_(question: str) -> str:
        from html import escape

        body = shown or last  # asked again: the same question
        text = "\n".join(t for t, _ in body)
        html = "<br>".join(h or f"<pre>{escape(t)}</pre>" for t, h in body)
        last[:] = body
        shown.clear()
        action, typed = ask_widgets(html, text, actions, field)
        if field is not None and action == "submit":
            return typed
        return (answers or {}).get(action, action)

    return show_, read_


_YES_NO_CANCEL = {"accept": "y", "decline": "n", "cancel": "c", "allow": "y", "deny": "n"}


def elicit(request: Elicitation) -> Answer:
    """The notebook's elicitation handler (`ClientRequests.elicit`)."""
    widgets = widgets_usable()
    if request.url:
        if widgets:
            show_, read_ = _widget_show([("Open", "accept", "primary"),
                                         ("Decline", "decline", ""),
                                         ("Cancel", "cancel", "warning")],
                                        answers=_YES_NO_CANCEL)
            return ask_url(request, read_, show_, open_in_browser)
        return ask_url(request, read, show, open_in_browser)
    if widgets:
        return ask_form_widgets(request)
    return ask_form(request, read, show)


def approve(request: SamplingRequest) -> bool:
    """The notebook's sampling approval (`ClientRequests.approve`)."""
    if widgets_usable():
        show_, read_ = _widget_show([("Allow", "allow", "primary"), ("Deny", "deny", "")],
                                    answers=_YES_NO_CANCEL)
        return approve_sampling(request, read_, show_)
    return approve_sampling(request, read, show)


def approve_call(request: ApprovalRequest) -> Decision:
    """The notebook's approval of an agent's tool call: Allow / Deny / a reply typed in
    the tool's place, as buttons in Jupyter, else at the input prompt."""
    if not widgets_usable():
        return ask_call(request, read)
    from html import escape

    question = call_question(request)
    action, typed = ask_widgets(
        f"<pre style='white-space:pre-wrap;margin:0'>{escape(question)}</pre>", question,
        [("Allow", "allow", "primary"), ("Deny", "deny", ""),
         ("Send the reply instead", "answer", "")],
        field="or a reply to send the model in the tool's place")
    if action == "answer" and typed.strip():
        return Decision("answer", typed.strip())
    return Decision("allow" if action == "allow" else "deny")


def approve_code(request: CodeRequest) -> tuple[str, str]:
    """The notebook's approval of a code block: Run (as edited in the box) / Deny, as
    widgets in Jupyter, else at the input prompt. ("allow", code), ("edit", new code)
    or ("deny", reason)."""
    if not widgets_usable():
        return ask_code(request, read)
    action, typed = ask_widgets(
        "Run this code in the notebook? Edit it below first if you like.",
        "Run this code in the notebook?",
        [("Run", "allow", "primary"), ("Deny", "deny", "")],
        value=request.code, rows=min(max(request.code.count("\n") + 2, 4), 24))
    if action != "allow":
        return "deny", ""
    if not typed.strip():
        return "deny", "the user cleared the code"
    return ("allow", request.code) if typed == request.code else ("edit", typed)


def pasted_redirect(url: str) -> str:
    """The notebook's way to get an authorization's redirect from a remote browser."""
    if widgets_usable():
        show_, read_ = _widget_show([("Submit", "submit", "primary"),
                                     ("Cancel", "cancel", "warning")],
                                    field="the address your browser was sent to")
        return ask_redirect(url, read_, show_)
    return ask_redirect(url, read, show)


def _form_html(request: Elicitation, fields: list[Field]) -> str:
    from html import escape

    rows = "".join(
        f"<li><b>{escape(f.label)}</b> <i>{escape(f.hint())}</i>"
        + (f" — {escape(f.description)}" if f.description else "") + "</li>"
        for f in fields
    )
    return (f"<b>{escape(request.server)}</b> asks: {escape(request.message)}"
            f"<ul>{rows}</ul>")


# -- a widget form in Jupyter ------------------------------------------------------------
#
# A cell that waits (synchronously) blocks the kernel's main thread, so the messages a
# widget sends back (a typed value, a click) would wait for the cell to end. ipykernel 7
# can route a comm's messages to a subshell, a thread of its own: the form's widgets are
# routed to one, which updates them while the main thread waits for the answer. Where
# that is not available (older kernels), questions are asked at the input prompt.

_SUBSHELL: str | None = None
STYLE = "auto"
"""How questions are asked in Jupyter: "auto" (widgets where the kernel can take their
answers, else the input prompt; the environment's `MCP_MAGIC_ASK=prompt` forces the
prompt) or "prompt" (`%config McpMagics.ask_with`)."""
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _widget_subshell() -> str | None:
    """A subshell of this kernel for the forms' messages (created once), or None."""
    global _SUBSHELL
    if _SUBSHELL is not None:
        return _SUBSHELL
    kernel = getattr(_shell(), "kernel", None)
    channel = getattr(kernel, "shell_channel_thread", None)
    if channel is None:
        return None
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return None
    import threading

    made: dict[str, Any] = {}
    ready = threading.Event()
    try:
        manager = channel.manager
    except Exception:  # pragma: no cover (a kernel without subshells)
        return None

    def create() -> None:  # on the shell channel thread, as ipykernel requires
        try:
            made["id"] = manager._create_subshell()
        except Exception as exc:  # pragma: no cover (a kernel without subshells)
            made["error"] = exc
        ready.set()

    channel.io_loop.add_callback(create)
    if not ready.wait(5) or "id" not in made:
        return None
    _SUBSHELL = made["id"]
    return _SUBSHELL


def widgets_usable() -> bool:
    """A notebook whose kernel can take a widget form's answers while the cell waits."""
    import threading

    kernel = getattr(_shell(), "kernel", None)
    if kernel is None or not getattr(kernel, "_allow_stdin", False):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    if (STYLE if STYLE != "auto" else os.environ.get("MCP_MAGIC_ASK", "")) == "prompt":
        return False
    return _widget_subshell() is not None


def _route(widget: Any, subshell: str) -> None:
    comm = getattr(widget, "comm", None)
    if comm is not None:
        comm._reply_subshell_for = lambda data, default: subshell
    for child in getattr(widget, "children", ()):
        _route(child, subshell)


def _field_widget(f: Field) -> Any:
    import ipywidgets as w

    style = {"description_width": "initial"}
    label = f.label + ("" if not f.required else " *")
    tooltip = f.description or None
    if f.kind == "boolean" and (f.required or f.default is not None):
        return w.Checkbox(value=bool(f.default), description=label, indent=False,
                          tooltip=tooltip)
    if f.kind in ("boolean", "choice"):
        options: list[tuple[str, Any]] = (
            [("yes", True), ("no", False)] if f.kind == "boolean"
            else list(zip(f.choice_titles or map(str, f.choices), f.choices, strict=False))
        )
        if not f.required or f.default is None:
            options = [("—", None), *options]
        return w.Dropdown(options=options, value=f.default, description=label, style=style,
                          tooltip=tooltip)
    if f.kind == "choices":
        return w.SelectMultiple(
            options=list(zip(f.choice_titles or map(str, f.choices), f.choices, strict=False)),
            value=tuple(f.default or ()), description=label, style=style, tooltip=tooltip)
    return w.Text(value="" if f.default is None else str(f.default), description=label,
                  placeholder=f.hint(), style=style, tooltip=tooltip)


def _widget_value(f: Field, widget: Any) -> Any:
    """A widget's value as the field's (ValueError with a line when it is not one)."""
    if f.kind == "choices":
        return list(widget.value)
    if f.kind in ("boolean", "choice"):
        return widget.value
    return parse_value(f, widget.value)


def ask_form_widgets(request: Elicitation) -> Answer:
    """The form as widgets in the running cell; waits (interruptibly) for a button."""
    import threading

    import ipywidgets as w
    from IPython.display import display

    subshell = _widget_subshell()
    assert subshell is not None
    fields = fields_of(request.schema)
    inputs = [_field_widget(f) for f in fields]
    notes = w.HTML()
    buttons = [w.Button(description=d, button_style=s) for d, s in
               (("Accept", "primary"), ("Decline", ""), ("Cancel", "warning"))]
    from html import escape

    head = w.HTML(f"<b>{escape(request.server)}</b> asks: {escape(request.message)}")
    form = w.VBox([head, *inputs, notes, w.HBox(buttons)])
    form.add_class("mcp-magic-question")
    answer: list[Answer] = []
    done = threading.Event()

    def submit(action: str) -> None:
        if action != "accept":
            answer.append(Answer(action))
            done.set()
            return
        values, problems = {}, []
        for f, widget in zip(fields, inputs, strict=True):
            try:
                values[f.name] = _widget_value(f, widget)
            except ValueError as exc:
                problems.append(str(exc))
        content, more = assemble(fields, values)
        problems += [p for p in more if p not in problems]
        if problems:
            notes.value = "<span style='color:#b00'>" + escape("; ".join(problems)) + "</span>"
            return
        answer.append(Answer("accept", content))
        done.set()

    for button, action in zip(buttons, ("accept", "decline", "cancel"), strict=True):
        button.on_click(lambda _b, action=action: submit(action))
    _route(form, subshell)
    display({
        WIDGET_MIME: {"model_id": form.model_id, "version_major": 2, "version_minor": 0},
        "text/plain": f"{request.server} asks: {request.message} (a form: it needs a "
                      "frontend that shows widgets; else press stop and set "
                      "%config McpMagics.ask_with = 'prompt')",
    }, raw=True)
    try:
        while not done.wait(0.05):
            pass
    finally:
        for widget in [*inputs, *buttons]:
            widget.disabled = True
        if not answer:
            notes.value = "cancelled (stopped)"
    result = answer[0]
    notes.value = escape(result.action)
    return result


def ask_widgets(html: str, text: str, actions: list[tuple[str, str, str]],
                field: str | None = None, value: str = "", rows: int = 0) -> tuple[str, str]:
    """A question as widgets: an HTML body, buttons (label, action, style), and a text
    field when `field` is its placeholder (or a box of `rows` lines holding `value`).
    Returns (action, text typed); waits, and the stop button interrupts the wait."""
    import threading
    from html import escape

    import ipywidgets as w
    from IPython.display import display

    subshell = _widget_subshell()
    assert subshell is not None
    box = (w.Textarea(value=value, rows=rows, layout=w.Layout(width="90%")) if rows
           else w.Text(placeholder=field, layout=w.Layout(width="90%")) if field else None)
    buttons = [w.Button(description=label, button_style=style) for label, _, style in actions]
    notes = w.HTML()
    form = w.VBox([w.HTML(html), *([box] if box else []), notes, w.HBox(buttons)])
    form.add_class("mcp-magic-question")
    chosen: list[str] = []
    done = threading.Event()
    for button, (_, action, _) in zip(buttons, actions, strict=True):
        button.on_click(lambda _b, action=action: (chosen.append(action), done.set()))
    _route(form, subshell)
    display({WIDGET_MIME: {"model_id": form.model_id, "version_major": 2, "version_minor": 0},
             "text/plain": text}, raw=True)
    try:
        while not done.wait(0.05):
            pass
    finally:
        for widget in [*buttons, *([box] if box else [])]:
            widget.disabled = True
        notes.value = escape(chosen[0]) if chosen else "cancelled (stopped)"
    return chosen[0], box.value if box else ""
