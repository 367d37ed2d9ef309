"""``headway cache stats|clear|warm`` (the typer app on its own)."""

from __future__ import annotations

import asyncio
import sys
import types

import pytest
from typer.testing import CliRunner

from headway import Headway
from headway.cache import Cache, CacheSettings
from headway.cache.ops import eviction_warning
from headway.cli.cache import cache_app

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, redis_prefix: str) -> str:
    monkeypatch.setenv("HEADWAY_REDIS_URL", redis_url)
    monkeypatch.setenv("HEADWAY_CACHE_PREFIX", redis_prefix)
    return redis_url


def _seed(url: str, prefix: str) -> None:
    async def main() -> None:
        hw = Headway()
        cache = hw.add(Cache(hw, CacheSettings(prefix=prefix), url=url))
        async with hw:
            await cache.set_many({"user:1": 1, "user:2": 2}, tenant="a")
            await cache.set("user:1", 1, tenant="b")

    asyncio.run(main())


def test_stats_json(env: str) -> None:
    result = runner.invoke(cache_app, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    assert '"backend"' in result.output and "maxmemory_policy" in result.output


def test_clear_tenant_pattern_and_all(env: str, redis_prefix: str) -> None:
    _seed(env, redis_prefix)
    result = runner.invoke(cache_app, ["clear", "--tenant", "a", "--pattern", "user:1", "-y"])
    assert result.exit_code == 0 and "deleted 1 keys" in result.output
    assert runner.invoke(cache_app, ["clear", "--tenant", "a"], input="n\n").exit_code == 1
    result = runner.invoke(cache_app, ["clear", "--yes"])
    assert result.exit_code == 0 and "deleted 2 keys" in result.output


def test_warm(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def load() -> int:
        return 1

    module = types.ModuleType("warm_targets")
    module.items = lambda: {"user:1": load, "user:2": load}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "warm_targets", module)
    result = runner.invoke(cache_app, ["warm", "warm_targets:items", "--tenant", "t"])
    assert result.exit_code == 0 and "warmed 2 of 2" in result.output
    assert runner.invoke(cache_app, ["warm", "nope"]).exit_code == 2
    assert runner.invoke(cache_app, ["warm", "no_such_module_x:y"]).exit_code == 2


def test_eviction_warning() -> None:
    assert eviction_warning("allkeys-lru") is None
    assert "noeviction" in (eviction_warning("noeviction") or "")
