"""``HEADWAY_WORKFLOWS_*``: where the store is, and the background sweep."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.workflows.conftest import eventually

from headway import ConfigError, Headway
from headway.errors import UnknownBackendError
from headway.settings import SECTIONS, load_section
from headway.workflows import Workflows
from headway.workflows import constants as c
from headway.workflows.settings import WorkflowsSettings


def test_the_section_is_registered() -> None:
    assert SECTIONS["HEADWAY_WORKFLOWS_"] is WorkflowsSettings


def test_store_url_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEADWAY_WORKFLOWS_URL", "memory://")
    assert Headway(data_dir=tmp_path).workflows.url == "memory://"


def test_default_store_is_redis_else_the_database(tmp_path: Path) -> None:
    hub = Headway(data_dir=tmp_path)
    assert hub.workflows.url == hub.settings.sql_url
    assert hub.workflows.url.startswith("sqlite:///")
    redis = Headway(data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/3")
    flows = redis.workflows
    assert flows.url == "redis://127.0.0.1:6379/3"
    assert flows._backend_url() == "redis://127.0.0.1:6379/3?prefix=hw"


def test_bad_settings_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_WORKFLOWS_REDIS_PREFIX", "a:b")
    with pytest.raises(ConfigError, match="HEADWAY_WORKFLOWS_REDIS_PREFIX"):
        load_section(WorkflowsSettings)
    monkeypatch.delenv("HEADWAY_WORKFLOWS_REDIS_PREFIX")
    monkeypatch.setenv("HEADWAY_WORKFLOWS_SWEEP_INTERVAL", "-1")
    with pytest.raises(ConfigError, match="HEADWAY_WORKFLOWS_SWEEP_INTERVAL"):
        Workflows(Headway())


async def test_an_unknown_scheme_fails_at_start(tmp_path: Path) -> None:
    hub = Headway(data_dir=tmp_path, jobs_url="memory://")
    hub.add(Workflows(hub, "nosuch://x"))
    with pytest.raises(UnknownBackendError, match="workflows"):
        await hub.start()


async def test_the_background_sweep_repairs_runs(tmp_path: Path) -> None:
    hub = Headway(data_dir=tmp_path, jobs_url="memory://")
    flows = hub.add(Workflows(hub, "memory://", settings=WorkflowsSettings(sweep_interval=0.05)))

    @hub.jobs.task(name="t.one", retries=0)
    async def one(x: int) -> int:
        return x + 1

    flow = flows.chain("swept", one, one)
    for hooks in hub.jobs.hooks.values():  # a worker without hw.workflows: no hooks
        hooks.clear()
    async with hub:
        worker = hub.jobs.worker(["workflows"], poll_interval=0.01)
        task = asyncio.create_task(worker.run())
        run = await flows.start(flow, 1)

        async def completed() -> bool:
            return (await flows.get(run.id)).state == c.COMPLETED

        await eventually(completed)
        assert (await flows.get(run.id)).output == 3
        worker.stop()
        await task
