"""The two-level cache: L1 in process, L2 shared, the loader behind both.

Reads go L1 -> L2 -> loader; writes go through to L2 and invalidate the other processes'
L1 through the backend's channel. Every L2 failure is counted and absorbed: the cache
then answers from L1 and the loader for ``retry_after`` seconds and tries L2 again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeVar, cast

from headway import registry
from headway.cache import codec, coherence
from headway.cache.base import CacheBackend, Entry
from headway.cache.keys import KeyBuilder, Tenant, namespace_of
from headway.cache.l1 import L1, MISSING
from headway.cache.loading import Loader, LoadRequest, Stampede, call_loader
from headway.cache.settings import CacheSettings
from headway.cache.stats import Stats
from headway.capability import Capability, Readiness
from headway.settings import load_section

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from headway.cache.decorator import CachedFactory
    from headway.cache.metrics import CacheMetrics
    from headway.cache.orm import OrmCache
    from headway.hub import Headway

T = TypeVar("T")
TTL = float | int | str | None
log = logging.getLogger("headway.cache")


class Cache(Capability):
    """``hw.cache``: get/set/delete, get_or_set, tags, decorators, stats, warm-up."""

    name = "cache"

    def __init__(
        self, hw: Headway, settings: CacheSettings | None = None, *, url: str | None = None
    ) -> None:
        super().__init__(hw)
        self.settings = s = settings or load_section(CacheSettings)
        self.url = url or hw.settings.backend_url("cache")
        self.keys = KeyBuilder(s.prefix, s.max_key_length)
        backend_cls = registry.resolve("cache", self.url)
        self.backend: CacheBackend = backend_cls(
            self.url, hw.connections, channel=self.keys.channel
        )
        self.l1 = L1(s.l1_max_entries, s.l1_max_bytes, s.l1_ttl)
        self.counters = Stats()
        self.origin = uuid.uuid4().hex
        self._down_until = 0.0
        self._last_error = ""
        self._stampede = Stampede(self)
        self._listener = coherence.Listener(self)
        self._orm: OrmCache | None = None
        self.pending: set[asyncio.Future[Any]] = set()
        self.metrics: CacheMetrics | None = None  # set by register_metrics (headway.observe)
        self._running = False

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._running = True
        if self.metrics is not None:
            self.metrics.totals.start()
        if self.settings.coherence and self.backend.shared and self.l1.enabled:
            self._listener.start()

    async def stop(self) -> None:
        self._running = False
        if self.metrics is not None:
            await self.metrics.totals.stop()
        await self._listener.stop()
        await self._stampede.drain()
        await self.backend.close()

    # -- observability hooks (headway.observe) -------------------------------------------

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """Counters per level and namespace; the hit ratio is PromQL (see cache.metrics)."""
        from headway.cache.metrics import CacheMetrics

        self.metrics = CacheMetrics(registry, self.counters)
        self.counters.on_load = self.metrics.observe_load
        if self._running:
            self.metrics.totals.start()

    async def refresh_metrics(self) -> None:
        if self.metrics is not None:
            self.metrics.totals.flush()

    async def check_ready(self) -> Readiness | None:
        """One L2 ping; never critical: without L2 the cache answers from L1 and loaders."""
        from headway.observe.health import probe

        detail = {"backend": registry.scheme_of(self.url), "l2_available": self.l2_available}
        return await probe(self.backend.ping, critical=False, detail=detail)

    # -- L2 access: every call goes through here, errors are absorbed -----------------

    @property
    def l2_available(self) -> bool:
        return time.monotonic() >= self._down_until

    def l2_failed(self, exc: BaseException) -> None:
        self.counters.l2_errors += 1
        if time.monotonic() >= self._down_until:
            log.warning("cache L2 %s failed (%s); using L1 + loader", self.url, exc)
        self._down_until = time.monotonic() + self.settings.retry_after
        self._last_error = f"{type(exc).__name__}: {exc}"[:300]

    async def read(self, full: str) -> codec.Decoded | None:
        """The decoded L2 entry under ``full`` (None: absent, corrupt or L2 down)."""
        if self.pending:
            await self.settle()
        if self._down_until and not self.l2_available:  # (0.0: L2 never failed)
            return None
        try:
            raw = await self.backend.get(full)
        except Exception as exc:
            self.l2_failed(exc)
            return None
        return None if raw is None else self._decode(full, raw)

    def _decode(self, full: str, raw: bytes) -> codec.Decoded | None:
        try:
            return codec.decode(raw)
        except codec.CorruptValue:
            self.counters.corrupt += 1
            log.debug("corrupt cache value under %r counted as a miss", full)
            return None

    async def l2(self, op: Callable[[], Awaitable[T]], fallback: T) -> T:
        if not self.l2_available:
            return fallback
        try:
            return await op()
        except Exception as exc:
            self.l2_failed(exc)
            return fallback

    def notify(self, **message: Any) -> bytes | None:
        if not (self.settings.coherence and self.backend.shared):
            return None
        return coherence.message(self.origin, **message)

    # -- helpers ------------------------------------------------------------------------

    def ttl_for(self, ttl: TTL, key: str) -> float:
        """Seconds for ``ttl``: a number, a preset name, or the key namespace's preset."""
        presets = self.settings.ttl_presets
        if ttl is None:
            return presets.get(namespace_of(key), self.settings.default_ttl)
        if isinstance(ttl, str):
            if ttl not in presets:
                raise ValueError(f"unknown TTL preset {ttl!r}; presets: {sorted(presets)}")
            return presets[ttl]
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl!r}")
        return float(ttl)

    def remember(self, full: str, entry: codec.Decoded) -> None:
        """Put a fresh L2 entry into L1 for what remains of its freshness."""
        self.l1.put(full, entry.value, entry.size, entry.fresh_until - time.time(), entry.tags)

    def build(
        self, value: Any, ttl: float, tags: tuple[str, ...], took: float = 0.0
    ) -> tuple[bytes, codec.Decoded]:
        fresh = time.time() + ttl
        raw = codec.encode(
            value,
            fresh_until=fresh,
            took=took,
            tags=tags,
            compress_min=self.settings.compress_min_bytes,
        )
        return raw, codec.Decoded(codec.decode(raw).value, fresh, took, tags, len(raw))

    # -- reads --------------------------------------------------------------------------

    def l1_hit(self, key: str, tenant: Tenant) -> Any:
        """The L1 value of a short key, counted as a hit, or MISSING (the hot path).

        The same as ``l1.get(keys.entry(key, tenant))`` + ``counters.l1_hit`` with no
        intermediate objects: a memoized entry prefix per tenant, one concatenation, one
        dict lookup, one clock read, and the namespace's counts memoized per key.
        """
        keys = self.keys
        if len(key) > keys.max_len:  # stored under its digest: the slow path
            return MISSING
        full = (keys.entry_prefixes.get(tenant) or keys.entry_prefix(tenant)) + key
        l1 = self.l1
        item = l1.data.get(full)
        if item is None or item.expires <= monotonic():
            return MISSING
        l1.data.move_to_end(full)
        counters = self.counters
        counts = counters.by_key.get(key) or counters.of_key(key)
        counters.total.l1_hits += 1
        counts.l1_hits += 1
        return item.value

    async def get(
        self, key: str, default: Any = None, *, tenant: Tenant = None, model: Any = None
    ) -> Any:
        """The fresh value under ``key``, else ``default``."""
        # the hot path: ``l1_hit`` inlined (a call is a tenth of an L1 hit's time)
        keys = self.keys
        if len(key) <= keys.max_len:
            full = (keys.entry_prefixes.get(tenant) or keys.entry_prefix(tenant)) + key
            data = self.l1.data
            item = data.get(full)
            if item is not None:
                if item.expires > monotonic():
                    data.move_to_end(full)
                    counters = self.counters
                    counts = counters.by_key.get(key) or counters.of_key(key)
                    counters.total.l1_hits += 1
                    counts.l1_hits += 1
                    return item.value if model is None else _adapt(model, item.value)
                self.l1.pop((full,))  # expired
        else:  # stored under its digest
            full = keys.entry(key, tenant)
            value = self.l1.get(full)
            if value is not MISSING:
                self.counters.l1_hit(namespace_of(key))
                return _adapt(model, value)
        # ``read`` inlined: one coroutine frame less on the L2 hot path
        if self.pending:
            await self.settle()
        entry = None
        if not self._down_until or self.l2_available:  # (0.0: L2 never failed)
            try:
                raw = await self.backend.get(full)
            except Exception as exc:
                self.l2_failed(exc)
                raw = None
            if raw is not None:
                entry = self._decode(full, raw)
        now = time.time()
        if entry is None or entry.fresh_until <= now:
            self.counters.miss(namespace_of(key))
            return default
        counters = self.counters
        counters.total.l2_hits += 1
        (counters.by_key.get(key) or counters.of_key(key)).l2_hits += 1
        if self.l1.enabled:
            self.l1.put(full, entry.value, entry.size, entry.fresh_until - now, entry.tags)
        return entry.value if model is None else _adapt(model, entry.value)

    async def get_many(
        self, keys: Sequence[str], default: Any = None, *, tenant: Tenant = None
    ) -> list[Any]:
        """Values for ``keys`` in order (one L2 round trip for the L1 misses)."""
        fulls = [self.keys.entry(k, tenant) for k in keys]
        out = [self.l1.get(f) for f in fulls]
        if self.pending:
            await self.settle()
        todo = [i for i, v in enumerate(out) if v is MISSING]
        empty: list[bytes | None] = []
        raws = await self.l2(lambda: self.backend.get_many([fulls[i] for i in todo]), empty)
        now = time.time()
        for i, raw in zip(todo, raws or [None] * len(todo), strict=True):
            entry = None if raw is None else self._decode(fulls[i], raw)
            if entry is not None and entry.fresh_until > now:
                self.counters.l2_hit(namespace_of(keys[i]))
                self.remember(fulls[i], entry)
                out[i] = entry.value
        for i in todo:
            if out[i] is MISSING:
                self.counters.miss(namespace_of(keys[i]))
                out[i] = default
        for i in set(range(len(keys))) - set(todo):
            self.counters.l1_hit(namespace_of(keys[i]))
        return out

    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        *,
        ttl: TTL = None,
        tags: Sequence[str] = (),
        tenant: Tenant = None,
        model: Any = None,
        stale_while_revalidate: float | None = None,
        stale_if_error: float | None = None,
        early_refresh: float | None = None,
    ) -> T:
        """The value under ``key``, loading and storing it on a miss (once per key).

        Concurrent callers share one load per process (single-flight) and, with a shared
        L2, one load across processes (a short lock; the others wait for the value).
        """
        value = self.l1_hit(key, tenant)
        if value is not MISSING:  # (no cast() call: it costs a tenth of a hit)
            return value if model is None else _adapt(model, value)  # type: ignore[no-any-return]
        full = self.keys.entry(key, tenant)
        value = self.l1.get(full)
        if value is not MISSING:
            self.counters.l1_hit(namespace_of(key))
            return cast("T", _adapt(model, value))
        s = self.settings
        request = LoadRequest(
            key=key,
            full=full,
            loader=loader,
            ttl=self.ttl_for(ttl, key),
            tags=tuple(self.keys.tag(t, tenant) for t in tags),
            swr=s.stale_while_revalidate
            if stale_while_revalidate is None
            else stale_while_revalidate,
            sie=_pick(stale_if_error, s.stale_if_error),
            beta=_pick(early_refresh, s.early_refresh_beta),
        )
        return cast("T", _adapt(model, await self._stampede.resolve(request)))

    # -- writes -------------------------------------------------------------------------

    async def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: TTL = None,
        tags: Sequence[str] = (),
        tenant: Tenant = None,
    ) -> None:
        """Store ``value`` in L2 and L1; other processes drop their L1 copy."""
        await self.set_many({key: value}, ttl=ttl, tags=tags, tenant=tenant)

    async def set_many(
        self,
        items: Mapping[str, Any],
        *,
        ttl: TTL = None,
        tags: Sequence[str] = (),
        tenant: Tenant = None,
    ) -> None:
        tag_keys = tuple(self.keys.tag(t, tenant) for t in tags)
        entries: list[Entry] = []
        for key, value in items.items():
            seconds = self.ttl_for(ttl, key)
            full = self.keys.entry(key, tenant)
            raw, decoded = self.build(value, seconds, tag_keys)
            stale = max(self.settings.stale_while_revalidate, self.settings.stale_if_error)
            entries.append(Entry(full, raw, seconds + stale, tag_keys))
            self.l1.put(full, decoded.value, decoded.size, seconds, tag_keys)
        note = self.notify(k=[e.key for e in entries])
        await self.l2(lambda: self.backend.set_many(entries, notify=note), None)

    async def store(self, entry: Entry) -> None:
        """Write one encoded entry (the loader path: no invalidation message)."""
        await self.l2(lambda: self.backend.set_many([entry]), None)

    async def delete(self, *keys: str, tenant: Tenant = None) -> int:
        """Delete keys everywhere; return how many existed in L2."""
        fulls = [self.keys.entry(k, tenant) for k in keys]
        self.l1.pop(fulls)
        note = self.notify(k=fulls)
        return await self.l2(lambda: self.backend.delete_many(fulls, notify=note), 0)

    async def incr(
        self, key: str, delta: int = 1, *, ttl: TTL = None, tenant: Tenant = None
    ) -> int:
        """Add ``delta`` to a counter (created at 0 with ``ttl``); read it with ``get``."""
        full = self.keys.entry(key, tenant)
        self.l1.pop([full])
        seconds = None if ttl is None else self.ttl_for(ttl, key)
        if not self.l2_available:
            return delta
        try:
            return await self.backend.incr(full, delta, seconds)
        except ValueError:
            raise
        except Exception as exc:
            self.l2_failed(exc)
            return delta

    # -- invalidation -------------------------------------------------------------------

    async def invalidate_tags(self, *tags: str, tenant: Tenant = None) -> int:
        """Drop every value stored with one of ``tags`` (one round trip, no scan)."""
        if not tags:
            return 0
        tag_keys = [self.keys.tag(t, tenant) for t in tags]
        self.l1.pop_tags(tag_keys)
        note = self.notify(t=tag_keys)
        return await self.l2(lambda: self.backend.invalidate_tags(tag_keys, notify=note), 0)

    async def invalidate_pattern(self, pattern: str, *, tenant: Tenant = None) -> int:
        """Drop keys of one tenant matching a glob. Slow path: Redis SCANs its keyspace.

        The glob applies to key names (``user:*``); it can never reach another tenant.
        Keys longer than ``max_key_length`` are stored hashed and do not match.
        """
        full = self.keys.entry_pattern(pattern, tenant)
        self.l1.pop_matching(full)
        note = self.notify(m=full)
        return await self.l2(lambda: self.backend.delete_matching(full, notify=note), 0)

    async def invalidate_tenant(self, tenant: Tenant) -> int:
        """Drop every value (and tag) of one tenant, and nothing of any other."""
        space = self.keys.space(tenant) + ":"
        self.l1.pop_prefix(space)
        note = self.notify(p=space)
        pattern = self.keys.tenant_pattern(tenant)
        return await self.l2(lambda: self.backend.delete_matching(pattern, notify=note), 0)

    async def clear(self) -> int:
        """Drop every value under this cache's prefix (all tenants)."""
        self.l1.clear()
        note = self.notify(a=1)
        pattern = self.keys.all_pattern()
        return await self.l2(lambda: self.backend.delete_matching(pattern, notify=note), 0)

    def after_commit(self, tags: Sequence[str], tenant: Tenant) -> None:
        """Invalidate ``tags`` for a committed transaction (called from a sync event).

        L1 is purged at once; the L2 invalidation runs as a task that every later read
        of this cache awaits first, so a process reads its own writes.
        """
        self.l1.pop_tags([self.keys.tag(t, tenant) for t in tags])
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("commit outside an event loop: L2 entries %s expire by TTL", tags)
            return
        task = loop.create_task(self.invalidate_tags(*tags, tenant=tenant))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def settle(self) -> None:
        """Wait for the invalidations that commits scheduled."""
        while self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)

    # -- operations ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Hits, misses and ratios per level and namespace, load time, errors."""
        return {
            **self.counters.as_dict(),
            "backend": registry.scheme_of(self.url),
            "l2_available": self.l2_available,
            "last_error": self._last_error or None,
            "l1": {
                "entries": len(self.l1),
                "bytes": self.l1.bytes,
                "evictions": self.l1.evictions,
                "max_entries": self.l1.max_entries,
                "max_bytes": self.l1.max_bytes,
            },
            "coherence": self._listener.status(),
        }

    async def warm(
        self,
        items: Iterable[tuple[str, Loader[Any]]] | Mapping[str, Loader[Any]],
        *,
        ttl: TTL = None,
        tags: Sequence[str] = (),
        tenant: Tenant = None,
        concurrency: int = 16,
    ) -> int:
        """Load and store each ``(key, loader)`` now; return how many were stored."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(key: str, loader: Loader[Any]) -> bool:
            async with gate:
                try:
                    value = await call_loader(loader)
                except Exception as exc:
                    log.warning("warming %r failed: %s", key, exc)
                    return False
                await self.set(key, value, ttl=ttl, tags=tags, tenant=tenant)
                return True

        done = await asyncio.gather(*(one(k, fn) for k, fn in pairs))
        return sum(done)

    def cached(self, **options: Any) -> CachedFactory:
        """Decorator: see :func:`headway.cache.decorator.cached` for the options."""
        from headway.cache.decorator import CachedFactory

        return CachedFactory(self, **options)

    @property
    def orm(self) -> OrmCache:
        """SQLAlchemy helpers: ``find_cached``, ``all_cached``, ``query_cached``, ``watch``."""
        if self._orm is None:
            from headway.cache.orm import OrmCache

            self._orm = OrmCache(self)
        return self._orm


def _pick(value: float | None, default: float) -> float:
    return default if value is None else value


_ADAPTERS: dict[Any, Any] = {}


def _adapt(model: Any, value: Any) -> Any:
    """Validate a JSON value back into ``model`` (a pydantic model or any type)."""
    if model is None or value is None:
        return value
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = _ADAPTERS[model] = TypeAdapter(model)
    return adapter.validate_python(value)
