"""Decorator, presets, warm-up, stats, early refresh, hub wiring, cross-process locks."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.cache.conftest import MakeCache
from tests.conftest import backend_params

from headway import Headway
from headway.cache import Cache


async def test_hub_builds_cache_from_settings() -> None:
    hw = Headway()
    assert isinstance(hw.cache, Cache) and hw.cache.url == "memory://"
    async with hw:
        await hw.cache.set("k", 1)
        assert await hw.cache.get("k") == 1


async def test_ttl_presets(make_cache: MakeCache) -> None:
    cache = await make_cache("memory://", ttl_presets={"user": 1800, "api": 300})
    assert cache.ttl_for(None, "user:1") == 1800
    assert cache.ttl_for("api", "x") == 300
    assert cache.ttl_for(None, "other:1") == cache.settings.default_ttl
    with pytest.raises(ValueError, match="unknown TTL preset"):
        await cache.set("k", 1, ttl="nope")
    with pytest.raises(ValueError, match="> 0"):
        await cache.set("k", 1, ttl=0)


async def test_decorator_async_and_sync(make_cache: MakeCache) -> None:
    cache = await make_cache("memory://")
    calls: list[tuple[int, int]] = []

    @cache.cached(ttl=60, tags=["posts"], tenant="{tenant_id}")
    async def list_posts(tenant_id: int, page: int = 1) -> list[int]:
        calls.append((tenant_id, page))
        return [tenant_id, page]

    assert await list_posts(1) == [1, 1]
    assert await list_posts(1, page=1) == [1, 1]  # same call, same key
    assert await list_posts(tenant_id=2, page=3) == [2, 3]
    assert calls == [(1, 1), (2, 3)]
    assert await list_posts.invalidate(1) == 1
    await list_posts(1)
    assert calls[-1] == (1, 1) and len(calls) == 3
    await cache.invalidate_tags("posts", tenant=2)
    await list_posts(2, 3)
    assert len(calls) == 4
    assert list_posts.key_for(1).startswith(f"{__name__}.")
    assert list_posts.__name__ == "list_posts"

    @cache.cached(key="user:{uid}")
    def load_user(uid: int) -> dict[str, int]:
        calls.append((0, uid))
        return {"id": uid}

    assert await load_user(5) == {"id": 5} and await load_user(uid=5) == {"id": 5}
    assert calls.count((0, 5)) == 1
    assert load_user.key_for(5) == "user:5"
    assert await load_user.invalidate(5) == 1


async def test_decorator_custom_key_function_and_bad_args(make_cache: MakeCache) -> None:
    cache = await make_cache("memory://")

    @cache.cached(key=lambda q, **_: f"search:{q.lower()}")
    async def search(q: str, limit: int = 10) -> str:
        return q

    assert await search("ABC") == "ABC"
    assert await search("abc") == "ABC"  # same key

    @cache.cached()
    async def takes_object(obj: object) -> int:
        return 1

    with pytest.raises(TypeError, match="pass key="):
        await takes_object(object())


async def test_warm_and_namespace_stats(make_cache: MakeCache) -> None:
    cache = await make_cache("memory://")

    async def fail() -> int:
        raise RuntimeError("x")

    stored = await cache.warm(
        {"user:1": lambda: _v(1), "user:2": lambda: _v(2), "user:3": fail}, tenant=1
    )
    assert stored == 2
    assert await cache.get("user:1", tenant=1) == 1
    await cache.get("company:9")
    stats = cache.stats()
    assert stats["namespaces"]["user"]["l1_hits"] == 1
    assert stats["namespaces"]["company"]["misses"] == 1
    assert stats["hit_ratio"] == 0.5 and stats["l1"]["entries"] == 2


async def test_early_refresh(make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch) -> None:
    # XFetch draws -log(1 - u): fix u so the test does not depend on luck
    import headway.cache.loading as loading

    monkeypatch.setattr(loading.random, "random", lambda: 0.99)
    cache = await make_cache("memory://", l1_max_entries=0)
    calls = 0

    async def slow() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return calls

    assert await cache.get_or_set("e", slow, ttl=0.3, early_refresh=50.0) == 1
    # loader took 50 ms, beta 50, u = 0.99: 0.05 * 50 * 4.6 s >> 0.3 s ttl -> refresh
    assert await cache.get_or_set("e", slow, ttl=0.3, early_refresh=50.0) == 1
    await asyncio.sleep(0.1)
    assert calls == 2 and cache.stats()["refreshes"] >= 1


@pytest.mark.parametrize("backend", backend_params("sqlite", "redis"))
async def test_stampede_across_processes(
    make_cache: MakeCache, backend: str, backend_url: str
) -> None:
    """Two caches (two 'processes': own single-flight, own L1) on one L2: one load."""
    a, b = await make_cache(backend_url), await make_cache(backend_url)
    calls = 0

    async def loader() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        return "v"

    results = await asyncio.gather(
        *(c.get_or_set("cold", loader) for _ in range(500) for c in (a, b))
    )
    assert calls == 1 and set(results) == {"v"}
    assert a.stats()["lock_waits"] + b.stats()["lock_waits"] == 1


async def test_waiter_takes_over_when_holder_fails(make_cache: MakeCache, redis_url: str) -> None:
    a, b = await make_cache(redis_url), await make_cache(redis_url, lock_wait=2)

    async def failing() -> str:
        await asyncio.sleep(0.05)
        raise RuntimeError("db")

    first = asyncio.create_task(a.get_or_set("k", failing))
    await asyncio.sleep(0.01)
    started = time.monotonic()
    assert await b.get_or_set("k", lambda: _v("from-b")) == "from-b"
    assert time.monotonic() - started < 1.0
    with pytest.raises(RuntimeError):
        await first


@pytest.mark.parametrize("backend", backend_params("redis", "cluster"))
async def test_l1_coherence_between_hubs(
    make_cache: MakeCache, backend: str, backend_url: str
) -> None:
    a, b = await make_cache(backend_url, l1_ttl=60), await make_cache(backend_url, l1_ttl=60)
    await _until(
        lambda: a.stats()["coherence"]["listening"] and b.stats()["coherence"]["listening"]
    )
    await a.set("user:1", "v1", tags=["users"], tenant=1)
    assert await b.get("user:1", tenant=1) == "v1"  # now in b's L1
    await a.set("user:1", "v2", tags=["users"], tenant=1)
    await _until(lambda: b.keys.entry("user:1", 1) not in b.l1)
    assert await b.get("user:1", tenant=1) == "v2"
    for action in (
        lambda: a.invalidate_tags("users", tenant=1),
        lambda: a.invalidate_pattern("user:*", tenant=1),
        lambda: a.invalidate_tenant(1),
        lambda: a.delete("user:1", tenant=1),
        a.clear,
    ):
        await a.set("user:1", "v", tags=["users"], tenant=1)
        assert await b.get("user:1", tenant=1) == "v"
        await action()
        await _until(lambda: b.keys.entry("user:1", 1) not in b.l1)
    assert b.stats()["invalidations_received"] >= 6


async def _until(check: object) -> None:
    deadline = time.monotonic() + 2.0
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def _v(value: object) -> object:
    return value


async def test_cancelled_leader_hands_over(make_cache: MakeCache) -> None:
    cache = await make_cache("memory://")
    calls = 0

    async def slow() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return calls

    leader = asyncio.create_task(cache.get_or_set("k", slow))
    await asyncio.sleep(0.01)
    waiters = [asyncio.create_task(cache.get_or_set("k", slow)) for _ in range(10)]
    await asyncio.sleep(0.01)
    leader.cancel()
    assert await asyncio.gather(*waiters) == [2] * 10
    assert leader.cancelled() and calls == 2


async def test_l1_hit_fast_path_matches_the_slow_path(make_cache: MakeCache) -> None:
    """The hot path (memoized tenant prefix, per-key counts) answers and counts alike."""
    cache = await make_cache("memory://", max_key_length=32, l1_ttl=600)
    long_key = "user:" + "x" * 40  # stored under its digest: served by the slow path
    digest = cache.keys.name(long_key)  # a key spelled like that digest is another key

    async def never() -> object:
        raise AssertionError("an L1 hit calls no loader")

    await cache.set("user:1", "global", ttl=600)
    await cache.set("user:1", "acme", ttl=600, tenant="acme")
    await cache.set(long_key, "long", ttl=600)
    for _ in range(3):
        assert await cache.get("user:1") == "global"
        assert await cache.get("user:1", tenant="acme") == "acme"
        assert await cache.get("user:1", tenant="other") is None
        assert await cache.get(long_key) == "long"
        assert await cache.get(digest) is None
        assert await cache.get_or_set("user:1", never, tenant="acme") == "acme"
    stats = cache.stats()
    assert stats["l1_hits"] == 12 and stats["namespaces"]["user"]["l1_hits"] == 12
    assert stats["namespaces"]["user"]["misses"] == 3
    assert stats["namespaces"]["-"]["misses"] == 3


async def test_expired_l1_entry_is_dropped_and_read_from_l2(make_cache: MakeCache) -> None:
    cache = await make_cache("memory://", l1_ttl=0.05)
    await cache.set("user:1", 1, ttl=600)
    assert await cache.get("user:1") == 1 and cache.stats()["l1_hits"] == 1
    await asyncio.sleep(0.06)
    assert await cache.get("user:1") == 1
    stats = cache.stats()
    assert stats["l1_hits"] == 1 and stats["l2_hits"] == 1 and len(cache.l1) == 1
