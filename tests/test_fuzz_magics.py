"""Fuzzed `%mcp` lines in an in-process IPython shell: each one either works or says
what is wrong in one line (a UsageError or a one-line runtime error), never a
traceback; the other session and the notebook's variables come through unchanged.

The lines come from a fixed seed, so a failure reproduces; the count is bounded.
"""

from __future__ import annotations

import random
import sys

import pytest
from IPython.core.error import UsageError

from mcp_magic.magics import McpRuntimeError

from conftest import FAULT_SERVER

SEED = 20261203
COUNT = 400
MESSAGE_LIMIT = 1000  # characters of one error message, whatever the input's size

# Tools that cannot hurt: no sleeping, crashing or adding tools; `rows` gets small counts.
TARGETS = ["fz.echo", "fz.getenv", "fz.whoami", "fz.rows", "fz.nosuch", "nosuch.echo",
           "fz", ".echo", "fz.", "fz..echo", "", "fz.echo.x", "fz.ëcho"]
KEYS = ["text", "name", "count", "txt", "", "1x", "a-b", "text.x", "ü", "=", "--raw"]
PIECES = [
    "'", '"', "\\", "=", "{", "}", "{{", "}}", "$", "$$", "$precious", "{precious}",
    "{1/0}", "{undefined_name}", "${HOME}", "$NOT_SET_X", " ", "\t", "\n", "ü", "✓",
    "🙂", "\u200b", "\x00", "null", "true", "-1", "1e999", "NaN", "[1, 2", "{}", "[]",
    "x" * 1000, "--", "-n", "--raw", "%", "?", "#", ";", "|", "&", "*",
]
JSON_ARGUMENTS = [
    '\'{"text": 1\'', "'[1, 2]'", '\'{"text": "a"} extra\'', "'{}'", "'{\"text\": null}'",
    "'{\"text\": NaN}'", "'{\"count\": 1e999}'", "'{\"count\": \"3\"}'", "'\"just a string\"'",
    "'{\"text\": \"" + "j" * 200_000 + "\"}'", "'{\"count\": -5}'", "'{\"count\": 2.5}'",
    "'{\"a\": {\"b\": [1, {\"c\": 2}]}}'", "'{'", "'}'", "'{\"text\": \"\\ud800\"}'",
]
OTHER = ["tools fz", "tools nosuch", "tools --refresh fz", "tools fz extra", "list extra",
         "log nosuch", "log fz --lines x", "log fz -n -5", "prompts fz", "resources fz",
         "read nosuch://x --server fz", "disconnect", "disconnect nosuch",
         "prompt fz.nope x=1", "status --what", "call", "", "   ", "frobnicate", "CALL fz.echo",
         "call fz.echo --raw --raw text=a", "call --raw", "call fz.echo text=a --nope"]


def fuzz_value(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return "v" * rng.choice([10_000, 100_000, 1_000_000])  # huge values
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))


def fuzz_line(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(OTHER)
    target = rng.choice(TARGETS)
    if roll < 0.25:
        return f"call {target} {rng.choice(JSON_ARGUMENTS)}"
    words = []
    for _ in range(rng.randint(0, 4)):
        key = rng.choice(KEYS)
        value = fuzz_value(rng)
        if target == "fz.rows" and key == "count" and value.lstrip("-").isdigit():
            value = str(int(value) % 50)  # small tables only
        quote = rng.choice(["", "'", '"'])
        words.append(f"{key}={quote}{value}{quote}" if rng.random() < 0.8 else value)
    return f"call {target} {' '.join(words)}"


@pytest.fixture(scope="module")
def fuzz_session(shell):
    shell.run_line_magic("mcp", f"connect fz -- {sys.executable} {FAULT_SERVER}")
    yield "fz"
    shell.run_line_magic("mcp", "disconnect fz")


def test_fuzzed_lines_give_one_line_and_keep_sessions_and_variables(shell, fuzz_session):
    import mcp_magic

    manager = mcp_magic._magics.manager
    precious = {"rows": [1, 2, 3]}
    shell.user_ns.update(precious=precious, answer=42, df_name="sales")
    before_names = set(manager.sessions)
    rng = random.Random(SEED)
    outcomes = {"ok": 0, "usage": 0, "runtime": 0}
    for index in range(COUNT):
        line = fuzz_line(rng)
        shown = line if len(line) < 200 else line[:200] + f"… ({len(line):,} characters)"
        try:
            shell.run_line_magic("mcp", line)
            outcomes["ok"] += 1
        except UsageError as exc:
            outcomes["usage"] += 1
            message = str(exc)
            assert "\n" not in message.strip(), f"line {index} {shown!r}: {message[:500]!r}"
            assert len(message) <= MESSAGE_LIMIT, f"line {index} {shown!r}: {len(message)}"
        except McpRuntimeError as exc:
            outcomes["runtime"] += 1
            message = str(exc)
            assert "\n" not in message, f"line {index} {shown!r}: {message[:500]!r}"
            assert len(message) <= MESSAGE_LIMIT, f"line {index} {shown!r}: {len(message)}"
            assert len(exc._render_traceback_()) == 1
        except Exception as exc:  # anything else is a traceback in the notebook
            pytest.fail(f"line {index} {shown!r} raised {type(exc).__name__}: {exc!s:.500}")
        # The session survives every line: still connected and answering.
        if index % 50 == 49:
            assert shell.run_line_magic("mcp", "call fz.echo text=alive") == "alive"
    assert set(manager.sessions) == before_names
    assert manager.sessions["fz"].state == "connected"
    assert shell.run_line_magic("mcp", "call fz.echo text=still-here") == "still-here"
    assert shell.user_ns["precious"] is precious and precious == {"rows": [1, 2, 3]}
    assert shell.user_ns["answer"] == 42 and shell.user_ns["df_name"] == "sales"
    # The fuzz reached every kind of outcome, so it exercised the paths it claims to.
    assert all(outcomes.values()), outcomes


def test_fuzzed_lines_in_cells_show_no_traceback(shell, fuzz_session, capsys):
    """Through `run_cell`, as a notebook runs them: IPython's own input handling too."""
    rng = random.Random(SEED + 1)
    for index in range(60):
        line = fuzz_line(rng).replace("\n", " ")
        result = shell.run_cell(f"%mcp {line}", store_history=False)
        error = result.error_in_exec or result.error_before_exec
        assert error is None or isinstance(error, (UsageError, McpRuntimeError)), (
            f"cell {index} {line[:200]!r}: {type(error).__name__}: {error!s:.300}"
        )
        printed = capsys.readouterr()
        assert "Traceback" not in printed.out + printed.err, f"cell {index} {line[:200]!r}"
    assert shell.run_line_magic("mcp", "call fz.echo text=ok") == "ok"
