"""Benchmark: `%load_ext mcp_magic` in a fresh process, against importing `mcp` there.

Each measurement is its own fresh `python -c` process. A load child creates an
InteractiveShell first (not timed), then times only
`shell.run_line_magic("load_ext", "mcp_magic")` and reports which heavy modules
that pulled in. An import child times only `import mcp`, for scale (DESIGN.md
§7 says ~0.8 s). Children alternate, so noise hits both alike.

Two bytecode settings are measured, because with PYTHONDONTWRITEBYTECODE=1 (set
in the environment these were written in) an editable install of mcp_magic has
no .pyc files, so its modules are compiled from source in every new process:
  as-is    the environment unchanged (what the test suite sees here);
  cached   PYTHONPYCACHEPREFIX=<temp dir> with bytecode writing on (what a user's
           second and later kernel starts see); one warm-up child fills the cache.

Goal: median load time <= 0.15 s, and no `mcp`, `pandas` or `ipywidgets` in
sys.modules after loading. Run ``python bench/bench_load_ext.py`` or ``--quick``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.15
HEAVY = ("mcp", "pandas", "ipywidgets", "numpy", "anyio", "httpx", "httpx2", "pydantic", "psutil")
MARK = "BENCH-RESULT "

LOAD_CHILD = f"""
import json, sys, threading, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = set(sys.modules)
threads = threading.active_count()
start = time.perf_counter()
shell.run_line_magic("load_ext", "mcp_magic")
seconds = time.perf_counter() - start
new = sorted(set(sys.modules) - before)
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print({MARK!r} + json.dumps({{
    "seconds": seconds,
    "heavy": heavy,
    "new_modules": len(new),
    "new_top": sorted({{m.split(".")[0] for m in new}}),
    "new_threads": threading.active_count() - threads,
}}))
shell.run_line_magic("unload_ext", "mcp_magic")
"""

IMPORT_CHILD = f"""
import json, time
start = time.perf_counter()
import mcp
seconds = time.perf_counter() - start
print({MARK!r} + json.dumps({{"seconds": seconds}}))
"""

WARM_CHILD = LOAD_CHILD + "\nimport mcp\n"


def run_child(code: str, env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise RuntimeError(
        f"child failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10, help="children per kind and setting (10)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.n = 1

    as_is = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="mcp_magic-bench-pyc-") as cache_dir:
        cached = dict(os.environ, PYTHONPYCACHEPREFIX=cache_dir)
        cached.pop("PYTHONDONTWRITEBYTECODE", None)
        settings = {"as-is": as_is, "cached": cached}
        run_child(WARM_CHILD, cached)  # fill the bytecode cache; not counted

        loads: dict[str, list[dict]] = {name: [] for name in settings}
        imports: dict[str, list[float]] = {name: [] for name in settings}
        for i in range(args.n):
            order = list(settings) if i % 2 == 0 else list(reversed(settings))
            for name in order:
                loads[name].append(run_child(LOAD_CHILD, settings[name]))
                imports[name].append(run_child(IMPORT_CHILD, settings[name])["seconds"])

    print(f"{args.n} fresh processes per kind and setting (medians)")
    print(f"{'setting':8s} {'%load_ext mcp_magic':>20s} {'import mcp':>12s} {'ratio':>7s}  goal")
    verdicts = []
    for name in settings:
        load = statistics.median(r["seconds"] for r in loads[name])
        imp = statistics.median(imports[name])
        ok = load <= GOAL
        verdicts.append(ok)
        spread = f"[{min(r['seconds'] for r in loads[name]):.3f}-"
        spread += f"{max(r['seconds'] for r in loads[name]):.3f}]"
        print(
            f"{name:8s} {load:>10.3f} s {spread:>9s} {imp:>9.3f} s {load / imp:>6.2f}x"
            f"  load <= {GOAL:.2f} s: {'OK' if ok else 'SLOWER THAN GOAL'}"
        )
    sample = loads["cached"][-1]
    heavy = sorted({m for name in settings for r in loads[name] for m in r["heavy"]})
    print(
        f"heavy modules in sys.modules after loading: {', '.join(heavy) if heavy else 'none'}"
        f"  (checked: {', '.join(HEAVY)})"
    )
    print(
        f"modules newly imported by load_ext: {sample['new_modules']}; packages: "
        f"{', '.join(sample['new_top'])}"
    )
    print(f"threads started by load_ext: {sample['new_threads']}")
    must_not = [m for m in ("mcp", "pandas", "ipywidgets") if m in heavy]
    print(
        "mcp / pandas / ipywidgets loaded: "
        + (f"YES ({', '.join(must_not)}) - violates DESIGN.md §2" if must_not else "no (OK)")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
