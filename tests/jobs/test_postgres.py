"""PostgreSQL specifics: the migration, LISTEN/NOTIFY wake-up, polling mode, and a worker
that outlives its connections.

The shared PostgreSQL server is never restarted (other suites use it). A server-side
disconnect is made instead with ``pg_terminate_backend`` on the connections of this
test's worker only: they carry an ``application_name`` of the test's own.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tests.conftest import PG_BASE, backend_params
from tests.jobs.conftest import eventually

from headway import Headway
from headway.jobs import Jobs
from headway.jobs.backends.postgres import VERSION, PostgresJobBackend, split_url

pg = pytest.mark.parametrize("backend", backend_params("postgres"))


async def terminate(app_name: str) -> int:
    conn = await asyncpg.connect(PG_BASE, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            app_name,
        )
    finally:
        await conn.close()
    return len(rows)


def test_url_options() -> None:
    dsn, schema, notify = split_url(
        "postgresql+asyncpg://u@h:5/db?schema=s&jobs_schema=j1&notify=0&sslmode=disable"
    )
    assert (dsn, schema, notify) == ("postgresql://u@h:5/db?sslmode=disable", "j1", False)
    assert split_url("postgres://h/db")[1:] == ("headway_jobs", True)
    with pytest.raises(ValueError, match="schema"):
        split_url("postgresql://h/db?jobs_schema=bad-name;drop")


@pg
async def test_migration_is_idempotent_and_versioned(jobs_url: str) -> None:
    stores = [PostgresJobBackend(jobs_url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))  # concurrent opens: no race
    try:
        conn = await asyncpg.connect(split_url(jobs_url)[0])
        try:
            schema = split_url(jobs_url)[1]
            assert await conn.fetchval(f'SELECT version FROM "{schema}".meta') == VERSION
        finally:
            await conn.close()
    finally:
        for store in stores:
            await store.close()


async def _latency(jobs: Jobs, worker_kw: dict[str, Any]) -> float:
    """Seconds from enqueue to start of one job sent to an idle worker."""
    started: list[float] = []

    @jobs.task(name=f"stamp{len(jobs.tasks)}")
    async def stamp() -> None:
        started.append(time.monotonic())

    worker = jobs.worker(["default"], **worker_kw)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.3)  # idle: waiting
        sent = time.monotonic()
        await stamp.enqueue()
        await eventually(lambda: started, within=10)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)
    return started[0] - sent


@pg
async def test_notify_wakes_an_idle_worker_polling_does_not(jobs_url: str, tmp_path: Path) -> None:
    """With a 1.5 s poll interval, only LISTEN/NOTIFY can start the job well before it."""
    for notify in (True, False):
        url = f"{jobs_url}&notify={int(notify)}"
        hub = Headway(jobs_url=url, data_dir=tmp_path)
        jobs = hub.add(Jobs(hub))
        async with hub:
            waited = await _latency(jobs, {"poll_interval": 1.5})
        if notify:
            assert waited < 0.6, waited  # woken, not polled
        else:
            assert waited >= 0.6, waited  # waited for the poll (1.5 s minus the idle 0.3 s)


async def survives_outage(url: str, tmp_path: Path, outage: Callable[[], Awaitable[None]]) -> None:
    """A worker runs 10 jobs, ``outage()`` cuts its server off, and then the worker and the
    producer (both reconnecting) run 20 more and one awaited job: none failed, none lost."""
    hub = Headway(jobs_url=url, data_dir=tmp_path)
    jobs = hub.add(Jobs(hub))
    done: list[int] = []

    @jobs.task(name="mark", retries=0)
    async def mark(n: int) -> None:
        done.append(n)

    async def succeeded(n: int) -> bool:  # acknowledgements travel in batches
        for _ in range(200):
            if (await jobs.stats())["default"]["succeeded"] == n:
                return True
            await asyncio.sleep(0.05)
        return False

    async with hub:
        worker = jobs.worker(["default"], concurrency=10, grace=1, poll_interval=0.05)
        running = asyncio.create_task(worker.run())
        try:
            await jobs.enqueue_many([mark.call(i) for i in range(10)])
            await eventually(lambda: len(done) == 10, within=10)
            assert await succeeded(10)
            await outage()
            assert not running.done(), "the worker must not die with its connections"
            handles: list[Any] = []
            for attempt in range(100):  # the producer's own pool reconnects too
                try:
                    handles = await jobs.enqueue_many([mark.call(i) for i in range(100, 120)])
                    break
                except Exception:
                    if attempt == 99:
                        raise
                    await asyncio.sleep(0.1)
            await eventually(lambda: len(done) == 30, within=30)
            assert sorted(done[10:]) == list(range(100, 120))
            assert await (await mark.enqueue(999)).result(timeout=10) is None
            assert handles and all(h.created for h in handles)
            assert await succeeded(31)
            assert (await jobs.stats())["default"]["failed"] == 0
        finally:
            worker.stop()
            await asyncio.wait_for(running, timeout=15)


@pg
async def test_worker_reconnects_after_server_side_disconnect(
    jobs_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="headway.jobs")
    app_name = f"hwtest_{uuid.uuid4().hex[:10]}"

    async def disconnect() -> None:
        for _ in range(3):  # every connection of the pool and the listener, thrice
            assert await terminate(app_name) >= 1
            await asyncio.sleep(0.3)

    await survives_outage(f"{jobs_url}&application_name={app_name}", tmp_path, disconnect)
