"""HEADWAY_JOBS_* settings, the Prometheus hook, and the Redis wake-up (no polling)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from tests.conftest import backend_params

from headway import Headway
from headway.errors import ConfigError
from headway.jobs import Jobs
from headway.jobs.settings import JobsSettings
from headway.settings import SECTIONS, load_section


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_JOBS_KEEP_SUCCEEDED", "7")
    monkeypatch.setenv("HEADWAY_JOBS_CONCURRENCY", "3")
    monkeypatch.setenv("HEADWAY_JOBS_POLL_INTERVAL", "0.5")
    s = load_section(JobsSettings)
    assert (s.keep_succeeded, s.keep_failed, s.concurrency, s.poll_interval) == (7, 500, 3, 0.5)
    assert SECTIONS["HEADWAY_JOBS_"] is JobsSettings
    assert "url" not in JobsSettings.model_fields  # HEADWAY_JOBS_URL is the core setting


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_JOBS_CONCURRENCY", "0")
    with pytest.raises(ConfigError, match="HEADWAY_JOBS_CONCURRENCY"):
        load_section(JobsSettings)


def test_jobs_and_workers_use_the_settings(tmp_path: Path) -> None:
    hub = Headway(jobs_url="memory://", data_dir=tmp_path)
    settings = JobsSettings(keep_succeeded=1, concurrency=4, lease=9, poll_interval=0.2, grace=1)
    jobs = Jobs(hub, settings=settings)
    assert (jobs.keep_succeeded, jobs.keep_failed) == (1, 500)
    worker = jobs.worker()
    assert (worker.concurrency, worker.lease, worker.poll_interval, worker.grace) == (4, 9, 0.2, 1)
    assert jobs.worker(concurrency=2).concurrency == 2  # an argument wins
    assert Jobs(hub, settings=settings, keep_succeeded=5).keep_succeeded == 5


@pytest.mark.redis
async def test_redis_prefix_setting(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    hub = Headway(jobs_url=redis_url, data_dir=tmp_path)
    jobs = hub.add(Jobs(hub, settings=JobsSettings(redis_prefix=redis_prefix)))
    noop = jobs.task(name="noop")(lambda: None)
    async with hub:
        await noop.enqueue()
        keys = await jobs.backend.r.keys(f"{redis_prefix}:*")  # type: ignore[attr-defined]
        assert keys


@pytest.mark.parametrize("backend", backend_params("memory", "sqlite", "redis"))
async def test_metrics_hook(jobs: Jobs) -> None:
    registry = CollectorRegistry()
    jobs.register_metrics(registry)

    @jobs.task(name="ok")
    async def ok() -> int:
        return 1

    @jobs.task(name="boom", retries=0)
    async def boom() -> None:
        raise RuntimeError("no")

    await ok.enqueue()
    await boom.enqueue()
    worker = jobs.worker(["default"], concurrency=2)
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(500):
            if worker.stats.succeeded + worker.stats.failed == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)
    await jobs.refresh_metrics()
    value = registry.get_sample_value
    assert value("headway_jobs_completed_total", {"queue": "default", "outcome": "succeeded"}) == 1
    assert value("headway_jobs_completed_total", {"queue": "default", "outcome": "failed"}) == 1
    assert value("headway_jobs_duration_seconds_count", {"queue": "default"}) == 2
    assert value("headway_jobs_jobs", {"queue": "default", "state": "failed"}) == 1
    assert value("headway_jobs_jobs", {"queue": "default", "state": "pending"}) == 0
    ready = await jobs.check_ready()
    assert ready is not None and ready.ok and ready.detail["pending"] == {"default": 0}


@pytest.mark.parametrize("backend", backend_params("memory", "redis"))
async def test_an_idle_worker_is_woken_not_polled(jobs: Jobs) -> None:
    started: list[float] = []

    @jobs.task(name="mark")
    async def mark() -> None:
        started.append(time.monotonic())

    worker = jobs.worker(["default"], poll_interval=5.0)  # polling alone would take 5 s
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.2)  # the worker is idle, blocked in wait()
        for _ in range(3):
            sent = time.monotonic()
            await mark.enqueue()
            for _ in range(200):
                if len(started) and started[-1] >= sent:
                    break
                await asyncio.sleep(0.005)
            assert started and started[-1] - sent < 0.5
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)


def test_postgres_database_url_picks_the_postgres_job_store(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://app@db.example:5432/app?schema=app"
    hub = Headway(database_url=url, data_dir=tmp_path)
    assert hub.settings.backend_url("jobs") == url
    jobs = Jobs(hub, settings=JobsSettings(pg_schema="my_jobs", pg_notify=False))
    from headway.jobs.backends.postgres import split_url

    dsn, schema, notify = split_url(jobs._backend_url())
    assert (dsn, schema, notify) == ("postgresql://app@db.example:5432/app", "my_jobs", False)
    with pytest.raises(ValueError):
        JobsSettings(pg_schema="bad-name")
