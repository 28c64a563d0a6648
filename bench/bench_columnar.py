"""Tables as Arrow against `pd.read_sql_query`: Host.call on the built-in server.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_columnar.py [ROWS ...]

For each size: a SQLite file of 8 columns (ints, floats, short strings, ISO dates,
timestamps), then in one run `pd.read_sql_query` (with the same dtypes as the host gives)
and `Host.call("data.query_db", ...)` over stdio and streamable HTTP, Arrow fast path, with
the server's caps lifted (`limit=` and `--max-answer-bytes`). Prints ratios of the best of
three runs each.
"""

from __future__ import annotations

import datetime as dt
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from mcp_magic.api import Host

SQL = "select * from facts"
BIG = str(1 << 40)


def make_db(path: Path, rows: int) -> None:
    rng = random.Random(1)
    start = dt.datetime(2020, 1, 1)
    con = sqlite3.connect(path)
    con.execute("create table facts (id integer primary key, qty integer, price real,"
                " score double, region text, product text, day date, at timestamp)")
    regions = ["north", "south", "east", "west"]

    def row(i: int) -> tuple:
        moment = start + dt.timedelta(seconds=rng.randrange(150_000_000))
        return (i, rng.randrange(100), rng.random() * 100, rng.gauss(0, 1), regions[i % 4],
                f"p{rng.randrange(5000)}", moment.date().isoformat(), moment.isoformat(sep=" "))

    con.executemany("insert into facts values (?,?,?,?,?,?,?,?)", (row(i) for i in range(rows)))
    con.commit()
    con.close()


def baseline(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as con:
        frame = pd.read_sql_query(SQL, con)
    for name in ("day", "at"):
        frame[name] = pd.to_datetime(frame[name], format="ISO8601")
    return frame


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


REPEAT = 3  # best of: the machine may be shared


def timed(call) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(REPEAT):
        value = None  # free the last frame before the next run
        began = time.perf_counter()
        value = call()
        best = min(best, time.perf_counter() - began)
    return best, value


def main(sizes: list[int]) -> None:
    server = [sys.executable, "-m", "mcp_magic.server"]
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            db = Path(tmp) / f"facts{rows}.db"
            make_db(db, rows)
            base, want = timed(lambda db=db: baseline(db))
            port = free_port()
            http = subprocess.Popen([*server, "--db", str(db), "--transport", "http", "--port",
                                     str(port), "--max-answer-bytes", BIG],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                with Host() as host:
                    host.connect("stdio", [*server, "--db", str(db), "--max-answer-bytes", BIG])
                    for _ in range(50):
                        try:
                            socket.create_connection(("127.0.0.1", port), 0.2).close()
                            break
                        except OSError:
                            time.sleep(0.1)
                    host.connect("http", url=f"http://127.0.0.1:{port}/mcp")
                    for name in ("stdio", "http"):
                        host.call(f"{name}.query_db", sql=SQL, limit=10)  # warm: first imports
                        took, frame = timed(lambda name=name, rows=rows: host.call(
                            f"{name}.query_db", sql=SQL, limit=rows))
                        pd.testing.assert_frame_equal(frame, want)
                        print(f"{rows:>9,} rows  {name:5}  read_sql_query {base:6.2f} s  "
                              f"Host.call {took:6.2f} s  ratio {took / base:5.2f}x", flush=True)
            finally:
                http.terminate()
                http.wait(10)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000])
