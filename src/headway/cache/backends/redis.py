"""``redis://``: the shared L2 for many processes and machines.

Writes that must be atomic are the Lua scripts in ``lua/`` (loaded once with SCRIPT
LOAD, called with EVALSHA, reloaded if the server lost them). A write and its
invalidation message travel in one pipeline, so one round trip; other processes get the
message through pub/sub on ``P:c:inval``. Uses the hub's shared connection pool.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

from headway.cache.base import CacheBackend, Entry
from headway.connections.pubsub import listen as pubsub_listen
from headway.connections.redis import ConcurrentCalls, is_cluster

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

    from headway.connections import Connections

LUA_DIR = Path(__file__).parent / "lua"
SCRIPTS = {p.stem.rsplit("-", 1)[0]: p.read_text(encoding="utf-8") for p in LUA_DIR.glob("*.lua")}
SCAN_COUNT = 1000


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisCacheBackend(CacheBackend):
    def __init__(self, url: str, connections: Connections | None = None, **kw: Any) -> None:
        super().__init__(url, connections, **kw)
        if connections is not None:
            self.client: aioredis.Redis = connections.redis(url)
            self._own = False
        else:
            self.client = aioredis.Redis.from_url(url)
            self._own = True
        self._sha: dict[str, str] = {}
        self.cluster = is_cluster(url)

    async def close(self) -> None:
        if self._own:
            await self.client.aclose()

    async def _load(self) -> dict[str, str]:
        for name, source in SCRIPTS.items():
            self._sha[name] = str(await self.client.script_load(source))
        return self._sha

    async def _shas(self) -> dict[str, str]:
        return self._sha if self._sha else await self._load()

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        shas = await self._shas()
        try:
            return await self.client.evalsha(shas[name], len(keys), *keys, *args)
        except NoScriptError:  # server restarted or SCRIPT FLUSH: load again, once
            shas = await self._load()
            return await self.client.evalsha(shas[name], len(keys), *keys, *args)

    def _pipeline(self) -> Pipeline:
        if self.cluster:
            # redis-py refuses EVALSHA in a cluster pipeline: send each call to its slot's
            # node concurrently instead (still one round trip per node, not per call)
            return cast("Pipeline", ConcurrentCalls(self.client))
        return self.client.pipeline(transaction=False)

    async def _run(self, build: Callable[[Pipeline, dict[str, str]], None]) -> list[Any]:
        """Run a pipeline that may call scripts; reload them once if the server lost them."""
        for attempt in (1, 2):
            shas = await self._shas() if attempt == 1 else await self._load()
            pipe = self._pipeline()
            build(pipe, shas)
            try:
                return list(await pipe.execute())
            except NoScriptError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        await self.client.ping()

    def get(self, key: str) -> Coroutine[Any, Any, bytes | None]:
        # redis-py's coroutine itself (no frame of ours around it): the L2 hit path
        get: Coroutine[Any, Any, bytes | None] = self.client.get(key)  # type: ignore[assignment]
        return get

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        if self.cluster:  # keys of several tenants live in several slots
            return cast("list[bytes | None]", await self.client.mget_nonatomic(keys))  # type: ignore[attr-defined]
        return cast("list[bytes | None]", await self.client.mget(keys))

    async def set_many(self, entries: Sequence[Entry], *, notify: bytes | None = None) -> None:
        if len(entries) == 1 and not entries[0].tags and notify is None:
            await self.client.set(entries[0].key, entries[0].value, px=_ms(entries[0].ttl))
            return

        def build(pipe: Pipeline, shas: dict[str, str]) -> None:
            for e in entries:
                if e.tags:
                    pipe.evalsha(shas["set_tagged"], 1, e.key, e.value, _ms(e.ttl), *e.tags)
                else:
                    pipe.set(e.key, e.value, px=_ms(e.ttl))
            if notify is not None:
                pipe.publish(self.channel, notify)

        await self._run(build)

    async def delete_many(self, keys: Sequence[str], *, notify: bytes | None = None) -> int:
        if not keys:
            return 0
        pipe = self._pipeline()
        pipe.delete(*keys)
        if notify is not None:
            pipe.publish(self.channel, notify)
        return int((await pipe.execute())[0])

    async def invalidate_tags(self, tags: Sequence[str], *, notify: bytes | None = None) -> int:
        if not tags:
            return 0

        def build(pipe: Pipeline, shas: dict[str, str]) -> None:
            pipe.evalsha(shas["invalidate_tags"], 1, tags[0], *tags)
            if notify is not None:
                pipe.publish(self.channel, notify)

        return int((await self._run(build))[0])

    async def delete_matching(self, pattern: str, *, notify: bytes | None = None) -> int:
        deleted = 0
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT):
            batch.append(key)
            if len(batch) >= SCAN_COUNT:
                deleted += int(await self.client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(await self.client.unlink(*batch))
        if notify is not None:
            await self.client.publish(self.channel, notify)
        return deleted

    async def incr(self, key: str, delta: int, ttl: float | None) -> int:
        try:
            value = await self._script("incr", [key], [delta, 0 if ttl is None else _ms(ttl)])
        except ResponseError as exc:
            if "not an integer" in str(exc):
                raise ValueError(f"the value under {key!r} is not an integer") from None
            raise
        return int(value)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(await self.client.set(key, value, px=_ms(ttl), nx=True))

    async def release(self, key: str, value: bytes) -> bool:
        return bool(await self._script("release", [key], [value]))

    async def listen(self, callback: Callable[[bytes], None]) -> None:
        # once subscribed, b"" makes the cache drop L1 (messages may have been missed)
        await pubsub_listen(
            self.client, self.channel, callback, on_subscribed=lambda: callback(b"")
        )

    async def info(self) -> dict[str, Any]:
        memory = await self.client.info("memory")
        stats = await self.client.info("stats")
        return {
            "backend": "redis",
            "maxmemory_policy": memory.get("maxmemory_policy"),
            "used_memory_human": memory.get("used_memory_human"),
            "keyspace_hits": stats.get("keyspace_hits"),
            "keyspace_misses": stats.get("keyspace_misses"),
            "evicted_keys": stats.get("evicted_keys"),
        }
