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
from tests.jobs.conftest import eventually

from headway import Headway
from headway.jobs import Jobs


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
    hub = Headway(jobs_url=url, data_dir=tmp_path)
    jobs = hub.add(Jobs(hub))
    done: list[int] = []

    @jobs.task(name="mark", retries=0)
    async def mark(n: int) -> None:
        done.append(n)

    async with hub:
        worker = jobs.worker(["default"], concurrency=10, grace=1, poll_interval=0.05)
        running = asyncio.create_task(worker.run())
        try:
            await jobs.enqueue_many([mark.call(i) for i in range(10)])
            await eventually(lambda: len(done) == 10, within=10)
            for _ in range(100):  # acknowledgements travel in batches: let them land first
                if (await jobs.stats())["default"]["succeeded"] == 10:
                    break
                await asyncio.sleep(0.05)
            await asyncio.to_thread(_as_postgres, *ctl, "-m", "fast", "restart")
            assert not running.done(), "the worker must not die with its server"
            for attempt in range(100):  # the producer's pool reconnects too
                try:
                    await jobs.enqueue_many([mark.call(i) for i in range(100, 120)])
                    break
                except Exception:
                    if attempt == 99:
                        raise
                    await asyncio.sleep(0.1)
            await eventually(lambda: len(done) >= 30, within=30)
            assert sorted(set(done[10:])) == list(range(100, 120))
            for _ in range(100):
                stats = await jobs.stats()
                if stats["default"]["succeeded"] == 30:
                    break
                await asyncio.sleep(0.05)
            assert stats["default"]["succeeded"] == 30 and stats["default"]["failed"] == 0
        finally:
            worker.stop()
            await asyncio.wait_for(running, timeout=15)
