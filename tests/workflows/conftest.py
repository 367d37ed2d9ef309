"""Workflow fixtures: a store on every backend, and a started hub with a worker."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from headway import Headway, registry
from headway.workflows import WorkflowBackend, Workflows
from headway.workflows.settings import WorkflowsSettings

STORES = ("memory", "sqlite", "redis", "cluster", "postgres")


@pytest.fixture
def wf_url(backend: str, backend_url: str, redis_prefix: str) -> str:
    """The store URL of the parametrized ``backend``, with the test's own Redis prefix."""
    if backend in ("redis", "cluster"):
        return f"{backend_url}?prefix={redis_prefix}"
    return backend_url


@pytest.fixture
def jobs_url(backend: str, backend_url: str, redis_prefix: str) -> str:
    """Jobs on Redis with a Redis store, in memory otherwise."""
    if backend == "redis":
        return f"{backend_url}?prefix={redis_prefix}"
    return "memory://"


@pytest.fixture
async def store(wf_url: str, tmp_path: Path) -> AsyncIterator[WorkflowBackend]:
    hub = Headway(data_dir=tmp_path)
    backend: WorkflowBackend = registry.resolve("workflows", wf_url)(wf_url, hub.connections)
    await backend.open()
    await backend.open()  # idempotent (tables exist, scripts loaded)
    try:
        yield backend
    finally:
        await backend.close()
        await hub.connections.close()


def make_hub(wf_url: str, jobs_url: str, tmp_path: Path) -> tuple[Headway, Workflows]:
    hub = Headway(jobs_url=jobs_url, data_dir=tmp_path)
    flows = hub.add(Workflows(hub, wf_url, settings=WorkflowsSettings(sweep_interval=0)))
    return hub, flows


class Running:
    """A started hub whose worker serves the ``workflows`` queue while the test runs."""

    def __init__(self, hub: Headway, flows: Workflows) -> None:
        self.hub, self.flows = hub, flows
        self._worker: Any = None
        self._task: asyncio.Task[None] | None = None

    def start_worker(
        self, queues: tuple[str, ...] = ("workflows", "default"), lease: float | None = None
    ) -> None:
        self._worker = self.hub.jobs.worker(list(queues), poll_interval=0.01, lease=lease)
        self._task = asyncio.create_task(self._worker.run())

    async def stop_worker(self) -> None:
        if self._worker is not None and self._task is not None:
            self._worker.stop()
            await self._task
            self._worker = self._task = None


@pytest.fixture
async def env(wf_url: str, jobs_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    """Declare tasks on ``env.hub.jobs`` / flows on ``env.flows``, then ``async with``."""
    hub, flows = make_hub(wf_url, jobs_url, tmp_path)
    running = Running(hub, flows)
    try:
        yield running
    finally:
        await running.stop_worker()
        await hub.stop()


async def eventually(
    predicate: Callable[[], Any], within: float = 10.0, step: float = 0.01
) -> None:
    """Poll ``predicate`` (sync or async) until true; AssertionError after ``within`` s."""
    for _ in range(int(within / step) + 1):
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {within}s")
