"""A throwaway PostgreSQL cluster for the tests: `postgres_url` (session scope).

initdb in a temp dir, a free 127.0.0.1 port, the unix socket in that dir; stopped and
removed at the end of the session. PostgreSQL refuses to run as root, so as root the
cluster runs as `nobody` (via runuser) in a temp dir that user owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DATABASE = "lab"
ROWS = 3000

# Every column type a data scientist meets in a warehouse, NULLs in most of them.
LOAD_SQL = f"""
create table measurements (
    id integer primary key,
    big bigint,
    price numeric(12, 2),
    ratio double precision,
    score real,
    day date,
    seen_at timestamp,
    seen_tz timestamptz,
    active boolean,
    label text,
    note text,
    uid uuid
);
insert into measurements
select
    g,
    g::bigint * 1000000007,
    case when g % 17 = 0 then null else round((g * 1.37)::numeric, 2) end,
    case when g % 13 = 0 then null else g / 7.0 end,
    (g % 100) / 4.0,
    case when g % 11 = 0 then null else date '2024-01-01' + (g % 400) end,
    timestamp '2024-01-01 00:00:00' + g * interval '37 minutes 13 seconds',
    case when g % 19 = 0 then null
         else timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour 1 second' end,
    case when g % 23 = 0 then null else g % 2 = 0 end,
    'item ' || g,
    case when g % 5 = 0 then null when g % 7 = 0 then 'café ☕ ' || g else 'n' || g end,
    ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid
from generate_series(1, {ROWS}) as g;
create table empty_table (id integer, label text);
"""


@dataclass
class Postgres:
    """A running cluster: connect as `postgres` without a password over TCP."""

    host: str
    port: int
    database: str

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{self.database}"


def find_pg_bin() -> Path:
    """Debian keeps initdb/pg_ctl out of PATH, under /usr/lib/postgresql/VERSION/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name.split(".")[0]),
    )
    if not candidates:
        raise RuntimeError("PostgreSQL's initdb is missing: run `scripts/setup.sh --test`")
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_cluster_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "nobody", "--", *args]


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(
        _as_cluster_user(args), capture_output=True, text=True, timeout=120, **kwargs
    )
    if done.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.strip() or done.stdout}")
    return done


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop(pg_bin: Path, data: Path) -> None:
    pid = _postmaster_pid(data)
    subprocess.run(
        _as_cluster_user([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                          "stop"]),
        capture_output=True,
        timeout=60,
    )
    if pid is None:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, 9)


@contextlib.contextmanager
def cluster() -> Iterator[Postgres]:
    """Start the cluster, load `measurements`, and remove everything afterwards."""
    import psycopg

    pg_bin = find_pg_bin()
    # As root the cluster's user must reach its directory: /tmp, not a private TMPDIR.
    parent = "/tmp" if os.geteuid() == 0 and os.path.isdir("/tmp") else None
    root = Path(tempfile.mkdtemp(prefix="mcp-magic-pg-", dir=parent))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
    root.chmod(0o700)
    port = _free_port()
    started = False
    try:
        _run([str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
              "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c timezone=UTC"
        )
        _run([str(pg_bin / "pg_ctl"), "-D", str(data), "-o", options,
              "-l", str(root / "server.log"), "-w", "-t", "60", "start"])
        started = True
        server = Postgres("127.0.0.1", port, DATABASE)
        with psycopg.connect(host=server.host, port=port, user="postgres",
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f"create database {DATABASE}")
        with psycopg.connect(server.url, autocommit=True) as conn:
            for statement in LOAD_SQL.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("analyze measurements")
        yield server
    finally:
        if started:
            _stop(pg_bin, data)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with cluster() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres: Postgres) -> str:
    return postgres.url
