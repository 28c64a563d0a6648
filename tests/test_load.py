"""Many calls on one session, in-process: every call succeeds and nothing leaks.

A leak check, not a benchmark: the bounds are on memory, tasks and threads left
behind, never on time.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from mcp_magic.host import config
from mcp_magic.host.sessions import SessionManager

FAULT_SERVER = Path(__file__).resolve().parent / "servers" / "fault_server.py"
SEQUENTIAL = 10_000
CONCURRENT = 200
WARM_UP = 500
MAX_GROWTH_MB = 30


def _text(result) -> str:
    assert not result.is_error, result
    return "".join(block.text for block in result.content if block.type == "text")


def _rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


async def _loop_tasks() -> int:
    """Tasks alive on the manager's loop, not counting this one."""
    return len(asyncio.all_tasks()) - 1


@pytest.fixture
def manager(tmp_path):
    # Servers other tests keep for the whole session are not this test's business.
    before = set(psutil.Process().children(recursive=True))
    manager = SessionManager(connect_timeout=60)
    spec = config.stdio_spec(
        [sys.executable, str(FAULT_SERVER)], [f"FAULT_SERVER_EVENTS={tmp_path / 'events'}"]
    )
    try:
        manager.connect("f", spec)
        yield manager
    finally:
        manager.close()
    assert set(psutil.Process().children(recursive=True)) - before == set()


def _concurrent_gather(manager: SessionManager, tag: str) -> None:
    """`CONCURRENT` calls in flight at once on the loop; each answer matches its call."""

    async def many():
        return await asyncio.gather(
            *(manager.acall_tool("f", "echo", {"text": f"{tag}{i}"}) for i in range(CONCURRENT))
        )

    results = manager.loop.submit(many()).result(timeout=120)
    assert [_text(r) for r in results] == [f"{tag}{i}" for i in range(CONCURRENT)]


def _concurrent_threads(manager: SessionManager, tag: str) -> None:
    """`CONCURRENT` blocking calls from 16 threads at once (LoopThread.run is thread-safe)."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        texts = list(
            pool.map(
                lambda i: _text(manager.call_tool("f", "echo", {"text": f"{tag}{i}"})),
                range(CONCURRENT),
            )
        )
    assert texts == [f"{tag}{i}" for i in range(CONCURRENT)]


def test_many_calls_on_one_session_do_not_leak(manager):
    for _ in range(WARM_UP):
        assert _text(manager.call_tool("f", "echo", {"text": "x"})) == "x"
    _concurrent_gather(manager, "warm")
    _concurrent_threads(manager, "warm")
    tasks_before = manager.loop.submit(_loop_tasks()).result(timeout=10)
    threads_before = threading.active_count()
    fds_before = psutil.Process().num_fds()
    rss_before = _rss_mb()

    failures = 0
    for _ in range(SEQUENTIAL):
        if _text(manager.call_tool("f", "echo", {"text": "x"})) != "x":
            failures += 1
    assert failures == 0
    _concurrent_gather(manager, "g")
    _concurrent_threads(manager, "t")

    rss_after = _rss_mb()
    growth = rss_after - rss_before
    assert growth < MAX_GROWTH_MB, (
        f"RSS grew {growth:.1f} MB ({rss_before:.1f} -> {rss_after:.1f} MB) over "
        f"{SEQUENTIAL} + {2 * CONCURRENT} calls"
    )
    # Nothing piles up on the loop or in threads either.
    assert manager.loop.submit(_loop_tasks()).result(timeout=10) <= tasks_before
    assert threading.active_count() <= threads_before
    assert psutil.Process().num_fds() <= fds_before
    session = manager.get("f")
    assert session.state == "connected"
    assert manager.call_tool("f", "getenv", {"name": "FAULT_SERVER_EVENTS"}).content
