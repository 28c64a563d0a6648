"""Write a SQLite file with one big table for the big-table benchmark.

``python bench/make_big_table.py OUT.db [--rows N] [--seed S]``. Table ``big``,
8 columns: two integers, two floats, two short strings, an ISO date (declared DATE) and
an ISO timestamp (declared TIMESTAMP). Deterministic for a given seed; stdlib only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

TABLE = "big"
COLUMNS = ["id", "qty", "price", "score", "region", "code", "day", "ts"]
SCHEMA = f"""
CREATE TABLE {TABLE} (
    id     INTEGER PRIMARY KEY,
    qty    INTEGER NOT NULL,
    price  REAL NOT NULL,
    score  REAL NOT NULL,
    region TEXT NOT NULL,
    code   TEXT NOT NULL,
    day    DATE NOT NULL,
    ts     TIMESTAMP NOT NULL
)
"""
DATE_COLUMNS = ["day", "ts"]
REGIONS = ["North", "South", "East", "West", "Central"]


def rows(count: int, seed: int) -> Iterator[tuple]:
    rng = random.Random(seed)
    first_day = dt.date(2020, 1, 1).toordinal()
    epoch = dt.datetime(2020, 1, 1)
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    for i in range(count):
        yield (
            i,
            rng.randrange(1, 500),
            round(rng.uniform(0.5, 2_000.0), 2),
            rng.random(),
            REGIONS[i % len(REGIONS)],
            "".join(rng.choices(letters, k=6)),
            dt.date.fromordinal(first_day + rng.randrange(2_000)).isoformat(),
            (epoch + dt.timedelta(seconds=rng.randrange(170_000_000))).isoformat(sep=" "),
        )


def make(path: Path, count: int, seed: int = 0) -> Path:
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        con.execute(SCHEMA)
        con.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows(count, seed))
        con.commit()
    finally:
        con.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make(args.out, args.rows, args.seed)
    print(f"wrote {args.rows:,} rows to {args.out}")


if __name__ == "__main__":
    main()
