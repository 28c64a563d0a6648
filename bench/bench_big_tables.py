"""Benchmark: big query_db answers through MCP, against pd.read_sql_query in process.

``python bench/bench_big_tables.py`` (10k, 100k and 1M rows) or ``--quick`` (10k rows).
A generated SQLite table (8 columns: ints, floats, short strings, ISO dates and
timestamps; bench/make_big_table.py) is fetched with ``Host.call("x.query_db", ...)``
from the built-in server

- over stdio with mcp_magic's reader (``stdio``),
- over stdio with the SDK's own reader (``sdk-stdio``, the quadratic one it replaces),
- over streamable HTTP (``http``, ``python -m mcp_magic.server --transport http``),

and the same SQL through ``pd.read_sql_query(..., parse_dates=[day, ts])`` on the same
file, which gives the same dtypes. Every figure comes from this one run. Reported:
seconds and the ratio to the baseline (goals: <= 1.5x at 100k and 1M, <= 2x at 10k),
also as CPU seconds of the kernel and the server together (steadier on a busy machine),
the scaling 10k -> 100k -> 1M (goal: 10x the rows costs at most 11x the time), the
kernel's peak RSS rise against the DataFrame's ``memory_usage(deep=True)`` (goal <= 3x)
and what is still held after the frame is dropped (before and after ``malloc_trim``:
the SDK's dispatcher keeps the last message it read until the next one arrives), and the
server's peak RSS.
The built-in server caps answers at 100,000 rows by default (the calls pass ``limit=N``)
and, where it has the option, at a number of bytes (``--max-answer-bytes``, set to 1 GiB).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from make_big_table import DATE_COLUMNS, TABLE, make  # noqa: E402

from mcp_magic import Host  # noqa: E402

GOALS = {10_000: 2.0, 100_000: 1.5, 1_000_000: 1.5}
SCALING_GOAL = 11.0
MEMORY_GOAL = 3.0
MB = 1e6


# -- memory ----------------------------------------------------------------------------


def _trim() -> None:
    """Collect garbage and hand freed heap back to the OS, so each run starts level."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _rss(pid: int | None) -> int:
    """Resident set size of a process (0 when there is none)."""
    if pid is None:
        return 0
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


class PeakSampler:
    """Samples this process's and a server's RSS every few milliseconds, keeping the peaks."""

    def __init__(self, server_pid: int | None, interval: float = 0.005) -> None:
        self.server_pid = server_pid
        self.interval = interval
        self.kernel_start = _rss(os.getpid())
        self.server_start = _rss(server_pid)
        self.kernel_peak = self.kernel_start
        self.server_peak = self.server_start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.kernel_peak = max(self.kernel_peak, _rss(os.getpid()))
            if self.server_pid:
                self.server_peak = max(self.server_peak, _rss(self.server_pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- one measured fetch -------------------------------------------------------------------


def _cpu(pid: int | None) -> float:
    """CPU seconds used so far by a process (all its threads)."""
    if pid is None:
        return 0.0
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


@dataclass
class Run:
    seconds: float
    cpu: float  # CPU seconds of this process and the server: steadier on a busy machine
    frame_bytes: int
    kernel_rise: int
    kernel_held: int  # RSS still above the start once the frame is dropped (no trim)
    kernel_kept: int  # the same after malloc_trim: memory still referenced somewhere
    server_rise: int


def measure(fetch: Callable[[], pd.DataFrame], server_pid: int | None, rows: int) -> Run:
    _trim()
    with PeakSampler(server_pid) as sampler:
        cpu = _cpu(os.getpid()) + _cpu(server_pid)
        start = time.perf_counter()
        frame = fetch()
        seconds = time.perf_counter() - start
        cpu = _cpu(os.getpid()) + _cpu(server_pid) - cpu
    if len(frame) != rows:
        raise SystemExit(f"expected {rows:,} rows, got {len(frame):,}")
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    del frame
    gc.collect()
    held = _rss(os.getpid()) - sampler.kernel_start
    _trim()
    kept = _rss(os.getpid()) - sampler.kernel_start
    return Run(
        seconds,
        cpu,
        frame_bytes,
        sampler.kernel_peak - sampler.kernel_start,
        held,
        kept,
        sampler.server_peak - sampler.server_start,
    )


def sql_for(rows: int) -> str:
    return f"SELECT * FROM {TABLE} WHERE id < {rows} ORDER BY id"


def baseline(db: Path, rows: int) -> pd.DataFrame:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return pd.read_sql_query(sql_for(rows), con, parse_dates=DATE_COLUMNS)
    finally:
        con.close()


# -- servers ----------------------------------------------------------------------------------

MAX_ANSWER_BYTES = 1 << 30


def _env() -> dict[str, str]:
    """This checkout's mcp_magic first, for the server processes."""
    return {**os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def server_options() -> list[str]:
    """Options lifting the built-in server's answer cap, where the server has one."""
    usage = subprocess.run([sys.executable, "-m", "mcp_magic.server", "--help"], env=_env(),
                           cwd=ROOT, capture_output=True, text=True).stdout
    return ["--max-answer-bytes", str(MAX_ANSWER_BYTES)] if "--max-answer-bytes" in usage else []


def connect_builtin(host: Host, name: str, db: Path, options: list[str]) -> None:
    """`host.connect(name, builtin=True, db=db)`, with `options` added to the command."""
    import dataclasses

    from mcp_magic import config

    spec = config.builtin_spec(str(db))
    host.manager.connect(name, dataclasses.replace(spec, args=(*spec.args, *options)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def http_server(db: Path, options: list[str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    command = [sys.executable, "-m", "mcp_magic.server", "--transport", "http",
               "--port", str(port), "--db", str(db), *options]
    process = subprocess.Popen(command, env=_env(), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the HTTP server exited with code {process.returncode}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the HTTP server did not start within 30 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp", process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def connect_with_sdk_reader(host: Host, name: str, db: Path, options: list[str]) -> None:
    """The built-in server over the SDK's own stdio transport (the reader this repo replaced)."""
    import mcp.client.stdio

    import mcp_magic.stdio_transport as ours

    linear = ours.stdio_client
    ours.stdio_client = mcp.client.stdio.stdio_client  # sessions looks it up at connect
    try:
        connect_builtin(host, name, db, options)
    finally:
        ours.stdio_client = linear


# -- the run ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="10,000 rows, 3 runs, without the SDK's reader (a smoke test)")
    parser.add_argument("--sizes", default=None, help="comma-separated row counts")
    parser.add_argument("--db", type=Path, help="reuse a table made by make_big_table.py")
    parser.add_argument("--no-sdk", action="store_true", help="skip the SDK's stdio reader")
    parser.add_argument("--no-http", action="store_true", help="skip streamable HTTP")
    parser.add_argument("--repeat", type=int, default=None, help="runs per size (best is kept)")
    args = parser.parse_args(argv)

    sizes = [10_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.sizes:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]

    with contextlib.ExitStack() as stack:
        db = args.db
        if db is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-big-")))
            start = time.perf_counter()
            db = make(tmp / "big.db", max(sizes))
            print(f"generated {max(sizes):,} rows in {time.perf_counter() - start:.1f} s "
                  f"({db.stat().st_size / MB:.0f} MB)")
        options = server_options()
        if options:
            print("server option: " + " ".join(options))
        server = None if args.no_http else stack.enter_context(http_server(db, options))
        host = stack.enter_context(Host(connect_timeout=120))  # closed before the server
        methods: dict[str, tuple[Callable[[int], pd.DataFrame], int | None]] = {}
        methods["read_sql_query"] = (lambda n: baseline(db, n), None)

        def via(name: str) -> Callable[[int], pd.DataFrame]:
            return lambda n: host.call(f"{name}.query_db", sql=sql_for(n), limit=n)

        connect_builtin(host, "stdio", db, options)
        methods["stdio"] = (via("stdio"), host.manager.get("stdio").pid)
        if server is not None:
            url, pid = server
            host.connect("http", url=url)
            methods["http"] = (via("http"), pid)
        if not (args.no_sdk or args.quick):
            connect_with_sdk_reader(host, "sdk", db, options)
            methods["sdk-stdio"] = (via("sdk"), host.manager.get("sdk").pid)
        for fetch, _ in methods.values():
            fetch(10)  # warm up: imports, tool lists, first-call costs

        check = baseline(db, min(sizes))
        for name, (fetch, _) in methods.items():
            try:
                pd.testing.assert_frame_equal(fetch(min(sizes)), check)
            except AssertionError as exc:
                print(f"!! {name} differs from read_sql_query: {str(exc).splitlines()[0]}")
        del check

        results: dict[tuple[str, int], Run] = {}
        for rows in sizes:
            repeat = args.repeat or (3 if args.quick or 10_000 < rows <= 100_000 else
                                     5 if rows <= 10_000 else 1)
            for name, (fetch, pid) in methods.items():
                runs = [measure(lambda f=fetch, n=rows: f(n), pid, rows) for _ in range(repeat)]
                best = min(runs, key=lambda r: r.seconds)
                # Memory from the first run: later ones reuse what the first left allocated.
                first = runs[0]
                results[name, rows] = Run(best.seconds, best.cpu, first.frame_bytes,
                                          first.kernel_rise, first.kernel_held, first.kernel_kept,
                                          first.server_rise)
                print(f"  {rows:>9,} rows  {name:15s} {best.seconds:8.3f} s, "
                      f"CPU {best.cpu:8.3f} s (best of {repeat})", flush=True)
        report(results, sizes, list(methods))
    return 0


def report(results: dict[tuple[str, int], Run], sizes: list[int], names: list[str]) -> None:
    base = "read_sql_query"
    others = [n for n in names if n != base]
    for label, attr in (("Time", "seconds"), ("CPU time (kernel + server)", "cpu")):
        print(f"\n{label}, and ratio to pd.read_sql_query on the same file (goal in brackets):")
        print(f"{'rows':>10s}  {base:>14s}" + "".join(f"  {n:>20s}" for n in others))
        for rows in sizes:
            b = getattr(results[base, rows], attr)
            cells = "".join(
                f"  {getattr(results[n, rows], attr):9.3f} s "
                f"{getattr(results[n, rows], attr) / b:6.1f}x"
                for n in others
            )
            goal = GOALS.get(rows)
            print(f"{rows:>10,}  {b:12.3f} s{cells}" + (f"   [<= {goal:g}x]" if goal else ""))

    if len(sizes) > 1:
        print(f"\nScaling: ratio per step up in rows, wall time | CPU time "
              f"(goal: <= {SCALING_GOAL:g}x per 10x)")
        for name in names:
            steps = []
            for a, b in zip(sizes, sizes[1:]):
                wall = results[name, b].seconds / results[name, a].seconds
                cpu = results[name, b].cpu / max(results[name, a].cpu, 1e-3)
                steps.append(f"{a:,}->{b:,}: {wall:5.1f}x | {cpu:5.1f}x")
            print(f"  {name:15s} " + "   ".join(steps))

    print(f"\nMemory (first run): kernel peak RSS rise / DataFrame memory_usage(deep=True) "
          f"(goal <= {MEMORY_GOAL:g}x); RSS still held after `del df` and gc, and after "
          "malloc_trim (still referenced); server peak RSS rise")
    for rows in sizes:
        for name in names:
            r = results[name, rows]
            server = f"   server +{r.server_rise / MB:7.1f} MB" if name != base else ""
            print(f"  {rows:>9,} {name:15s} frame {r.frame_bytes / MB:7.1f} MB   "
                  f"peak +{r.kernel_rise / MB:7.1f} MB = {r.kernel_rise / r.frame_bytes:5.1f}x   "
                  f"held +{r.kernel_held / MB:7.1f} MB, trimmed +{r.kernel_kept / MB:7.1f} MB"
                  f"{server}")


if __name__ == "__main__":
    raise SystemExit(main())
