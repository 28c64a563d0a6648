"""Memory of the built-in data server with many idle streamable-HTTP sessions.

Opens N sessions that are then left idle (an initialize request each, no event stream),
and reports the server's resident memory before, with them open, and after the idle
timeout has closed them. ``python bench/bench_server_sessions.py [--quick] [--sessions N]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "bench", "version": "1"}}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def wait_closed(log: Path, count: int, idle: float) -> None:
    """Until the server's log says `count` sessions were closed for being idle."""
    deadline = time.monotonic() + idle + 120
    while log.read_text(errors="replace").count("idle timeout") < count:
        if time.monotonic() > deadline:
            raise TimeoutError("sessions were not closed")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 sessions")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=5.0, help="idle timeout in seconds")
    args = parser.parse_args()
    count = 200 if args.quick else args.sessions
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mcp_magic.server", "--transport", "http",
                 "--port", str(port), "--root", tmp, "--session-idle-timeout", str(args.idle),
                 "--max-sessions", str(count + 10)],
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/mcp"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            with httpx.Client(timeout=30) as client:
                client.post(url, json=INITIALIZE, headers=HEADERS)  # warm up
                wait_closed(log, 1, args.idle)
                before = rss_mb(proc.pid)
                rounds = []
                for round_ in range(1, 4):
                    start = time.perf_counter()
                    for _ in range(count):
                        response = client.post(url, json=INITIALIZE, headers=HEADERS)
                        assert response.status_code == 200
                    opened = time.perf_counter() - start
                    with_sessions = rss_mb(proc.pid)
                    wait_closed(log, 1 + round_ * count, args.idle)
                    rounds.append((opened, with_sessions, rss_mb(proc.pid)))
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"server RSS before: {before:.1f} MB")
    for number, (opened, with_sessions, after) in enumerate(rounds, 1):
        per = (with_sessions - before) * 1024 / count
        print(f"round {number}: {count} idle sessions opened in {opened:.1f} s; RSS with them "
              f"{with_sessions:.1f} MB (~{per:.0f} kB each over the start), {after:.1f} MB "
              "once the idle timeout closed them")

if __name__ == "__main__":
    main()
