"""The miss path: single-flight per process, a short lock across processes, early
refresh, stale-while-revalidate and stale-if-error.

One :class:`Stampede` per cache. The first caller for key K resolves it inline; every
concurrent caller in the process awaits its result (single-flight). That caller takes
the L2 lock ``P:c:{t}:l:K`` (SET NX PX); the holder calls the loader and writes the
value before releasing the lock, and the other processes poll L2 (2 ms doubling to
50 ms) until the value appears, or until the lock is free again (then one of them
loads), or ``lock_wait`` runs out (then they load).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from headway.cache.base import Entry
from headway.cache.codec import Decoded
from headway.cache.keys import namespace_of

if TYPE_CHECKING:
    from headway.cache.core import Cache

T = TypeVar("T")
Loader = Callable[[], Awaitable[T]] | Callable[[], T]
log = logging.getLogger("headway.cache")


async def call_loader(loader: Loader[T]) -> T:
    """Call a sync or async loader."""
    result = loader()
    if inspect.isawaitable(result):
        return cast("T", await result)
    return result


@dataclass(slots=True)
class LoadRequest:
    key: str
    full: str
    loader: Loader[Any]
    ttl: float
    tags: tuple[str, ...]
    swr: float
    sie: float
    beta: float

    @property
    def ns(self) -> str:
        return namespace_of(self.key)


def refresh_early(entry: Decoded, now: float, beta: float) -> bool:
    """XFetch: the closer to expiry and the slower the loader, the likelier a refresh."""
    if beta <= 0 or entry.took <= 0:
        return False
    return now - entry.took * beta * math.log(1.0 - random.random()) >= entry.fresh_until  # noqa: S311


class _LeaderGone(Exception):
    """The caller loading a key was cancelled; a waiting caller takes over."""


def _settle(flight: asyncio.Future[Any], exc: BaseException) -> None:
    flight.set_exception(exc)
    flight.exception()  # mark retrieved: no warning when nobody was waiting


class Stampede:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self._flights: dict[str, asyncio.Future[Any]] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._refreshing: set[str] = set()

    async def resolve(self, req: LoadRequest) -> Any:
        """The first caller for a key does the work inline; the others await its result."""
        while True:
            flight = self._flights.get(req.full)
            if flight is None:
                return await self._lead(req)
            self.cache.counters.coalesced += 1
            try:
                return await asyncio.shield(flight)
            except _LeaderGone:
                continue  # the leader was cancelled: the next caller leads

    async def _lead(self, req: LoadRequest) -> Any:
        flight: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._flights[req.full] = flight
        try:
            value = await self._resolve(req)
        except asyncio.CancelledError:
            _settle(flight, _LeaderGone())
            raise
        except Exception as exc:
            _settle(flight, exc)
            raise
        finally:
            if self._flights.get(req.full) is flight:
                del self._flights[req.full]
        flight.set_result(value)
        return value

    async def _resolve(self, req: LoadRequest) -> Any:
        cache = self.cache
        entry = await cache.read(req.full)
        now = time.time()
        if entry is not None and now < entry.fresh_until:
            cache.counters.l2_hit(req.ns)
            cache.remember(req.full, entry)
            if refresh_early(entry, now, req.beta):
                self.refresh_later(req)
            return entry.value
        if entry is not None and now - entry.fresh_until <= req.swr:
            cache.counters.stale_served(req.ns)
            self.refresh_later(req)
            return entry.value
        cache.counters.miss(req.ns)
        return await self._load(req, entry)

    async def _acquire(self, lock: str, token: bytes) -> bool | None:
        """True: ours. False: another process loads. None: no lock to take (go ahead)."""
        cache = self.cache
        if not cache.backend.shared or not cache.l2_available:
            return None
        try:
            return await cache.backend.add(lock, token, cache.settings.lock_ttl)
        except Exception as exc:
            cache.l2_failed(exc)
            return None

    async def _release(self, lock: str, token: bytes) -> None:
        await self.cache.l2(lambda: self.cache.backend.release(lock, token), False)

    async def _load(self, req: LoadRequest, stale: Decoded | None) -> Any:
        token = uuid.uuid4().hex.encode()
        lock = self.cache.keys.lock(req.full)
        held = await self._acquire(lock, token)
        if held is False:
            found, held = await self._wait(req, lock, token)
            if found is not None:
                return found.value
        try:
            return await self.fill(req)
        except Exception:
            if stale is not None and time.time() - stale.fresh_until <= req.sie:
                self.cache.counters.stale_served(req.ns)
                return stale.value
            raise
        finally:
            if held:
                await self._release(lock, token)

    async def _wait(self, req: LoadRequest, lock: str, token: bytes) -> tuple[Decoded | None, bool]:
        """Poll L2 for the value another process is loading; take over if it gives up."""
        cache = self.cache
        cache.counters.lock_waits += 1
        deadline = time.monotonic() + cache.settings.lock_wait
        delay = 0.002
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            entry = await cache.read(req.full)
            if entry is not None and entry.fresh_until > time.time():
                cache.remember(req.full, entry)
                return entry, False
            acquired = await self._acquire(lock, token)
            if acquired is not False:
                return None, bool(acquired)
        return None, False

    async def fill(self, req: LoadRequest) -> Any:
        """Call the loader, write the value through to L2 and L1, return it as JSON."""
        cache = self.cache
        started = time.perf_counter()
        try:
            value = await call_loader(req.loader)
        except Exception:
            cache.counters.loaded(req.ns, time.perf_counter() - started, ok=False)
            raise
        took = time.perf_counter() - started
        cache.counters.loaded(req.ns, took, ok=True)
        raw, decoded = cache.build(value, req.ttl, req.tags, took)
        await cache.store(Entry(req.full, raw, req.ttl + max(req.swr, req.sie), req.tags))
        cache.l1.put(req.full, decoded.value, decoded.size, req.ttl, req.tags)
        return decoded.value

    # -- background refresh -------------------------------------------------------------

    def refresh_later(self, req: LoadRequest) -> None:
        if req.full in self._refreshing:
            return
        self._refreshing.add(req.full)
        self.cache.counters.refreshes += 1
        task = asyncio.ensure_future(self._refresh(req))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh(self, req: LoadRequest) -> None:
        token = uuid.uuid4().hex.encode()
        lock = self.cache.keys.lock(req.full)
        held = await self._acquire(lock, token)
        try:
            if held is not False:
                await self.fill(req)
        except Exception as exc:
            log.warning("background refresh of %r failed: %s", req.key, exc)
        finally:
            self._refreshing.discard(req.full)
            if held:
                await self._release(lock, token)

    async def drain(self) -> None:
        """Cancel background refreshes (the cache is stopping)."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
