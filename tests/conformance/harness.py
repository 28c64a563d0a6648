"""Run the official MCP client conformance scenarios against a client command.

Each scenario runs alone (`--suite` ignores the client's exit code), several at a time.
The harness and a Node >= 22 runtime come from this folder's package.json (npm
registry only); `scripts/setup.sh` installs them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RELEASE = HERE
"""The pinned release (package.json here)."""
NEXT = HERE / "next"
"""The newest alpha, with the 2026-07-28 scenarios (next/package.json)."""
# Another install for the bench: MCP_CONFORMANCE_HOME=/that/dir.
DEFAULT = Path(os.environ.get("MCP_CONFORMANCE_HOME") or RELEASE)


def _bin(home: Path) -> Path:
    return home / "node_modules" / ".bin"


def _harness(home: Path) -> Path:
    return home / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"


def version(home: Path = DEFAULT) -> str:
    import json

    package = _harness(home).parent.parent / "package.json"
    return json.loads(package.read_text())["version"]

HOST_CLIENT = [sys.executable, str(HERE / "client.py")]
SDK_CLIENT = [sys.executable, str(HERE / "sdk_client.py")]


@dataclass
class Outcome:
    scenario: str
    passed: bool
    summary: str
    """The harness's "Passed: n/m" line, or why it did not run."""
    output: str


def available(home: Path = DEFAULT) -> bool:
    return _harness(home).exists() and (_bin(home) / "node").exists()


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{_bin(home)}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def scenarios(home: Path = DEFAULT) -> list[str]:
    """Every client scenario the installed harness knows."""
    out = subprocess.run(
        [str(_bin(home) / "node"), str(_harness(home)), "list", "--client"],
        capture_output=True, text=True, env=_env(home), timeout=60, check=True,
    ).stdout
    return [
        line.strip()[2:].split(" ")[0] for line in out.splitlines() if line.strip().startswith("- ")
    ]


def run_scenario(
    client: list[str], scenario: str, timeout: float = 60, home: Path = DEFAULT
) -> Outcome:
    command = " ".join(client)
    with tempfile.TemporaryDirectory(prefix="conformance-") as out_dir:
        try:
            done = subprocess.run(
                [str(_bin(home) / "node"), str(_harness(home)), "client", "--command", command,
                 "--scenario", scenario, "--timeout", "30000", "-o", out_dir],
                capture_output=True, text=True, env=_env(home), timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return Outcome(scenario, False, f"no verdict within {timeout:g} s", "")
        # The verdict may be on either stream, in colour.
        output = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
        verdict = output
        for path in Path(out_dir).rglob("stderr.txt"):
            output += "\n--- client stderr ---\n" + path.read_text(errors="replace")[-4000:]
    summary = next(
        (line.strip() for line in verdict.splitlines() if line.startswith("Passed:")),
        f"harness exited {done.returncode}",
    )
    # Warnings (sse-retry's reconnect timing on a loaded machine) do not fail a scenario.
    passed = ", 0 failed" in summary and "OVERALL: FAILED" not in verdict
    return Outcome(scenario, passed, summary, output)


def run_all(
    client: list[str], names: list[str] | None = None, workers: int = 4, home: Path = DEFAULT
) -> dict[str, Outcome]:
    names = names or scenarios(home)
    with ThreadPoolExecutor(workers) as pool:
        outcomes = pool.map(lambda name: run_scenario(client, name, home=home), names)
    return {outcome.scenario: outcome for outcome in outcomes}
