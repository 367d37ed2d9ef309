"""Job fixtures: a started hub with the jobs capability on the parametrized backend.

PostgreSQL: the job tables go in the test's own schema (``pg_url``), dropped afterwards.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from headway import Headway
from headway.jobs import JobBackend, Jobs

ALL_BACKENDS = ("memory", "sqlite", "redis", "cluster", "postgres")


@pytest.fixture
def jobs_url(backend: str, backend_url: str, redis_prefix: str) -> str:
    """The URL of the parametrized ``backend`` kind, with the test's own Redis key prefix."""
    if backend_url.startswith("redis"):
        return f"{backend_url}?prefix={redis_prefix}"
    if backend_url.startswith("postgres"):  # the job tables in the test's own schema
        schema = backend_url.rpartition("schema=")[2]
        return f"{backend_url}&jobs_schema={schema}"
    return backend_url


@pytest.fixture
async def hw(jobs_url: str, tmp_path: Path) -> AsyncIterator[Headway]:
    hub = Headway(jobs_url=jobs_url, data_dir=tmp_path)
    hub.add(Jobs(hub))
    async with hub:
        yield hub


@pytest.fixture
def jobs(hw: Headway) -> Jobs:
    capability = hw.capability("jobs")
    assert isinstance(capability, Jobs)
    return capability


@pytest.fixture
def store(jobs: Jobs) -> JobBackend:
    return jobs.backend


async def eventually(predicate: Callable[[], Any], within: float = 5.0, step: float = 0.01) -> None:
    """Poll ``predicate`` (sync or async) until it is true; AssertionError after ``within`` s."""
    for _ in range(int(within / step) + 1):
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {within}s")
