"""Benchmark: big query_db answers through MCP, against pd.read_sql_query, in one run.

``python bench/bench_big_tables.py`` (10k, 100k and 1M rows) or ``--quick`` (10k rows,
a few seconds). A generated SQLite table (8 columns: ints, floats, short strings, ISO
dates and timestamps; bench/make_big_table.py) is fetched with
``Host.call("x.query_db", ...)`` from the built-in server over

- stdio (mcp_magic's reader) and streamable HTTP (``--transport http``),
- each through the Arrow fast path (``arrow``: the host advertises the
  ``io.github.mcp-magic/arrow-tables`` extension, as it always does) and through the JSON
  path (``json``: the same host without the extension, as any other client gets it),
- optionally (``--sdk``) over stdio with the SDK's own, quadratic reader, JSON path,

and the same SQL through ``pd.read_sql_query(..., parse_dates=[day, ts])`` on the same
file, which gives the same dtypes (checked with ``assert_frame_equal`` first). Reported:

- time, best of a few runs, and the ratio to the baseline (goals: <= 1.5x at 100k and
  1M, <= 2x at 10k), also as CPU seconds of kernel and server together;
- scaling per 10x rows (goal: at most 11x the time);
- memory at each size, each method in a fresh process (so one method's heap does
  not hide another's), after one warm-up fetch (of up to 100,000 rows, so one-time
  imports do not count as held memory): the kernel's peak RSS rise against the DataFrame's
  ``memory_usage(deep=True)`` (goal <= 3x), the RSS still held after ``del df;
  gc.collect()`` (goal: given back, i.e. at most a tenth of the frame), and the server's
  peak RSS rise against the answer's size on the wire (goal <= 2x);
- a small call's round trip against the raw SDK (bench/bench_call.py, goal <= 1.10x;
  skipped with ``--quick``).

The built-in server caps answers at 100,000 rows by default (the calls pass ``limit=N``)
and at a number of bytes (``--max-answer-bytes``, set to 1 GiB here).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import gc
import json
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
SERVER_GOAL = 2.0
SMALL_CALL_GOAL = 1.10
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

    from mcp_magic.host import config

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


def connect_json(host: Host, name: str, connect: Callable[[], None]) -> None:
    """Connect without announcing the Arrow extension: the server answers JSON rows."""
    import mcp_magic.host.sessions as sessions

    announce = sessions.client_extensions
    sessions.client_extensions = list  # looked up at connect: no extensions
    try:
        connect()
    finally:
        sessions.client_extensions = announce


def connect_with_sdk_reader(host: Host, name: str, db: Path, options: list[str]) -> None:
    """The built-in server over the SDK's own stdio transport (the reader this repo replaced)."""
    import mcp.client.stdio

    import mcp_magic.host.stdio_transport as ours

    linear = ours.stdio_client
    ours.stdio_client = mcp.client.stdio.stdio_client  # sessions looks it up at connect
    try:
        connect_builtin(host, name, db, options)
    finally:
        ours.stdio_client = linear


# -- memory, in a fresh process per method -------------------------------------------------


def answer_bytes(host: Host, name: str, rows: int) -> int:
    """The size of the answer's JSON on the wire (the server's own serialization)."""
    from mcp_magic.tables.big_json import compact_rows

    result = host.manager.call_tool(name, "query_db", {"sql": sql_for(rows), "limit": rows})
    compact = compact_rows(result)
    if compact is not None:  # parsed into columns: the rows as they came, for their size
        result.structured_content["rows"] = compact.rows()
    return len(result.model_dump_json(by_alias=True, exclude_none=True))


def probe(method: str, db: Path, rows: int) -> dict[str, float]:
    """One fetch in this (fresh) process: memory figures as a dict."""
    if method == "read_sql_query":
        baseline(db, 10)
        run = measure(lambda: baseline(db, rows), None, rows)
        return {"frame": run.frame_bytes, "peak": run.kernel_rise, "held": run.kernel_held,
                "kept": run.kernel_kept, "server": 0, "answer": 0}
    transport, path = method.split("-")
    options = server_options()
    with contextlib.ExitStack() as stack:
        host = Host(connect_timeout=120)

        def connect() -> None:
            if transport == "stdio":
                connect_builtin(host, "x", db, options)
            else:
                url, _ = stack.enter_context(http_server(db, options))
                host.connect("x", url=url)

        if path == "json":
            connect_json(host, "x", connect)
        else:
            connect()
        stack.enter_context(host)  # closed before the HTTP server
        pid = host.manager.get("x").pid if transport == "stdio" else stack_pid(host, db)
        # warm: imports (pandas and pyarrow parts a big table first needs), first calls
        warm = min(rows, 100_000)
        host.call("x.query_db", sql=sql_for(warm), limit=warm)
        run = measure(lambda: host.call("x.query_db", sql=sql_for(rows), limit=rows), pid, rows)
        size = answer_bytes(host, "x", rows)
    return {"frame": run.frame_bytes, "peak": run.kernel_rise, "held": run.kernel_held,
            "kept": run.kernel_kept, "server": run.server_rise, "answer": size}


def stack_pid(host: Host, db: Path) -> int | None:
    """The HTTP server's pid: the only child of this process that serves `db`."""
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if str(db) in child.cmdline():
                return child.pid
    return None


def run_probe(method: str, db: Path, rows: int) -> dict[str, float] | None:
    command = [sys.executable, __file__, "--probe", method, "--db", str(db),
               "--sizes", str(rows)]
    done = subprocess.run(command, env=_env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        print(f"!! memory probe {method} failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(lines[-1])


def small_call(quick: bool) -> str:
    """bench/bench_call.py's verdict line: a small call's round trip against the raw SDK."""
    if quick:
        return "skipped with --quick (python bench/bench_call.py)"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_call.py")], env=_env(),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("ratio")]
    return lines[-1] if lines else f"bench_call.py failed: {done.stderr.strip()[-200:]}"


# -- the run ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="10,000 rows, 3 runs, no memory probes or small-call bench "
                             "(a smoke test)")
    parser.add_argument("--sizes", default=None, help="comma-separated row counts")
    parser.add_argument("--db", type=Path, help="reuse a table made by make_big_table.py")
    parser.add_argument("--sdk", action="store_true",
                        help="also the SDK's own stdio reader (JSON path; slow at 1M rows)")
    parser.add_argument("--no-http", action="store_true", help="skip streamable HTTP")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    parser.add_argument("--repeat", type=int, default=None, help="runs per size (best is kept)")
    parser.add_argument("--memory-only", action="store_true",
                        help="only the memory probes (needs --db)")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # one method's memory, as JSON
    args = parser.parse_args(argv)

    sizes = [10_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.sizes:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    if args.probe:
        print(json.dumps(probe(args.probe, args.db, max(sizes))))
        return 0
    if args.memory_only:
        if args.db is None:
            parser.error("--memory-only needs --db (python bench/make_big_table.py)")
        kinds = ["stdio"] + ([] if args.no_http else ["http"])
        report_memory({(f"{kind}-{path}", rows): run_probe(f"{kind}-{path}", args.db, rows)
                       for rows in sizes for path in ("arrow", "json") for kind in kinds}, sizes)
        return 0

    with contextlib.ExitStack() as stack:
        db = args.db
        if db is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-big-")))
            start = time.perf_counter()
            db = make(tmp / "big.db", max(sizes))
            print(f"generated {max(sizes):,} rows in {time.perf_counter() - start:.1f} s "
                  f"({db.stat().st_size / MB:.0f} MB)")
        options = server_options()
        server = None if args.no_http else stack.enter_context(http_server(db, options))
        host = stack.enter_context(Host(connect_timeout=120))  # closed before the server
        methods: dict[str, tuple[Callable[[int], pd.DataFrame], int | None]] = {}
        methods["read_sql_query"] = (lambda n: baseline(db, n), None)

        def via(name: str) -> Callable[[int], pd.DataFrame]:
            return lambda n: host.call(f"{name}.query_db", sql=sql_for(n), limit=n)

        for path in ("arrow", "json"):
            name = f"stdio-{path}"
            connect = functools.partial(connect_builtin, host, name, db, options)
            connect_json(host, name, connect) if path == "json" else connect()
            methods[name] = (via(name), host.manager.get(name).pid)
            if server is not None:
                url, pid = server
                name = f"http-{path}"
                connect = functools.partial(host.connect, name, url=url)
                connect_json(host, name, connect) if path == "json" else connect()
                methods[name] = (via(name), pid)
        if args.sdk:
            connect_json(host, "sdk-stdio",
                         lambda: connect_with_sdk_reader(host, "sdk-stdio", db, options))
            methods["sdk-stdio"] = (via("sdk-stdio"), host.manager.get("sdk-stdio").pid)
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
                results[name, rows] = min(runs, key=lambda r: r.seconds)
                print(f"  {rows:>9,} rows  {name:15s} {results[name, rows].seconds:8.3f} s, "
                      f"CPU {results[name, rows].cpu:8.3f} s (best of {repeat})", flush=True)
        names = list(methods)
        memory = {} if args.no_memory or args.quick else {
            (name, rows): run_probe(name, db, rows)
            for rows in sizes for name in names if name != "sdk-stdio"}
    report(results, sizes, names)
    report_memory(memory, sizes)
    print(f"\nSmall calls (goal <= {SMALL_CALL_GOAL:g}x the raw SDK): {small_call(args.quick)}")
    return 0


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(results: dict[tuple[str, int], Run], sizes: list[int], names: list[str]) -> None:
    base = "read_sql_query"
    others = [n for n in names if n != base]
    for label, attr in (("Time", "seconds"), ("CPU time (kernel + server)", "cpu")):
        print(f"\n{label}, and ratio to pd.read_sql_query on the same file (goal in brackets):")
        print(f"{'rows':>10s}  {base:>14s}" + "".join(f"  {n:>18s}" for n in others))
        for rows in sizes:
            b = getattr(results[base, rows], attr)
            cells = "".join(
                f"  {getattr(results[n, rows], attr):8.3f} s "
                f"{getattr(results[n, rows], attr) / b:5.1f}x"
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


def report_memory(memory: dict[tuple[str, int], dict[str, float] | None],
                  sizes: list[int]) -> None:
    if not memory:
        return
    names = list(dict.fromkeys(name for name, _ in memory))
    print(f"\nMemory, each fetch in a fresh process. Kernel: peak RSS rise / the DataFrame's "
          f"memory_usage(deep=True) (goal <= {MEMORY_GOAL:g}x), and the rise still held "
          f"after `del df; gc.collect()` (goal: given back, <= 0.1x the frame); kept: what "
          f"is still there after malloc_trim (memory referenced, not only cached by malloc).")
    print("Below some MB the fixed costs of a fetch (buffers, allocator arenas) outweigh the "
          "frame, read_sql_query's own included; `vs base` is the peak over read_sql_query's.")
    print(f"{'rows':>10s}  {'method':15s} {'frame':>9s} {'peak':>10s} {'ratio':>6s}      "
          f"{'held':>9s}        {'kept':>9s}  {'vs base':>7s}")
    for rows in sizes:
        base = memory.get(("read_sql_query", rows))
        for name in names:
            m = memory.get((name, rows))
            if m is None:
                continue
            frame = m["frame"]
            judged = name != "read_sql_query"  # the baseline has no goal of its own
            peak_ok = verdict(m["peak"] <= MEMORY_GOAL * frame) if judged else ""
            held_ok = verdict(m["held"] <= 0.1 * frame) if judged else ""
            versus = f"{m['peak'] / base['peak']:6.2f}x" if base and base["peak"] > 0 else ""
            print(f"{rows:>10,}  {name:15s} {frame / MB:6.1f} MB {m['peak'] / MB:7.1f} MB "
                  f"{m['peak'] / frame:5.1f}x {peak_ok:6s}"
                  f"{m['held'] / MB:6.1f} MB {held_ok:6s} "
                  f"{m['kept'] / MB:6.1f} MB  {versus:>7s}")
    print(f"\nServer: peak RSS rise during the call / the answer's size on the wire (its JSON "
          f"message; Arrow answers carry the table as base64 in it) (goal <= {SERVER_GOAL:g}x)")
    print(f"{'rows':>10s}  {'method':15s} {'answer':>9s} {'server peak':>12s} {'ratio':>6s}")
    for rows in sizes:
        for name in names:
            m = memory.get((name, rows))
            if m is None or not m["answer"]:
                continue
            ratio = m["server"] / m["answer"]
            print(f"{rows:>10,}  {name:15s} {m['answer'] / MB:6.1f} MB {m['server'] / MB:9.1f} MB"
                  f" {ratio:5.1f}x {verdict(ratio <= SERVER_GOAL)}")


if __name__ == "__main__":
    raise SystemExit(main())
