"""Benchmark: a warm `%mcp call` round trip against a raw `mcp.Client.call_tool`.

Both talk to the same kind of stdio server (tests/servers/fault_server.py, tool
`echo`), each over its own already-warm connection. The sides run interleaved in
small blocks within each round, so machine noise hits all of them alike:

  raw      `await client.call_tool("echo", {"text": "hi"})` on an `mcp.Client`
           opened once inside one `asyncio.run(...)`
  manager  `SessionManager.call_tool("f", "echo", {"text": "hi"})` (no magic parsing)
  magic    `shell.run_line_magic("mcp", "call f.echo text=hi")`

The synchronous sides run inside the same `asyncio.run` (on the main thread, as
ipykernel runs cells inside its own loop), so nothing is torn down between blocks.

Goal: median `%mcp call` per call <= 1.10x the raw median. A round trip's time spreads
widely on a loaded machine (p10 to p90 is about 1.2 to 1.9 ms here), so the full run
takes 1,000 calls per side; ``--quick`` (90) is a smoke test whose ratio moves by 0.1.

A second part times calls one at a time, ``--pause`` ms apart (20), the sides taking
turns call by call: the way a user runs cells. Between calls every thread and the
server go idle, so each call pays for waking them and for code that has left the CPU's
caches; a warm run does not show that.

A third part is what a user sees: cells in a real kernel (ipykernel, started here), one
at a time and ``--pause`` apart, timed from the execute request to its reply:
``r = await client.call_tool("echo", {"text": "hi"})`` on an `mcp.Client` opened in an
earlier cell, against ``r = %mcp call f.echo text=hi``. ``--cells`` per side (100).

Run ``python bench/bench_call.py`` (10 rounds x 100 calls per side, then 200 calls per
side one at a time, then 100 cells per side) or ``--quick`` (no kernel).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = ROOT / "tests" / "servers" / "fault_server.py"
GOAL = 1.10
SIDES = ("raw", "manager", "magic")
LABELS = {
    "raw": "raw     mcp.Client.call_tool",
    "manager": "manager SessionManager.call_tool",
    "magic": "magic   %mcp call f.echo text=hi",
}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:7.3f} ms"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed_block(
    call: Callable[[], Any], is_async: bool, count: int
) -> tuple[list[float], float, float]:
    """Wall time of each call, and the CPU time this process (all threads) and its main
    thread spent on them."""
    times = []
    clock = time.perf_counter
    cpu_start, main_start = time.process_time(), time.thread_time()
    for _ in range(count):
        start = clock()
        if is_async:
            await call()
        else:
            call()
        times.append(clock() - start)
    return times, time.process_time() - cpu_start, time.thread_time() - main_start


class Samples:
    """Per-call wall times, CPU time and paired block ratios, per side."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {side: [] for side in SIDES}
        self.cpu: dict[str, float] = dict.fromkeys(SIDES, 0.0)
        self.main_cpu: dict[str, float] = dict.fromkeys(SIDES, 0.0)
        self.block_ratios: dict[str, list[float]] = {side: [] for side in SIDES}
        self.rounds: list[dict[str, float]] = []
        self.spaced: dict[str, list[float]] = {}  # one call at a time, per side


async def measure(
    shell: Any, manager: Any, rounds: int, calls: int, block: int, warmup: int,
    spaced: int = 0, pause: float = 0.02,
) -> Samples:
    import mcp

    params = mcp.StdioServerParameters(command=sys.executable, args=[str(SERVER)])
    async with mcp.Client(params) as client:
        args = {"text": "hi"}

        def raw_call() -> Awaitable[Any]:
            return client.call_tool("echo", args)

        calls_by_side: dict[str, tuple[Callable[[], Any], bool]] = {
            "raw": (raw_call, True),
            "manager": (lambda: manager.call_tool("f", "echo", {"text": "hi"}), False),
            "magic": (lambda: shell.run_line_magic("mcp", "call f.echo text=hi"), False),
        }

        # Sanity: every side really gets "hi" back.
        raw_result = await raw_call()
        assert raw_result.content[0].text == "hi", raw_result
        assert manager.call_tool("f", "echo", args).content[0].text == "hi"
        assert str(shell.run_line_magic("mcp", "call f.echo text=hi")) == "hi"

        for side in SIDES:
            call, is_async = calls_by_side[side]
            await timed_block(call, is_async, warmup)

        out = Samples()
        for number in range(rounds):
            round_wall: dict[str, list[float]] = {side: [] for side in SIDES}
            done = 0
            turn = number
            while done < calls:
                size = min(block, calls - done)
                # Rotate which side goes first, so no side always follows another.
                order = SIDES[turn % 3 :] + SIDES[: turn % 3]
                turn += 1
                block_medians = {}
                for side in order:
                    call, is_async = calls_by_side[side]
                    wall, cpu, main_cpu = await timed_block(call, is_async, size)
                    round_wall[side] += wall
                    out.cpu[side] += cpu
                    out.main_cpu[side] += main_cpu
                    block_medians[side] = statistics.median(wall)
                for side in SIDES:
                    out.block_ratios[side].append(block_medians[side] / block_medians["raw"])
                done += size
            for side in SIDES:
                out.wall[side] += round_wall[side]
            out.rounds.append({side: statistics.median(round_wall[side]) for side in SIDES})
        if spaced:
            out.spaced = await one_at_a_time(calls_by_side, spaced, pause)
    return out


async def one_at_a_time(
    calls_by_side: dict[str, tuple[Callable[[], Any], bool]], count: int, pause: float
) -> dict[str, list[float]]:
    """Wall time of single calls `pause` seconds apart, the sides taking turns."""
    wall: dict[str, list[float]] = {side: [] for side in SIDES}
    for number in range(count):
        for side in SIDES[number % 3 :] + SIDES[: number % 3]:
            call, is_async = calls_by_side[side]
            time.sleep(pause)  # idle, as between cells (the loop is not needed meanwhile)
            start = time.perf_counter()
            if is_async:
                await call()
            else:
                call()
            wall[side].append(time.perf_counter() - start)
    return wall


KERNEL_CELLS = {
    "raw": 'r = await client.call_tool("echo", {"text": "hi"})',
    "magic": "r = %mcp call f.echo text=hi",
}


def kernel_cells(count: int, pause: float) -> dict[str, list[float]]:
    """Execute-to-reply time of `KERNEL_CELLS` in a real kernel, taking turns."""
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    from kernel_utils import ok, start_kernel, stop_kernel

    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(SERVER))}"
    with tempfile.TemporaryDirectory(prefix="bench-call-") as directory:
        km, kc = start_kernel(Path(directory))
        try:
            ok(kc, f"%load_ext mcp_magic\n%mcp connect f -- {command}")
            ok(kc, "import mcp, sys\n"
                   "client = mcp.Client(mcp.StdioServerParameters("
                   f"command=sys.executable, args=[{str(SERVER)!r}]))\n"
                   "await client.__aenter__()")
            wall: dict[str, list[float]] = {side: [] for side in KERNEL_CELLS}
            for number in range(count):
                for side in list(KERNEL_CELLS)[:: 1 if number % 2 else -1]:
                    time.sleep(pause)
                    start = time.perf_counter()
                    reply = kc.execute_interactive(KERNEL_CELLS[side], timeout=60,
                                                   output_hook=lambda _msg: None)
                    wall[side].append(time.perf_counter() - start)
                    if reply["content"]["status"] != "ok":
                        raise RuntimeError(f"{side} cell failed: {reply['content']}")
            # The raw client cannot be closed from another cell (anyio: "exit cancel scope
            # in a different task"); its server goes when the kernel does.
            ok(kc, "%mcp disconnect f")
        finally:
            stop_kernel(km, kc)
    return wall


def breakdown(shell: Any, manager: Any, rounds: int, calls: int) -> list[tuple[str, float]]:
    """Main-thread CPU per call as the magic's steps are added one by one.

    Measured around real round trips (the CPU caches are cold after each wait, so
    steps cost several times what a tight loop of them would). Uses private helpers
    of magics.py; if they change, this part is skipped instead of crashing.
    """
    from mcp_magic import magics

    obj = shell.magics_manager.registry["McpMagics"]
    parser = magics._call_args
    line = "f.echo text=hi"

    def plain() -> Any:
        return manager.call_tool("f", "echo", {"text": "hi"})

    def parsed() -> Any:
        # As `_do_call` parses a line without options: words, target, typed arguments.
        words = magics._split(line)
        server, tool_name = magics.parse_target(words[0])
        tool = manager.tool(server, tool_name)
        arguments = magics.parse_tool_arguments(words[1:], tool.input_schema)
        magics.missing_message(line, arguments, tool.input_schema)
        return plain()

    def with_progress() -> Any:
        progress = obj._progress("f.echo")
        result = manager.call_tool(
            "f", "echo", {"text": "hi"}, on_progress=progress.update if progress else None
        )
        if progress is not None:
            progress.close()
        return result

    def with_value() -> Any:
        return obj._tool_value("f", "echo", plain())

    steps: dict[str, Callable[[], Any]] = {
        "SessionManager.call_tool": plain,
        "  + argument parsing before it (words, key=value)": parsed,
        "  + progress bar object and on_progress callback": with_progress,
        "  + result -> value after it (_tool_value)": with_value,
        "McpMagics._do_call (all of the above)": lambda: obj._do_call(parser, line),
        "%mcp call via shell.run_line_magic": lambda: shell.run_line_magic(
            "mcp", "call f.echo text=hi"
        ),
    }
    per_block: dict[str, list[float]] = {name: [] for name in steps}
    for number in range(rounds):
        names = list(steps)
        names = names[number % len(names) :] + names[: number % len(names)]
        for name in names:
            for _ in range(5):
                steps[name]()
            start = time.thread_time()
            for _ in range(calls):
                steps[name]()
            per_block[name].append((time.thread_time() - start) / calls)
    return [(name, statistics.median(values)) for name, values in per_block.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds (default 10)")
    parser.add_argument("--calls", type=int, default=100, help="calls per side per round (100)")
    parser.add_argument("--block", type=int, default=10, help="calls per side per turn (10)")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up calls per side (50)")
    parser.add_argument("--spaced", type=int, default=200,
                        help="calls per side one at a time (200; 0: skip)")
    parser.add_argument("--pause", type=float, default=20.0,
                        help="milliseconds between those calls (20)")
    parser.add_argument("--cells", type=int, default=100,
                        help="cells per side in a real kernel (100; 0: skip)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls, args.block, args.warmup = 3, 30, 5, 20
        args.spaced, args.cells = 30, 0

    import psutil
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "mcp_magic")
    try:
        command = f"{shlex.quote(sys.executable)} {shlex.quote(str(SERVER))}"
        shell.run_line_magic("mcp", f"connect f -- {command}")
        manager = shell.magics_manager.registry["McpMagics"].manager
        samples = asyncio.run(
            measure(shell, manager, args.rounds, args.calls, args.block, args.warmup,
                    args.spaced, args.pause / 1e3)
        )
        try:
            parts = breakdown(shell, manager, *((2, 10) if args.quick else (6, 100)))
        except Exception as exc:  # private helpers may have changed: skip, do not crash
            parts = []
            print(f"(breakdown skipped: {type(exc).__name__}: {exc})")
    finally:
        shell.run_line_magic("unload_ext", "mcp_magic")
    cells = kernel_cells(args.cells, args.pause / 1e3) if args.cells else {}

    n = len(samples.wall["raw"])
    print(
        f"\n{args.rounds} rounds x {args.calls} calls per side, interleaved in blocks of "
        f"{args.block} ({n} timed calls per side, after {args.warmup} warm-up calls each)"
    )
    medians = {side: statistics.median(samples.wall[side]) for side in SIDES}
    raw_cpu = samples.cpu["raw"] / n
    print(
        f"{'per call':34s} {'median':>10s} {'p10':>10s} {'p90':>10s}  vs raw  "
        f"{'paired':>6s}  {'CPU/call':>10s}  vs raw  {'main thr.':>10s}"
    )
    for side in SIDES:
        data = samples.wall[side]
        cpu = samples.cpu[side] / n
        print(
            f"{LABELS[side]:34s} {ms(medians[side])} {ms(pct(data, 0.1))} "
            f"{ms(pct(data, 0.9))}  {medians[side] / medians['raw']:5.2f}x "
            f"{statistics.median(samples.block_ratios[side]):5.2f}x  "
            f"{ms(cpu)}  {cpu / raw_cpu:5.2f}x  {ms(samples.main_cpu[side] / n)}"
        )
    print(
        "  paired = median over blocks of (block median / raw block median next to it);\n"
        "  CPU/call = CPU time of this process (all threads; not the server) per call;\n"
        "  main thr. = the part of it spent on the main (notebook) thread."
    )
    print("per-round medians:")
    for number, medians_round in enumerate(samples.rounds, 1):
        raw = medians_round["raw"]
        print(
            f"  round {number}: raw {ms(raw)}  manager/raw {medians_round['manager'] / raw:.2f}x"
            f"  magic/raw {medians_round['magic'] / raw:.2f}x"
        )
    print(
        f"overhead per call (medians): manager - raw {ms(medians['manager'] - medians['raw'])}, "
        f"magic - manager {ms(medians['magic'] - medians['manager'])}"
    )
    if samples.spaced:
        raw_spaced = statistics.median(samples.spaced["raw"][5:])
        print(f"one call at a time, {args.pause:g} ms apart, sides taking turns "
              f"({len(samples.spaced['raw'])} calls per side, the first 5 left out):")
        for side in SIDES:
            data = samples.spaced[side][5:]
            median = statistics.median(data)
            print(f"  {LABELS[side]:34s} {ms(median)} {ms(pct(data, 0.1))} "
                  f"{ms(pct(data, 0.9))}  {median / raw_spaced:5.2f}x")
    if cells:
        raw_cell = statistics.median(cells["raw"][5:])
        print(f"cells in a real kernel, {args.pause:g} ms apart, taking turns "
              f"({len(cells['raw'])} per side, the first 5 left out), execute to reply:")
        for side, code in KERNEL_CELLS.items():
            data = cells[side][5:]
            median = statistics.median(data)
            print(f"  {code:52s} {ms(median)} {ms(pct(data, 0.1))} {ms(pct(data, 0.9))}  "
                  f"{median / raw_cell:5.2f}x")
    if parts:
        print("where the magic's time goes: main-thread CPU per call, steps added one by one")
        base = parts[0][1]
        for label, seconds in parts:
            print(f"  {label:52s} {seconds * 1e6:7.1f} us  ({(seconds - base) * 1e6:+6.1f} us)")
    magic_ratio = medians["magic"] / medians["raw"]
    verdict = "OK" if magic_ratio <= GOAL else "SLOWER THAN GOAL"
    spaced = ""
    if samples.spaced:
        one = {side: statistics.median(samples.spaced[side][5:]) for side in ("magic", "raw")}
        spaced = f"; one at a time {one['magic'] / one['raw']:.2f}x"
    if cells:
        cell = {side: statistics.median(cells[side][5:]) for side in KERNEL_CELLS}
        spaced += f"; cells in a kernel {cell['magic'] / cell['raw']:.2f}x"
    print(
        f"ratio %mcp call / raw (medians): {magic_ratio:.2f}x  (goal <= {GOAL:.2f}x)  {verdict}   "
        f"[paired {statistics.median(samples.block_ratios['magic']):.2f}x; "
        f"SessionManager.call_tool / raw {medians['manager'] / medians['raw']:.2f}x{spaced}]"
    )

    left = [p for p in psutil.Process().children(recursive=True) if p.is_running()]
    print(f"child processes left: {len(left)}" + (f" {[p.pid for p in left]}" if left else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
