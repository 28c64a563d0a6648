"""Run every bench/bench_*.py in turn; exit non-zero only if one of them crashed.

``python bench/run_all.py [--quick] [--timeout SECONDS]``. ``--quick`` is passed on
to each benchmark whose source mentions ``--quick``; one that does not runs at its
full size (and the run says so). Slow results are not failures: only a script that exits non-zero,
dies from a signal or exceeds ``--timeout`` counts as a crash.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per script")
    args = parser.parse_args(argv)

    scripts = sorted(HERE.glob("bench_*.py"))
    if not scripts:
        print(f"no bench_*.py in {HERE}")
        return 1
    results: list[tuple[str, str, float]] = []
    for script in scripts:
        command = [sys.executable, str(script)]
        note = ""
        if args.quick:
            if "--quick" in script.read_text(encoding="utf-8"):
                command.append("--quick")
            else:
                note = " (has no --quick: full size)"
        print(f"\n=== {script.name}{note} ===", flush=True)
        start = time.perf_counter()
        try:
            code = subprocess.run(command, cwd=HERE.parent, timeout=args.timeout).returncode
            status = "ok" if code == 0 else f"CRASHED (exit {code})"
        except subprocess.TimeoutExpired:
            status = f"CRASHED (timed out after {args.timeout:g} s)"
        results.append((script.name, status, time.perf_counter() - start))

    print("\n=== summary ===")
    for name, status, seconds in results:
        print(f"{name:24s} {status:28s} {seconds:7.1f} s")
    crashed = [name for name, status, _ in results if status != "ok"]
    if crashed:
        print(f"crashed: {', '.join(crashed)}")
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
