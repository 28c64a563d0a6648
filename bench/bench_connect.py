"""Benchmark: connecting several stdio servers at once, against the slowest single connect.

Each round, with one `SessionManager`:
  single      `connect(name, spec)` for each server, one after the other (each timed),
              then `disconnect_all()`; the slowest of them is the reference;
  concurrent  `connect_many({...})` with all of them at once, then `disconnect_all()`;
  raw         for scale: the same number of plain `mcp.Client(StdioServerParameters)`
              entered concurrently with `asyncio.gather` (no mcp_magic at all), i.e. what
              this machine allows; with 2 cores, several Python servers starting at once
              compete for CPU, so `raw / slowest single` is the floor for the ratio.
Rounds alternate which comes first. The server is tests/servers/fault_server.py
(``--command "CMD ARGS"`` runs another stdio server instead).

Goal: concurrent <= 1.5x the slowest single connect.
Run ``python bench/bench_connect.py`` (5 servers, 3 rounds) or ``--quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp_magic.host.config import StdioSpec  # noqa: E402
from mcp_magic.host.sessions import SessionManager  # noqa: E402

SERVER = ROOT / "tests" / "servers" / "fault_server.py"
GOAL = 1.5


COMMAND = [sys.executable, str(SERVER)]


def spec() -> StdioSpec:
    return StdioSpec(command=COMMAND[0], args=tuple(COMMAND[1:]))


def server_cpu(pid: int | None) -> float:
    """CPU seconds a server process has used so far (its start-up, right after connect)."""
    import psutil

    if pid is None:
        return float("nan")
    process = psutil.Process(pid)
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:  # e.g. npx -> node
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def singles(manager: SessionManager, count: int, cpu: list[float] | None = None) -> list[float]:
    times = []
    try:
        for i in range(count):
            start = time.perf_counter()
            session = manager.connect(f"s{i}", spec())
            times.append(time.perf_counter() - start)
            if cpu is not None:
                cpu.append(server_cpu(session.pid))
    finally:
        manager.disconnect_all()
    return times


def concurrent(manager: SessionManager, count: int) -> float:
    try:
        start = time.perf_counter()
        results = manager.connect_many({f"c{i}": spec() for i in range(count)})
        seconds = time.perf_counter() - start
    finally:
        manager.disconnect_all()
    failed = {name: str(r) for name, r in results.items() if isinstance(r, BaseException)}
    if failed:
        raise RuntimeError(f"connect_many failed: {failed}")
    return seconds


def raw_concurrent(count: int) -> float:
    """Seconds until `count` plain SDK clients are all connected and have listed tools."""
    import mcp
    from mcp.client.stdio import stdio_client

    async def own(client: mcp.Client, ready: asyncio.Event, stop: asyncio.Event) -> None:
        async with client:  # anyio: enter and exit in the same task
            await client.list_tools()
            ready.set()
            await stop.wait()

    async def go() -> float:
        params = mcp.StdioServerParameters(command=COMMAND[0], args=COMMAND[1:])
        with open(os.devnull, "w") as errlog:
            stop = asyncio.Event()
            readies = [asyncio.Event() for _ in range(count)]
            start = time.perf_counter()
            tasks = [
                asyncio.create_task(own(mcp.Client(stdio_client(params, errlog=errlog)), r, stop))
                for r in readies
            ]
            try:
                all_ready = asyncio.ensure_future(asyncio.gather(*(r.wait() for r in readies)))
                # An owner task that ends before everyone is ready has failed.
                await asyncio.wait(
                    [all_ready, *tasks], return_when=asyncio.FIRST_COMPLETED, timeout=120
                )
                seconds = time.perf_counter() - start
                if not all_ready.done():
                    all_ready.cancel()
                    failed = [t.exception() for t in tasks if t.done() and t.exception()]
                    raise RuntimeError(f"raw SDK clients did not all connect: {failed}")
            finally:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
            return seconds

    return asyncio.run(go())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=5, help="servers per round (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument(
        "--command", help="another stdio server command line (default: the fault server)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.servers, args.rounds = 2, 1
    if args.command:
        COMMAND[:] = shlex.split(args.command)

    # The first connect imports `mcp` (~0.8 s) on the loop thread; keep that out of round 1.
    import mcp.client.stdio  # noqa: F401
    import psutil

    manager = SessionManager()
    rows = []
    cpu: list[float] = []
    try:
        if not args.quick:
            singles(manager, 1)  # warm-up: loop thread, psutil, disk cache
        for number in range(args.rounds):
            if number % 2 == 0:
                single = singles(manager, args.servers, cpu)
                together = concurrent(manager, args.servers)
            else:
                together = concurrent(manager, args.servers)
                single = singles(manager, args.servers, cpu)
            raw = raw_concurrent(args.servers)
            rows.append((single, together, raw))
    finally:
        manager.close()

    n = args.servers
    shown = "fault_server.py" if not args.command else args.command
    print(f"{n} stdio servers ({shown}), {args.rounds} rounds")
    print(
        f"{'round':5s} {'singles (s)':>{7 * n}s}   {'slowest':>7s} {'sum':>7s} "
        f"{'connect_many':>12s} {'ratio':>6s}   {'raw gather':>10s} {'raw ratio':>9s}"
    )
    ratios, raw_ratios = [], []
    for number, (single, together, raw) in enumerate(rows, 1):
        slowest = max(single)
        ratios.append(together / slowest)
        raw_ratios.append(raw / slowest)
        cells = " ".join(f"{s:6.3f}" for s in single)
        print(
            f"{number:5d} {cells:>{7 * n}s}   {slowest:7.3f} {sum(single):7.3f} "
            f"{together:12.3f} {together / slowest:5.2f}x   {raw:10.3f} {raw / slowest:8.2f}x"
        )
    ratio = statistics.median(ratios)
    single_all = [s for single, _, _ in rows for s in single]
    print(
        f"median single connect {statistics.median(single_all):.3f} s, "
        f"median slowest {statistics.median(max(r[0]) for r in rows):.3f} s, "
        f"median connect_many {statistics.median(r[1] for r in rows):.3f} s, "
        f"median raw gather {statistics.median(r[2] for r in rows):.3f} s"
    )
    cores = os.cpu_count() or 1
    floor = n * statistics.median(cpu) / cores
    print(
        f"one server uses {statistics.median(cpu):.3f} s of CPU to start (median), so {n} "
        f"at once need >= {floor:.3f} s on {cores} cores = "
        f"{floor / statistics.median(max(r[0]) for r in rows):.2f}x the median slowest single "
        f"(CPU floor, before any host overhead)"
    )
    verdict = "OK" if ratio <= GOAL else "SLOWER THAN GOAL"
    print(
        f"ratio connect_many / slowest single: {ratio:.2f}x  (goal <= {GOAL}x)  {verdict}   "
        f"[raw SDK gather / slowest single: {statistics.median(raw_ratios):.2f}x; "
        f"connect_many / raw gather: "
        f"{statistics.median(r[1] / r[2] for r in rows):.2f}x]"
    )
    left = [p for p in psutil.Process().children(recursive=True) if p.is_running()]
    print(f"child processes left: {len(left)}" + (f" {[p.pid for p in left]}" if left else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
