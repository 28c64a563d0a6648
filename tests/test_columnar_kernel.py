"""The stop button during a big Arrow transfer, in a real kernel: back within 1 s, session kept.

The call is interrupted early (the server still reading rows), midway and late (the
answer travelling or being turned into a DataFrame).
"""

from __future__ import annotations

import sys
import time

import pytest
from server_utils import REPO
from test_columnar import make_db

try:
    from kernel_utils import collect, ok, start_kernel, stop_kernel
except ImportError:  # tests/ became a package
    from tests.kernel_utils import collect, ok, start_kernel, stop_kernel

ROWS = 400_000
CALL = f'big = %mcp call data.query_db sql="select * from facts" limit={ROWS}'


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kernel")
    db = make_db(directory / "facts.db", ROWS)
    km, kc = start_kernel(directory)
    try:
        ok(kc, "%load_ext mcp_magic")
        # PYTHONPATH: this checkout's server, whatever the kernel's cwd
        ok(kc, f"%mcp connect data --env PYTHONPATH={REPO} -- {sys.executable} -m "
               f"mcp_magic.server --db {db} --max-answer-bytes 1000000000", timeout=60)
        yield km, kc
    finally:
        stop_kernel(km, kc)


def test_stop_during_a_big_transfer_returns_quickly_and_keeps_the_session(kernel):
    km, kc = kernel
    ok(kc, 'small = %mcp call data.query_db sql="select * from facts" limit=10')  # imports
    began = time.monotonic()
    ok(kc, CALL, timeout=120)
    whole = time.monotonic() - began
    assert ok(kc, "print(len(big), big['day'].dtype.kind)").split() == [str(ROWS), "M"]
    ok(kc, "del big")

    for fraction in (0.2, 0.5, 0.8):
        msg_id = kc.execute(CALL)
        time.sleep(whole * fraction)
        interrupted = time.monotonic()
        km.interrupt_kernel()
        _, reply = collect(kc, msg_id, timeout=30)
        elapsed = time.monotonic() - interrupted
        print(f"{fraction:.0%} of {whole:.2f} s: {reply['content']['status']} {elapsed:.2f} s")
        if reply["content"]["status"] == "ok":  # finished before the signal landed
            ok(kc, "del big")
            continue
        assert reply["content"]["ename"] == "Interrupted", reply["content"]
        assert elapsed < 1.0, f"stopped {elapsed:.2f} s after the interrupt ({fraction:.0%})"
        assert ok(kc, "print('big' in dir())").strip() == "False"
        # the session is still there and answers
        ok(kc, 'n = %mcp call data.query_db sql="select count(*) as n from facts"')
        assert ok(kc, "print(n['n'][0])").strip() == str(ROWS)
