"""A PostgreSQL server restarted under a running worker: the worker reconnects and carries on.

The machine's shared server is never touched: the test starts a private PostgreSQL (initdb
into a temp dir, its own port, run as the ``postgres`` user), restarts it with
``pg_ctl restart -m fast`` while a worker runs, and stops it by ``pg_ctl stop`` at the end.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import IN_CI
from tests.jobs.test_postgres import survives_outage


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*args: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def private_pg() -> Iterator[tuple[str, list[str]]]:
    bindir = _bin()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        if IN_CI:
            pytest.fail("PostgreSQL server binaries are needed for the restart test")
        pytest.skip("no PostgreSQL server binaries")
    base = Path(tempfile.mkdtemp(prefix="hw-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    _as_postgres(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w"]
    _as_postgres(*ctl, "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", ctl
    finally:
        try:
            _as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(base, ignore_errors=True)


async def test_worker_carries_on_across_a_server_restart(
    private_pg: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, ctl = private_pg

    async def restart() -> None:
        await asyncio.to_thread(_as_postgres, *ctl, "-m", "fast", "restart")

    await survives_outage(url, tmp_path, restart)
