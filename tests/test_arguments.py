"""Splitting, expanding and typing a `%mcp` line: plain functions, no kernel."""

from __future__ import annotations

import shlex

import pytest

from mcp_magic.host.arguments import (
    check_line_length,
    clip,
    expand_variables,
    missing_required,
    parse_tool_arguments,
    split_words,
    strip_comment,
    tool_signature,
)
from mcp_magic.host.config import ConfigError

SHELL_LINES = [
    "a b  c",
    'sql="select * from t"',
    "text='x y'",
    "a\\ b",
    '"a\\"b\\\\c\\d"',
    "''",
    'x="" y',
    "'a'\"b\"c",
    "k='it''s'",
    "tab\there\nnewline",
    "ünï='cödé ✓' emoji=🙂",
]


@pytest.mark.parametrize("line", SHELL_LINES)
def test_split_words_gives_what_shlex_gives(line):
    assert split_words(line) == shlex.split(line)


@pytest.mark.parametrize(
    "line,problem",
    [("it's", "No closing quotation"), ('a "b', "No closing quotation"), ("a\\", "escaped")],
)
def test_split_words_reports_bad_quoting(line, problem):
    with pytest.raises(ConfigError, match=problem):
        split_words(line)


NAMESPACE = {"x": "X", "url": "http://h/mcp", "n": 3, "d": {"a": 1}, "__builtins__": __builtins__}


@pytest.mark.parametrize(
    "line,expanded",
    [
        ("$x", "X"),
        ("text={x}aaa", "text=Xaaa"),
        (
            "$url --header 'Authorization: Bearer $TOKEN'",
            "http://h/mcp --header 'Authorization: Bearer $TOKEN'",
        ),
        ("--header 'A: ${TOKEN}'", "--header 'A: ${TOKEN}'"),
        ("$url $NOT_A_NAME", "http://h/mcp $NOT_A_NAME"),
        ("text='{x.lower()}'", "text='x'"),
        ("a={x!r}", "a='X'"),
        ("x=$$x", "x=$x"),
        ("{{n}}", "{n}"),
        ("count={n*2}", "count=6"),
        ('v={d["a"]}', "v=1"),
        # Not meant for expansion: kept as typed.
        ("""'{"a": {"b": 1}}'""", """'{"a": {"b": 1}}'"""),
        ("args={}", "args={}"),
        ("a=}", "a=}"),
        ('q="select $1 from t"', 'q="select $1 from t"'),
        ("{1/0} $x", "{1/0} X"),
    ],
)
def test_expand_variables_like_ipython(line, expanded):
    assert expand_variables(line, NAMESPACE) == expanded


def test_line_limit_is_one_line_naming_the_setting():
    check_line_length("x" * 100, 100)
    check_line_length("x" * 10_000, 0)  # 0 (or less): no limit
    check_line_length("x" * 10_000, -1)
    with pytest.raises(ConfigError) as info:
        check_line_length("x" * 2_500_000, 1_000_000)
    message = str(info.value)
    assert "2.5 MB" in message and "1.0 MB" in message and "McpMagics.line_limit" in message
    assert "\n" not in message


def test_error_messages_clip_huge_words():
    word = "w" * 1_000_000
    with pytest.raises(ConfigError) as info:
        parse_tool_arguments([word])
    assert len(str(info.value)) < 200 and "1,000,000 characters" in str(info.value)
    assert clip("short") == "'short'"


SCHEMA = {
    "type": "object",
    "properties": {"sql": {"type": "string"}, "limit": {"type": "integer"}},
    "required": ["sql"],
}


def test_missing_required_arguments_are_named_with_the_signature():
    assert missing_required({"sql": "select 1"}, SCHEMA) == []
    assert missing_required({}, SCHEMA) == ["sql"]
    assert missing_required({}, None) == []
    assert tool_signature("data.query_db", SCHEMA) == "data.query_db(sql: string, limit?: integer)"


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("connect data --builtin   # the built-in server", "connect data --builtin"),
        ("connect db -- uvx --with \"mcp<2\" x --db-path s.db  # stdio",
         "connect db -- uvx --with \"mcp<2\" x --db-path s.db"),
        ("call x.y text=a#b", "call x.y text=a#b"),
        ("call x.y text='# kept' # cut", "call x.y text='# kept'"),
        ('call x.y sql="select 1 # kept"', 'call x.y sql="select 1 # kept"'),
        ("call x.y text=a\\ \\#b", "call x.y text=a\\ \\#b"),
        ("# all of it", ""),
    ],
)  # fmt: skip
def test_a_trailing_comment_is_dropped_as_a_shell_would(line, kept):
    assert strip_comment(line) == kept
