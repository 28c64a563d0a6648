"""The question-asking logic without a kernel: schema -> fields, parsing, validation,
the answer, and the prompts' flow with scripted replies."""

from __future__ import annotations

import pytest

from mcp_magic.display.asking import (
    approve_sampling,
    ask_form,
    ask_redirect,
    ask_url,
    assemble,
    fields_of,
    parse_value,
    problem,
)
from mcp_magic.host.client_requests import Declined, Elicitation, SamplingRequest

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "title": "Your name", "minLength": 2},
        "email": {"type": "string", "format": "email"},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "score": {"type": "number", "default": 0.5},
        "ok": {"type": "boolean", "default": True},
        "color": {"type": "string", "enum": ["red", "green"], "enumNames": ["Red", "Green"]},
        "size": {"type": "string", "oneOf": [{"const": "s", "title": "Small"},
                                             {"const": "l", "title": "Large"}]},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 2},
    },
    "required": ["name", "age"],
}


def scripted(*replies: str):
    asked: list[str] = []
    pending = list(replies)

    def read(question: str) -> str:
        asked.append(question)
        if not pending:
            raise AssertionError(f"unexpected question {question!r}; asked {asked}")
        return pending.pop(0)

    return read, asked


def quiet(text: str, html: str | None) -> None:
    pass


def test_fields_from_a_schema_carry_kinds_required_defaults_and_choices():
    fields = {f.name: f for f in fields_of(SCHEMA)}
    assert [f.kind for f in fields.values()] == [
        "string", "string", "integer", "number", "boolean", "choice", "choice", "choices"]
    assert fields["name"].required and fields["age"].required and not fields["ok"].required
    assert fields["name"].label == "Your name" and fields["score"].default == 0.5
    assert fields["size"].choices == ["s", "l"] and fields["size"].choice_titles == [
        "Small", "Large"]
    assert fields["color"].hint() == "1=Red, 2=Green, optional"
    assert fields["age"].hint() == "integer 0..150"
    assert fields["ok"].hint() == "y/n, default y"


def test_values_parse_by_kind_and_bad_ones_say_why_in_one_line():
    fields = {f.name: f for f in fields_of(SCHEMA)}
    assert parse_value(fields["age"], " 42 ") == 42
    assert parse_value(fields["score"], "2.5") == 2.5
    assert parse_value(fields["ok"], "n") is False
    assert parse_value(fields["color"], "2") == "green"
    assert parse_value(fields["size"], "large") == "l"
    assert parse_value(fields["tags"], "1, c") == ["a", "c"]
    assert parse_value(fields["name"], "") is None
    with pytest.raises(ValueError, match="age: a whole number, got 'x'"):
        parse_value(fields["age"], "x")
    with pytest.raises(ValueError, match="pick one of red, green"):
        parse_value(fields["color"], "blue")
    with pytest.raises(ValueError, match="answer y or n"):
        parse_value(fields["ok"], "maybe")


def test_validation_bounds_formats_and_required():
    fields = {f.name: f for f in fields_of(SCHEMA)}
    assert problem(fields["age"], 200) == "age: at most 150"
    assert problem(fields["name"], "A") == "Your name: at least 2 characters"
    assert problem(fields["email"], "nope") == "email: not a valid email"
    assert problem(fields["email"], "a@b.org") is None
    assert problem(fields["tags"], ["a", "b", "c"]) == "tags: pick at most 2"
    assert problem(fields["name"], None) == "Your name is required"


def test_the_answer_fills_defaults_and_leaves_out_empty_optionals():
    fields = fields_of(SCHEMA)
    content, problems = assemble(fields, {"name": "Ada", "age": 36})
    assert problems == []
    assert content == {"name": "Ada", "age": 36, "score": 0.5, "ok": True}
    content, problems = assemble(fields, {"name": "Ada"})
    assert problems == ["age is required"]


def test_the_form_asks_field_by_field_and_asks_again_after_a_bad_value():
    request = Elicitation("srv", "Who are you?", SCHEMA)
    shown: list[str] = []
    read, asked = scripted("y", "Ada", "", "x", "36", "", "", "green", "", "a")
    answer = ask_form(request, read, lambda text, html: shown.append(text))
    assert answer.action == "accept"
    assert answer.content == {"name": "Ada", "age": 36, "score": 0.5, "ok": True,
                              "color": "green", "tags": ["a"]}
    assert shown[0].startswith("srv asks: Who are you?\n  Your name (string")
    assert "age: a whole number, got 'x'" in shown
    assert asked[3] == asked[4] == "age (integer 0..150): "  # asked again


def test_a_required_field_left_empty_is_asked_again():
    request = Elicitation("srv", "Name?", {"properties": {"n": {"type": "string"}},
                                           "required": ["n"]})
    shown: list[str] = []
    read, asked = scripted("y", "", "Bo")
    answer = ask_form(request, read, lambda text, html: shown.append(text))
    assert answer.content == {"n": "Bo"} and "n is required" in shown


def test_decline_and_cancel_come_before_any_field():
    request = Elicitation("srv", "Who?", SCHEMA)
    assert ask_form(request, scripted("n")[0], quiet).action == "decline"
    assert ask_form(request, scripted("c")[0], quiet).action == "cancel"


def test_nobody_to_answer_declines():
    def no_stdin(question: str) -> str:
        raise EOFError

    with pytest.raises(Declined, match="nobody can answer here"):
        ask_form(Elicitation("srv", "Who?", SCHEMA), no_stdin, quiet)


def test_a_url_is_opened_only_after_consent():
    request = Elicitation("srv", "Sign the form", url="https://example.org/form?id=1")
    opened: list[str] = []
    shown: list[tuple[str, str | None]] = []
    answer = ask_url(request, scripted("n")[0], lambda t, h: shown.append((t, h)),
                     opened.append)
    assert answer.action == "decline" and opened == []
    assert "https://example.org/form?id=1" in shown[0][0]
    assert 'href="https://example.org/form?id=1"' in (shown[0][1] or "")
    answer = ask_url(request, scripted("y")[0], quiet, opened.append)
    assert answer.action == "accept" and opened == ["https://example.org/form?id=1"]


def test_sampling_approval_shows_the_request_bounded():
    long = "x" * 5000
    request = SamplingRequest("srv", [("user", "hi"), ("user", long)], system="be brief",
                              max_tokens=50)
    shown: list[str] = []
    assert approve_sampling(request, scripted("y")[0], lambda t, h: shown.append(t))
    assert not approve_sampling(request, scripted("n")[0], quiet)
    text = shown[0]
    assert "srv asks the notebook's model to answer (at most 50 tokens)" in text
    assert "[system] be brief" in text and "[user] hi" in text
    assert len(text) < 1500 and text.count("x") <= 601


def test_the_redirect_is_pasted_back():
    shown: list[str] = []
    read, asked = scripted("", " http://127.0.0.1:8976/callback?code=c&state=s ")
    pasted = ask_redirect("https://as.example/authorize?state=s", read,
                          lambda t, h: shown.append(t))
    assert pasted == "http://127.0.0.1:8976/callback?code=c&state=s"
    assert "https://as.example/authorize?state=s" in shown[0]
