"""Benchmark: JSON list-of-records text -> DataFrame, against the plain pandas baseline.

Run ``python bench/bench_tables.py`` (1,000,000 rows) or ``--rows N`` for a quick run.
The goal is ``result_to_table(None, text)`` within 1.2x of
``pandas.DataFrame.from_records(json.loads(text))``.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp_magic.tables import result_to_table  # noqa: E402

GOAL = 1.2
REGIONS = ["North", "South", "East", "West", "Central"]


def make_text(rows: int, seed: int = 0) -> str:
    """A JSON list of records with int, float, str, ISO-date str and bool columns."""
    rng = random.Random(seed)
    start = date(2020, 1, 1)
    records = [
        {
            "id": i,
            "amount": round(rng.uniform(0, 1000), 2),
            "region": rng.choice(REGIONS),
            "day": (start + timedelta(days=i % 1500)).isoformat(),
            "paid": rng.random() < 0.5,
        }
        for i in range(rows)
    ]
    return json.dumps(records)


Timing = tuple[float, float]  # (wall seconds, CPU seconds of this process)


def baseline(text: str) -> pd.DataFrame:
    return pd.DataFrame.from_records(json.loads(text))


def ours(text: str) -> pd.DataFrame | None:
    return result_to_table(None, text)


def timed(fn: Callable[[str], pd.DataFrame | None], text: str) -> Timing:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn(text)  # the result is dropped after the clock stops
    return time.perf_counter() - wall, time.process_time() - cpu


def best(a: Timing, b: Timing) -> Timing:
    return min(a[0], b[0]), min(a[1], b[1])


def compare(text: str, repeat: int) -> tuple[Timing, Timing]:
    """Best-of-``repeat`` (wall, CPU) for baseline and ours.

    Runs alternate, and which one goes first alternates too, so that both see the same
    machine load and neither always runs with the other's garbage around.
    """
    ours_df = ours(text)
    assert ours_df is not None, "result_to_table returned None for a list of records"
    pd.testing.assert_frame_equal(ours_df, baseline(text))
    del ours_df

    inf = (float("inf"), float("inf"))
    base_best = ours_best = inf
    for i in range(repeat):
        if i % 2:
            ours_best = best(ours_best, timed(ours, text))
            base_best = best(base_best, timed(baseline, text))
        else:
            base_best = best(base_best, timed(baseline, text))
            ours_best = best(ours_best, timed(ours, text))
    return base_best, ours_best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--quick", action="store_true", help="20,000 rows, for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = 20_000

    text = make_text(args.rows)
    print(f"rows: {args.rows:,}  text: {len(text) / 1e6:.1f} MB  best of {args.repeat}")

    (base_wall, base_cpu), (ours_wall, ours_cpu) = compare(text, args.repeat)
    print(f"{'':51} {'wall':>8}   {'cpu':>8}")
    print(
        f"baseline  DataFrame.from_records(json.loads(text)): {base_wall:8.3f} s {base_cpu:8.3f} s"
    )
    print(
        f"ours      result_to_table(None, text):              {ours_wall:8.3f} s {ours_cpu:8.3f} s"
    )
    for label, ours, base in (("wall", ours_wall, base_wall), ("cpu", ours_cpu, base_cpu)):
        ratio = ours / base if base else float("nan")
        verdict = "OK" if ratio <= GOAL else "SLOWER THAN GOAL"
        print(f"ratio ({label}): {ratio:.2f}x  (goal <= {GOAL}x)  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
