"""A hub with webhooks (fast retry schedule, 127.0.0.1 allowed), a worker and a receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.webhooks.receiver import Receiver, running_receiver

from headway import Headway, Settings
from headway.jobs import Worker
from headway.notify import Notify, NotifySettings
from headway.webhooks import Webhooks, WebhooksSettings

FAST = dict(
    retry_schedule=[0, 0.05, 0.05],
    timeout=1.0,
    disable_after=5,
    allow_hosts=["127.0.0.1"],
)


@dataclass
class Env:
    hw: Headway
    webhooks: Webhooks
    receiver: Receiver
    worker: Worker


def make_hub(url: str, tmp_path: Path, **overrides: object) -> Headway:
    # jobs in a file of the test's own: the PostgreSQL job store ignores the ?schema= option
    jobs = f"sqlite:///{tmp_path / 'jobs.db'}"
    hw = Headway(Settings(database_url=url, jobs_url=jobs, data_dir=tmp_path / ".headway"))
    hw.add(Notify(hw, NotifySettings(default_channels=["push"])))
    hw.add(Webhooks(hw, WebhooksSettings(**{**FAST, **overrides})))  # type: ignore[arg-type]
    return hw


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def overrides() -> dict[str, object]:
    """WebhooksSettings for this test (``@pytest.mark.parametrize("overrides", [...])``)."""
    return {}


@pytest.fixture
async def env(db_url: str, tmp_path: Path, overrides: dict[str, object]) -> AsyncIterator[Env]:
    hw = make_hub(db_url, tmp_path, **overrides)
    async with running_receiver() as receiver, hw:
        worker = hw.jobs.worker(["webhooks", "notifications"], poll_interval=0.02, grace=1)
        task = asyncio.create_task(worker.run())
        try:
            yield Env(hw, hw.webhooks, receiver, worker)
        finally:
            worker.stop()
            async with asyncio.timeout(10):
                await task


async def wait_log(env: Env, tenant: str, endpoint_id: str, count: int) -> list[Any]:
    """The endpoint's delivery log (oldest first) once it has ``count`` rows."""
    async with asyncio.timeout(15):
        while True:
            rows = await env.webhooks.deliveries(tenant, endpoint_id, limit=500)
            if len(rows) >= count:
                return list(reversed(rows))
            await asyncio.sleep(0.02)


async def wait_disabled(env: Env, tenant: str, endpoint_id: str) -> Any:
    async with asyncio.timeout(15):
        while True:
            endpoint = await env.webhooks.get_endpoint(tenant, endpoint_id)
            if endpoint.disabled:
                return endpoint
            await asyncio.sleep(0.02)
