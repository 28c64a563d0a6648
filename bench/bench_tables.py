"""Benchmark: each answer shape -> DataFrame, against what a user would write with pandas.

Run ``python bench/bench_tables.py`` (100,000 rows per shape) or ``--quick`` (5,000).
For each shape two baselines are timed:

* ``parsed``: ``pd.DataFrame.from_records`` on the rows already parsed (no text parsing,
  no dtype work). It does less than ours: dates stay text.
* ``user``: what a user would write to get the same DataFrame: the standard parse of the
  text (``json.loads``, ``eval`` with the constructors imported for Python literals, since
  ``ast.literal_eval`` refuses ``Decimal``; ``pd.read_csv`` for CSV), ``from_records``,
  then the dtype fixes ours makes (``pd.to_datetime`` on the ISO dates, ``pd.to_numeric``
  on numbers sent as text, Decimal to float): the same work as ours.

The goal (<= 1.3x) is counted against ``parsed``, the stricter one; text shapes cannot
reach it while parsing the text alone costs about as much as the whole baseline
(``--breakdown`` shows that part: orjson where it gives json's values, else json, and for
Python literals the rewrite to JSON as well). ``--only TEXT`` runs the shapes whose name
holds TEXT.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import json
import random
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp_magic.tables import parse_text, result_to_table  # noqa: E402

GOAL = 1.3
REGIONS = ["North", "South", "East", "West", "Central"]
COLUMNS = ["id", "amount", "region", "day", "paid"]


def make_rows(n: int, seed: int = 0) -> list[tuple]:
    rng = random.Random(seed)
    start = dt.date(2020, 1, 1)
    return [
        (i, round(rng.uniform(0, 1000), 2), rng.choice(REGIONS),
         start + dt.timedelta(days=i % 1500), rng.random() < 0.5)
        for i in range(n)
    ]


def _records(rows: list[tuple]) -> list[dict]:
    return [dict(zip(COLUMNS, (r[0], r[1], r[2], r[3].isoformat(), r[4]))) for r in rows]


def dated(df: pd.DataFrame, column: str = "day") -> pd.DataFrame:
    df[column] = pd.to_datetime(df[column], format="ISO8601")
    return df


def numbered(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        df[column] = pd.to_numeric(df[column])
    return df


def literal_fixed(df: pd.DataFrame) -> pd.DataFrame:
    df["amount"] = df["amount"].astype("float64")
    df["uid"] = df["uid"].astype(str)
    return dated(df)


def tuples_fixed(df: pd.DataFrame) -> pd.DataFrame:
    df[1] = df[1].astype("float64")
    df[3] = pd.to_datetime(df[3])
    return df


class Shape:
    """One answer shape: what ours gets, and the two baselines."""

    def __init__(self, name: str, ours: Callable[[], Any], parsed: Callable[[], Any],
                 user: Callable[[], Any], text_mb: float = 0.0,
                 text: str | None = None) -> None:
        self.name, self.ours, self.parsed, self.user, self.text_mb = (
            name, ours, parsed, user, text_mb)
        # ours' first step on a text answer: the text to values (JSON, Python literal)
        self.parse: Callable[[], Any] | None = (
            (lambda: parse_text(text)) if text is not None and parse_text(text)[1] else None)


def make_shapes(n: int) -> list[Shape]:
    rows = make_rows(n)
    records = _records(rows)
    shapes = []

    # structured content, the built-in server's contract
    table = {"columns": COLUMNS, "types": ["INTEGER", "REAL", "TEXT", "DATE", "BOOLEAN"],
             "rows": [list(r[:3]) + [r[3].isoformat(), r[4]] for r in rows],
             "row_count": n, "truncated": False}
    shapes.append(Shape(
        "structured {columns, types, rows}",
        lambda: result_to_table(table, None),
        lambda: pd.DataFrame.from_records(table["rows"], columns=COLUMNS),
        lambda: dated(pd.DataFrame.from_records(table["rows"], columns=COLUMNS)),
    ))

    wrapped = {"result": records}
    shapes.append(Shape(
        "structured {result: [records]}",
        lambda: result_to_table(wrapped, None),
        lambda: pd.DataFrame.from_records(records),
        lambda: dated(pd.DataFrame.from_records(records)),
    ))

    values = [COLUMNS] + [[str(v) for v in r[:3]] + [r[3].isoformat(), r[4]] for r in rows]
    sheet = {"range": f"A1:E{n + 1}", "values": values}
    shapes.append(Shape(
        "structured 2-D values (spreadsheet)",
        lambda: result_to_table(sheet, None),
        lambda: pd.DataFrame.from_records(values[1:], columns=values[0]),
        lambda: numbered(dated(pd.DataFrame.from_records(values[1:], columns=values[0])),
                         "id", "amount"),
    ))

    json_text = json.dumps(records)
    shapes.append(Shape(
        "JSON text [records]",
        lambda: result_to_table(None, json_text),
        lambda: pd.DataFrame.from_records(records),
        lambda: dated(pd.DataFrame.from_records(json.loads(json_text))),
        len(json_text) / 1e6, json_text,
    ))

    strings = [{**rec, "id": str(rec["id"]), "amount": str(rec["amount"])} for rec in records]
    strings_text = json.dumps(strings)
    shapes.append(Shape(
        "JSON text, numbers as strings",
        lambda: result_to_table(None, strings_text),
        lambda: pd.DataFrame.from_records(strings),
        lambda: numbered(dated(pd.DataFrame.from_records(json.loads(strings_text))),
                         "id", "amount"),
        len(strings_text) / 1e6, strings_text,
    ))

    envelope = {"success": True, "columns": COLUMNS,
                "columnTypes": ["INTEGER", "DECIMAL(12,2)", "VARCHAR", "DATE", "BOOLEAN"],
                "rows": [[r[0], str(r[1]), r[2], r[3].isoformat(), r[4]] for r in rows],
                "rowCount": n}
    envelope_text = json.dumps(envelope)
    shapes.append(Shape(
        "JSON text {columns, columnTypes, rows}",
        lambda: result_to_table(None, envelope_text),
        lambda: pd.DataFrame.from_records(envelope["rows"], columns=COLUMNS),
        lambda: numbered(dated(pd.DataFrame.from_records(json.loads(envelope_text)["rows"],
                                                         columns=COLUMNS)), "amount"),
        len(envelope_text) / 1e6, envelope_text,
    ))

    tz = dt.timezone.utc
    py_rows = [
        {"id": r[0], "amount": Decimal(str(r[1])), "region": r[2], "day": r[3],
         "at": dt.datetime(2024, 1, 1, tzinfo=tz) + dt.timedelta(seconds=r[0]), "paid": r[4],
         "uid": uuid.UUID(int=r[0])}
        for r in rows
    ]
    literal_text = str(py_rows)
    names = {"Decimal": Decimal, "datetime": dt, "UUID": uuid.UUID}
    shapes.append(Shape(
        "Python literal [dicts] (Decimal, date, datetime tz, UUID)",
        lambda: result_to_table(None, literal_text),
        lambda: pd.DataFrame.from_records(py_rows),
        lambda: literal_fixed(pd.DataFrame.from_records(
            eval(literal_text, dict(names)))),  # noqa: S307
        len(literal_text) / 1e6, literal_text,
    ))

    tuples = [(r[0], Decimal(str(r[1])), r[2], r[3], r[4]) for r in rows]
    tuples_text = str(tuples)
    shapes.append(Shape(
        "Python literal [tuples] (Decimal, date)",
        lambda: result_to_table(None, tuples_text),
        lambda: pd.DataFrame.from_records(tuples),
        lambda: tuples_fixed(pd.DataFrame.from_records(
            eval(tuples_text, dict(names)))),  # noqa: S307
        len(tuples_text) / 1e6, tuples_text,
    ))

    csv_text = pd.DataFrame.from_records(records).to_csv(index=False)
    shapes.append(Shape(
        "CSV text",
        lambda: result_to_table(None, csv_text),
        lambda: pd.DataFrame.from_records(records),
        lambda: dated(pd.read_csv(io.StringIO(csv_text))),
        len(csv_text) / 1e6,
    ))
    return shapes


CLOCK = time.perf_counter


def timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = CLOCK()
    fn()  # the result is dropped after the clock stops
    return CLOCK() - start


def measure(shape: Shape, repeat: int) -> tuple[float, float, float]:
    """Best-of-``repeat`` seconds for ours, parsed, user; runs alternate in order."""
    assert shape.ours() is not None, f"{shape.name}: not read as a table"
    best = [float("inf")] * 3
    fns = (shape.ours, shape.parsed, shape.user)
    for i in range(repeat):
        order = (0, 1, 2) if i % 2 == 0 else (2, 1, 0)
        for k in order:
            best[k] = min(best[k], timed(fns[k]))
    return best[0], best[1], best[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows (default 100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--quick", action="store_true", help="5,000 rows, one run")
    parser.add_argument("--only", default="", help="only the shapes whose name holds this text")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the text parse alone (JSON or Python literal -> "
                             "values), the part of ours that the 'parsed' baseline skips")
    parser.add_argument("--cpu", action="store_true",
                        help="count the CPU time of this process (all its threads) rather than "
                             "the wall clock: steadier on a machine busy with other work")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.cpu else time.perf_counter
    if args.quick:
        args.rows, args.repeat = 5_000, 1

    print(f"rows: {args.rows:,}  best of {args.repeat}  goal: ours <= {GOAL}x  "
          f"clock: {'CPU time' if args.cpu else 'wall'}")
    print(f"{'shape':58} {'MB':>5} {'ours':>7} {'parsed':>7} {'user':>7} "
          f"{'/parsed':>8} {'/user':>7}")
    for shape in make_shapes(args.rows):
        if args.only.lower() not in shape.name.lower():
            continue
        ours, parsed, user = measure(shape, args.repeat)
        r_parsed, r_user = ours / parsed, ours / user
        verdict = "OK" if r_parsed <= GOAL else "over goal"
        mb = f"{shape.text_mb:5.1f}" if shape.text_mb else "    -"
        print(f"{shape.name:58} {mb} {ours:7.3f} {parsed:7.3f} {user:7.3f} "
              f"{r_parsed:7.2f}x {r_user:6.2f}x  {verdict}")
        if args.breakdown and shape.parse is not None:
            parse = min(timed(shape.parse) for _ in range(args.repeat))
            print(f"{'':4}text parse alone {parse:.3f} s = {parse / parsed:.2f}x 'parsed'; "
                  f"the rest of ours {max(ours - parse, 0):.3f} s = "
                  f"{max(ours - parse, 0) / parsed:.2f}x 'parsed'")
    print("ratios: ours / baseline (s). 'parsed' = from_records on already-parsed rows, no "
          "dtype work;\n'user' = standard parse + from_records + the same dtype fixes "
          "(the goal is counted against 'parsed').")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
