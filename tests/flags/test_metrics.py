"""Flag evaluations and snapshot gauges at /metrics; readiness of the store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.observe.scrape import label_values, ready, scrape, serve, value

from headway import Headway
from headway.flags import Flags, FlagsSettings
from headway.flags import core as flags_core


def add_flags(tmp_path: Path) -> Callable[[Headway], None]:
    def add(hw: Headway) -> None:
        url = f"sqlite:///{tmp_path / 'flags.db'}"
        hw.add(Flags(hw, FlagsSettings(prefix="metrics"), url=url))

    return add


async def test_evaluations_per_flag_and_reason(tmp_path: Path) -> None:
    async with serve(tmp_path, add_flags(tmp_path)) as (hw, client):
        flags = hw.flags
        await flags.save({"key": "beta"})
        await flags.save({"key": "dark", "enabled": False})
        await flags.save({"key": "vip", "allow": [{"attribute": "user", "values": ["ann"]}]})
        await flags.save({"key": "split", "rollout": 50})
        await flags.save({"key": "beta", "enabled": False}, tenant="acme")

        for _ in range(3):
            assert await flags.is_enabled("beta")  # the context-free fast path
        assert not await flags.is_enabled("beta", tenant="acme")  # the tenant's own flag
        for _ in range(2):
            assert not flags.evaluate_now("dark").enabled
        assert (await flags.evaluate("vip", user="ann")).reason == "TARGETING_MATCH"
        assert (await flags.evaluate("vip", user="bob")).reason == "DEFAULT"
        for user in ("u1", "u2", "u3", "u4"):
            await flags.variant("split", user=user)
        assert not await flags.is_enabled("ghost")  # unknown: an evaluation with ERROR
        assert flags.evaluate_now("ghost").reason == "ERROR"

        m = await scrape(client)
        name = "headway_flags_evaluations_total"
        assert value(m, name, flag="beta", reason="DEFAULT") == 3
        assert value(m, name, flag="beta", reason="DISABLED") == 1
        assert value(m, name, flag="dark", reason="DISABLED") == 2
        assert value(m, name, flag="vip", reason="TARGETING_MATCH") == 1
        assert value(m, name, flag="vip", reason="DEFAULT") == 1
        assert value(m, name, flag="split", reason="SPLIT") == 4
        assert value(m, name, flag="ghost", reason="ERROR") == 2
        assert value(m, name) == 14 == sum(flags.evaluations.values())

        assert value(m, "headway_flags_snapshot_version") == flags.version > 0
        assert 0 <= value(m, "headway_flags_snapshot_age_seconds") < 5
        assert value(m, "headway_flags_defined") == 5
        assert value(m, "headway_flags_store_errors_total") == 0


async def test_flag_labels_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flags_core, "MAX_FLAGS", 3)
    async with serve(tmp_path, add_flags(tmp_path)) as (hw, client):
        for i in range(5):
            for _ in range(2):
                await hw.flags.is_enabled(f"missing-{i}")
        m = await scrape(client)
    flags = label_values(m, "headway_flags_evaluations_total", "flag")
    assert flags == {"missing-0", "missing-1", "missing-2", "other"}
    assert value(m, "headway_flags_evaluations_total", flag="other") == 4
    assert value(m, "headway_flags_evaluations_total", flag="missing-0") == 2


async def test_store_outage_is_counted_and_only_degrades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve(tmp_path, add_flags(tmp_path)) as (hw, client):
        flags = hw.flags
        await flags.save({"key": "beta"})
        status, body = await ready(client)
        check = body["checks"]["flags"]
        assert status == 200 and check["ok"] and check["critical"] is False
        assert check["detail"]["version"] == flags.version

        async def down() -> int:
            raise ConnectionError("flags store down")

        monkeypatch.setattr(flags.store, "version", down)
        flags.settings.poll_interval = 0.01
        for task in flags._tasks:  # restart the poll loop at the short interval
            task.cancel()
        flags._tasks.append(asyncio.create_task(flags._poll()))
        await asyncio.sleep(0.1)

        status, body = await ready(client)
        check = body["checks"]["flags"]
        assert status == 200 and body["status"] == "degraded"
        assert not check["ok"] and check["critical"] is False
        assert "flags store down" in check["error"]
        m = await scrape(client)
        assert value(m, "headway_flags_store_errors_total") >= 1
        assert await flags.is_enabled("beta")  # the snapshot keeps serving
