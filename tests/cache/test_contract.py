"""The L2 contract and the cache API, on every backend (memory, SQLite, Redis)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from pydantic import BaseModel
from tests.conftest import backend_params

from headway.cache import Cache, Entry

pytestmark = pytest.mark.parametrize(
    "backend", backend_params("memory", "sqlite", "redis", "cluster")
)


class User(BaseModel):
    id: int
    name: str


@dataclasses.dataclass
class Point:
    x: int
    y: int


# -- the backend contract ----------------------------------------------------------------


async def test_backend_roundtrip_and_ttl(cache: Cache) -> None:
    b, k = cache.backend, cache.keys
    await b.set_many([Entry(k.entry("a"), b"1", 10), Entry(k.entry("b"), b"2", 0.3)])
    assert await b.get(k.entry("a")) == b"1"
    assert await b.get_many([k.entry("a"), k.entry("b"), k.entry("c")]) == [b"1", b"2", None]
    await asyncio.sleep(0.35)
    assert await b.get(k.entry("b")) is None
    assert await b.delete_many([k.entry("a"), k.entry("zz")]) == 1
    assert await b.get(k.entry("a")) is None


async def test_backend_tags_without_scan(cache: Cache) -> None:
    b, k = cache.backend, cache.keys
    t1, t2 = k.tag("red"), k.tag("blue")
    await b.set_many(
        [
            Entry(k.entry("x"), b"x", 10, (t1,)),
            Entry(k.entry("y"), b"y", 10, (t1, t2)),
            Entry(k.entry("z"), b"z", 10, (t2,)),
        ]
    )
    assert await b.invalidate_tags([t1]) == 2
    assert await b.get_many([k.entry("x"), k.entry("y"), k.entry("z")]) == [None, None, b"z"]
    assert await b.invalidate_tags([t1]) == 0


async def test_backend_delete_matching(cache: Cache) -> None:
    b, k = cache.backend, cache.keys
    await b.set_many(
        [Entry(k.entry(n, t), b"v", 10) for n in ("u:1", "u:2", "p:1") for t in (1, 2)]
    )
    assert await b.delete_matching(k.entry_pattern("u:*", 1)) == 2
    assert await b.get(k.entry("p:1", 1)) == b"v"
    assert await b.get(k.entry("u:1", 2)) == b"v"


async def test_backend_incr_add_release(cache: Cache) -> None:
    b, k = cache.backend, cache.keys
    assert await b.incr(k.entry("n"), 2, None) == 2
    assert await b.incr(k.entry("n"), -5, None) == -3
    assert await b.incr(k.entry("t"), 1, 0.05) == 1
    await asyncio.sleep(0.12)
    assert await b.incr(k.entry("t"), 1, 0.05) == 1
    await b.set_many([Entry(k.entry("s"), b"\x00Hjunk", 10)])
    with pytest.raises(ValueError, match="not an integer"):
        await b.incr(k.entry("s"), 1, None)
    assert await b.add(k.entry("l"), b"tok1", 10) is True
    assert await b.add(k.entry("l"), b"tok2", 10) is False
    assert await b.release(k.entry("l"), b"tok2") is False
    assert await b.release(k.entry("l"), b"tok1") is True
    assert await b.add(k.entry("l"), b"tok2", 10) is True


# -- the cache API on each backend ---------------------------------------------------------


async def test_get_set_delete_many(cache: Cache) -> None:
    await cache.set("user:1", {"id": 1}, tenant=1)
    await cache.set_many({"a": [1, 2], "b": "text"}, ttl=60)
    assert await cache.get("user:1", tenant=1) == {"id": 1}
    cache.l1.clear()
    assert await cache.get_many(["a", "b", "c"], default=0) == [[1, 2], "text", 0]
    assert await cache.delete("a", "c") == 1
    assert await cache.get("a") is None
    stats = cache.stats()
    assert (stats["l1_hits"], stats["l2_hits"], stats["misses"]) == (1, 2, 2)


async def test_json_values_models_and_compression(
    make_cache, backend: str, backend_url: str
) -> None:
    cache = await make_cache(backend_url, compress_min_bytes=64)
    big = {"text": "x" * 10_000}
    await cache.set("big", big)
    await cache.set("user:2", User(id=2, name="ann"))
    await cache.set("pt", Point(1, 2))
    cache.l1.clear()
    raw = await cache.backend.get(cache.keys.entry("big"))
    assert raw is not None and len(raw) < 1000
    assert await cache.get("big") == big
    assert await cache.get("user:2", model=User) == User(id=2, name="ann")
    assert await cache.get("pt") == {"x": 1, "y": 2}


async def test_expiry(cache: Cache) -> None:
    await cache.set("k", 1, ttl=0.05)
    await asyncio.sleep(0.12)
    cache.l1.clear()
    assert await cache.get("k", "gone") == "gone"


async def test_incr(cache: Cache) -> None:
    assert await cache.incr("hits", tenant=1) == 1
    assert await cache.incr("hits", 9, tenant=1) == 10
    assert await cache.get("hits", tenant=1) == 10
    assert await cache.get("hits", tenant=2) is None


async def test_tags(cache: Cache) -> None:
    await cache.set("post:1", "p1", tags=["posts", "post:1"], tenant=1)
    await cache.set("post:2", "p2", tags=["posts", "post:2"], tenant=1)
    await cache.set("post:1", "other", tags=["posts", "post:1"], tenant=2)
    assert await cache.invalidate_tags("post:1", tenant=1) == 1
    assert await cache.get("post:1", tenant=1) is None
    assert await cache.get("post:2", tenant=1) == "p2"
    assert await cache.invalidate_tags("posts", tenant=1) == 1
    assert await cache.get("post:2", tenant=1) is None
    cache.l1.clear()
    assert await cache.get("post:1", tenant=2) == "other"  # another tenant's tag


async def test_tenant_isolation(cache: Cache) -> None:
    for tenant in (1, 2, "acme corp/{x}"):
        await cache.set("user:1", f"u-{tenant}", tags=["users"], tenant=tenant)
        await cache.set("conf", f"c-{tenant}", tenant=tenant)
    assert await cache.get("user:1", tenant=1) == "u-1"
    assert await cache.get("user:1", tenant=2) == "u-2"
    assert await cache.invalidate_tenant(1) >= 2
    assert await cache.invalidate_pattern("*", tenant="acme corp/{x}") == 2
    for c in (cache,):
        c.l1.clear()
    assert await cache.get("user:1", tenant=1) is None
    assert await cache.get("conf", tenant="acme corp/{x}") is None
    assert await cache.get("user:1", tenant=2) == "u-2"
    assert await cache.get("conf", tenant=2) == "c-2"
    assert await cache.invalidate_tags("users", tenant=2) == 1


async def test_pattern_invalidation(cache: Cache) -> None:
    await cache.set_many({"user:1": 1, "user:2": 2, "users": 3, "company:1": 4}, tenant=7)
    await cache.set("user:1", 1, tenant=8)
    assert await cache.invalidate_pattern("user:*", tenant=7) == 2
    cache.l1.clear()
    assert await cache.get_many(["user:1", "user:2", "users", "company:1"], tenant=7) == [
        None,
        None,
        3,
        4,
    ]
    assert await cache.get("user:1", tenant=8) == 1


async def test_any_key(cache: Cache) -> None:
    keys = ["", " ", "ключ:é/?*[]{x}\n\t", "a" * 5000, "*", "user:{1}"]
    for i, key in enumerate(keys):
        await cache.set(key, i)
    cache.l1.clear()
    assert [await cache.get(k) for k in keys] == list(range(len(keys)))
    assert await cache.delete("a" * 5000) == 1


async def test_corrupt_value_is_a_counted_miss(cache: Cache) -> None:
    for name, junk in (("j1", b"garbage"), ("j2", b"\x00H\x00"), ("j3", b"\x00H" + b"\x00" * 30)):
        await cache.backend.set_many([Entry(cache.keys.entry(name), junk, 10)])
        assert await cache.get(name, "miss") == "miss"
    assert cache.stats()["corrupt"] == 3
    assert await cache.get_or_set("j1", lambda: _value(5)) == 5
    cache.l1.clear()
    assert await cache.get("j1") == 5


async def test_get_or_set_single_flight(cache: Cache) -> None:
    calls = 0

    async def loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        return {"n": calls}

    results = await asyncio.gather(*(cache.get_or_set("cold", loader) for _ in range(1000)))
    assert calls == 1
    assert all(r == {"n": 1} for r in results)
    assert cache.stats()["coalesced"] == 999


async def test_loader_error_propagates_and_is_not_cached(cache: Cache) -> None:
    async def boom() -> int:
        raise RuntimeError("db down")

    with pytest.raises(RuntimeError, match="db down"):
        await cache.get_or_set("e", boom)
    assert await cache.get_or_set("e", lambda: _value(3)) == 3
    assert cache.stats()["load_errors"] == 1


async def test_stale_while_revalidate_and_if_error(cache: Cache) -> None:
    calls = 0

    async def loader() -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("down")
        return calls

    opts = {"ttl": 0.05, "stale_while_revalidate": 0.3, "stale_if_error": 5.0}
    assert await cache.get_or_set("s", loader, **opts) == 1
    await asyncio.sleep(0.08)
    cache.l1.clear()
    assert await cache.get_or_set("s", loader, **opts) == 1  # stale, refresh started
    for _ in range(50):
        await asyncio.sleep(0.01)
        if calls >= 2:
            break
    await asyncio.sleep(0.02)
    cache.l1.clear()
    assert await cache.get_or_set("s", loader, **opts) == 2
    await asyncio.sleep(0.45)  # past the SWR window: a synchronous load, which fails
    cache.l1.clear()
    assert await cache.get_or_set("s", loader, **opts) == 2  # stale-if-error
    assert cache.stats()["stale"] >= 2


async def _value(v: int) -> int:
    return v
