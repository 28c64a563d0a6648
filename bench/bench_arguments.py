"""Benchmark: `%mcp call` argument parsing stays linear in the length of the line.

For each size (100 kB, 300 kB, 1 MB, 3 MB) one SQL-like value is typed on the line:

  parse     `$name`/`{expr}` expansion + shell-like splitting + typing by the schema
            (mcp_magic.host.arguments), for a quoted value, and for a quoted value that
            also references a notebook variable `{who}` (the expansion path)
  cell      `r = %mcp call f.echo sql="..."` through `InteractiveShell.run_cell`
            (IPython's input transformation, the magic, the round trip to a stdio
            server that echoes the value back)
  shlex     `shlex.split` on the same line, for reference (what the magic used to do;
            quadratic, so only up to 300 kB)

A scaling ratio is (time at one size / time at a smaller one) divided by the size
ratio: 1.0 is linear; quadratic work shows as the size ratio itself (30 from 100 kB to
3 MB). Two are printed: smallest to largest (small sizes sit in the CPU caches, so this
one reads high even when the work is linear) and the last step (1 MB to 3 MB).
Goal: last-step ratio <= 1.5 for `parse` and `cell`. Run
``python bench/bench_arguments.py``, or ``--quick`` (10 kB to 300 kB, no shlex).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = ROOT / "tests" / "servers" / "fault_server.py"
FULL_SIZES = [100_000, 300_000, 1_000_000, 3_000_000]
QUICK_SIZES = [10_000, 30_000, 100_000, 300_000]
SHLEX_MAX = 300_000
GOAL = 1.5


def sql_value(size: int) -> str:
    """A long SELECT with spaces, commas and a literal: what people paste."""
    row = "select id, name, amount from sales where region = 'North' union all "
    text = (row * (size // len(row) + 1))[:size]
    return text.replace("'", "")  # the value sits in single quotes on the line


def best_of(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)  # the least disturbed run: allocation and cache effects vary


def label(size: int) -> str:
    return f"{size / 1e6:g} MB" if size >= 1_000_000 else f"{size / 1e3:g} kB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    repeat = 3 if args.quick else 7

    from IPython.testing.globalipapp import start_ipython

    from mcp_magic.host.arguments import expand_variables, parse_tool_arguments, split_words

    shell = start_ipython()
    shell.run_line_magic("load_ext", "mcp_magic")
    shell.user_ns["who"] = "North"
    shell.run_line_magic("mcp", f"connect f -- {sys.executable} {SERVER}")
    schema = {"type": "object", "properties": {"sql": {"type": "string"}}}

    def parse(line: str) -> dict:
        words = split_words(expand_variables(line, shell.user_ns))
        return parse_tool_arguments(words[1:], schema)

    rows: dict[str, dict[int, float]] = {"parse": {}, "parse {who}": {}, "cell": {}, "shlex": {}}
    try:
        for size in sizes:
            value = sql_value(size)
            line = f"f.echo sql='{value}'"
            line_var = f"f.echo sql='{{who}} {value}'"
            assert parse(line)["sql"] == value
            assert parse(line_var)["sql"] == f"North {value}"
            rows["parse"][size] = best_of(lambda line=line: parse(line), repeat)
            rows["parse {who}"][size] = best_of(lambda line=line_var: parse(line), repeat)

            def cell(value: str = value) -> None:
                outcome = shell.run_cell(f"r = %mcp call f.echo text='{value}'")
                assert outcome.success and len(shell.user_ns["r"]) == len(value)

            rows["cell"][size] = best_of(cell, repeat)
            if not args.quick and size <= SHLEX_MAX:
                rows["shlex"][size] = best_of(lambda line=line: shlex.split(line), 1)
    finally:
        shell.run_line_magic("mcp", "disconnect --all")

    print(
        f"{'':14s}" + "".join(f"{label(s):>12s}" for s in sizes) + "   ratio: all    last step"
    )
    worst = 0.0
    for name, times in rows.items():
        if not times:
            continue
        cells = "".join(
            f"{times[s] * 1e3:9.1f} ms" if s in times else f"{'-':>12s}" for s in sizes
        )
        measured = sorted(times)

        def ratio(small: int, large: int, times: dict[int, float] = times) -> float:
            return (times[large] / times[small]) / (large / small)

        overall = ratio(measured[0], measured[-1])
        last = ratio(measured[-2], measured[-1])
        if name != "shlex":
            worst = max(worst, last)
        print(f"{name:14s}{cells}   {overall:10.2f} {last:10.2f}")
    verdict = "met" if worst <= GOAL else "MISSED"
    print(f"\nworst last-step ratio (parse, cell) {worst:.2f}; goal <= {GOAL:g}: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
