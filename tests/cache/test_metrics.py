"""The cache's metrics at /metrics agree with what was done; its readiness is non-critical."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.observe.scrape import label_values, ready, scrape, serve, value

from headway import Headway
from headway.cache import Cache, CacheSettings
from headway.cache.base import Entry
from headway.cache.metrics import MAX_NAMESPACES


def add_cache(hw: Headway) -> None:
    hw.add(Cache(hw, CacheSettings(prefix="metrics"), url="memory://"))


async def test_hits_misses_loads_and_errors_are_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve(tmp_path, add_cache) as (hw, client):
        cache = hw.cache
        await cache.set("user:1", {"name": "ada"})
        assert await cache.get("user:1") == {"name": "ada"}  # l1 hit
        assert await cache.get("user:1") == {"name": "ada"}  # l1 hit
        cache.l1.clear()
        assert await cache.get("user:1") == {"name": "ada"}  # l2 hit
        assert await cache.get("user:2") is None  # miss

        calls = 0

        async def slow() -> int:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.02)
            return 7

        got = await asyncio.gather(*(cache.get_or_set("post:1", slow) for _ in range(3)))
        assert got == [7, 7, 7] and calls == 1  # one miss + load, two coalesced callers
        assert await cache.get_or_set("post:1", slow) == 7  # l1 hit

        async def broken() -> int:
            raise RuntimeError("loader down")

        with pytest.raises(RuntimeError):
            await cache.get_or_set("post:2", broken)  # miss + failed load

        full = cache.keys.entry("user:3", None)
        await cache.backend.set_many([Entry(full, b"\x00not a value", 60, ())])
        assert await cache.get("user:3") is None  # corrupt: counted, and a miss

        async def down(key: str) -> bytes | None:
            raise ConnectionError("l2 down")

        monkeypatch.setattr(cache.backend, "get", down)
        assert await cache.get("user:4") is None  # l2 error, a miss

        m = await scrape(client)
        assert value(m, "headway_cache_hits_total", level="l1", namespace="user") == 2
        assert value(m, "headway_cache_hits_total", level="l2", namespace="user") == 1
        assert value(m, "headway_cache_hits_total", level="l1", namespace="post") == 1
        assert value(m, "headway_cache_misses_total", namespace="user") == 3
        assert value(m, "headway_cache_misses_total", namespace="post") == 2
        assert value(m, "headway_cache_loads_total", namespace="post", outcome="ok") == 1
        assert value(m, "headway_cache_loads_total", namespace="post", outcome="error") == 1
        assert value(m, "headway_cache_load_duration_seconds_count", namespace="post") == 2
        assert value(m, "headway_cache_load_duration_seconds_sum", namespace="post") >= 0.02
        assert value(m, "headway_cache_coalesced_total") == 2
        assert value(m, "headway_cache_corrupt_values_total") == 1
        assert value(m, "headway_cache_l2_errors_total") == 1

        # the exported counters are the process's own stats, exactly
        stats = cache.stats()
        assert value(m, "headway_cache_hits_total", level="l1") == stats["l1_hits"]
        assert value(m, "headway_cache_hits_total", level="l2") == stats["l2_hits"]
        assert value(m, "headway_cache_misses_total") == stats["misses"]

        # a second scrape adds only what happened in between
        await cache.get("post:1")
        again = await scrape(client)
        assert value(again, "headway_cache_hits_total", level="l1", namespace="post") == 2
        assert value(again, "headway_cache_misses_total") == stats["misses"]


async def test_namespace_labels_are_capped(tmp_path: Path) -> None:
    async with serve(tmp_path, add_cache) as (hw, client):
        for i in range(MAX_NAMESPACES + 15):
            await hw.cache.get(f"ns{i}:x")
        m = await scrape(client)
    names = label_values(m, "headway_cache_misses_total", "namespace")
    assert len(names) == MAX_NAMESPACES + 1 and "other" in names
    assert value(m, "headway_cache_misses_total", namespace="other") == 15
    assert value(m, "headway_cache_misses_total") == MAX_NAMESPACES + 15


async def test_counters_are_exported_without_a_scrape(tmp_path: Path) -> None:
    """Each process folds its totals on its own (worker processes that are not scraped)."""
    async with serve(tmp_path, add_cache) as (hw, _client):
        cache = hw.cache
        assert cache.metrics is not None
        assert cache.metrics.totals._task is not None  # started with the hub
        await cache.metrics.totals.stop()
        cache.metrics.totals.every = 0.01
        cache.metrics.totals.start()
        task = cache.metrics.totals._task
        assert task is not None and not task.done()
        await cache.get("user:9")
        registry = hw.observe.registry
        for _ in range(150):
            got = registry.get_sample_value("headway_cache_misses_total", {"namespace": "user"})
            if got == 1:
                break
            await asyncio.sleep(0.01)
        assert got == 1
    assert task.done()  # stopped with the hub


async def test_readiness_pings_l2_and_an_outage_only_degrades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve(tmp_path, add_cache) as (hw, client):
        status, body = await ready(client)
        assert status == 200 and body["status"] == "ok"
        check = body["checks"]["cache"]
        assert check["ok"] and check["critical"] is False
        assert check["detail"]["backend"] == "memory"

        async def refused() -> None:
            raise ConnectionError("connection refused")

        monkeypatch.setattr(hw.cache.backend, "ping", refused)
        status, body = await ready(client)
        assert status == 200 and body["status"] == "degraded"
        check = body["checks"]["cache"]
        assert not check["ok"] and check["critical"] is False
        assert "connection refused" in check["error"]

        async def hangs() -> None:
            await asyncio.sleep(10)

        monkeypatch.setattr(hw.cache.backend, "ping", hangs)
        hw.observe.settings.check_timeout = 0.2
        status, body = await ready(client)
        assert status == 200 and body["status"] == "degraded"  # a timeout is not critical
        assert "timed out" in body["checks"]["cache"]["error"]
