"""``hw.flags``: definitions in the database, evaluated from an in-process snapshot.

The snapshot is reloaded when the store's version moves: at once after a write here, on
a Redis announcement from another process, and by polling ``version()`` every
``poll_interval`` (0.5 s by default, so a change is everywhere within about a second
even without Redis).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from headway import registry
from headway.capability import Capability, Readiness
from headway.constants import REDIS_SCHEMES
from headway.flags.base import FlagNotFound, FlagStore
from headway.flags.evaluate import ERROR, CompiledFlag, Evaluation, not_found
from headway.flags.feed import RedisFeed
from headway.flags.model import FlagDefinition
from headway.flags.settings import FlagsSettings
from headway.settings import load_section

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from starlette.applications import Starlette

    from headway.flags.metrics import FlagMetrics
    from headway.hub import Headway

log = logging.getLogger("headway.flags")
Snapshot = dict[tuple[str, str], CompiledFlag]
MAX_FLAGS = 500  # distinct flag keys counted by name; later ones count as OTHER
OTHER = "other"


class Flags(Capability):
    """``is_enabled``, ``variant``, ``evaluate``; ``create/update/delete`` with an audit."""

    name = "flags"

    def __init__(
        self, hw: Headway, settings: FlagsSettings | None = None, *, url: str | None = None
    ) -> None:
        super().__init__(hw)
        self.settings = settings or load_section(FlagsSettings)
        url = url or hw.settings.backend_url("flags")
        redis_url = hw.settings.redis_url
        if registry.scheme_of(url) in REDIS_SCHEMES:
            url, redis_url = hw.settings.sql_url, url
        self.url = url
        self.store: FlagStore = registry.resolve("flags", url)(url, hw.connections)
        self.feed = None if redis_url is None else RedisFeed(hw.connections.redis(redis_url), "")
        if self.feed is not None:
            self.feed.channel = f"{self.settings.prefix}:flags:changed"
        self.version = -1
        self._snapshot: Snapshot = {}
        self._global: dict[str, CompiledFlag] = {}  # the snapshot's flags of tenant ""
        self._tenanted = False  # whether any flag is defined for one tenant
        self.listening = False
        self.last_error = ""
        self._defaults: list[FlagDefinition] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._routes = False
        # observability: evaluations per (flag, reason), folded into metrics by observe
        self.evaluations: dict[tuple[str, str], int] = {}
        self.store_errors = 0
        self.checked_at = time.monotonic()  # the snapshot was last confirmed current
        self.exported: FlagMetrics | None = None  # set by register_metrics
        self._counted_keys: set[str] = set()
        self._running = False

    # -- lifecycle ----------------------------------------------------------------------

    def defaults(self, definitions: Iterable[FlagDefinition | Mapping[str, Any]]) -> None:
        """Flags created on start when absent (an existing flag is never changed)."""
        self._defaults.extend(_definition(d) for d in definitions)

    async def start(self) -> None:
        self._running = True
        if self.exported is not None:
            self.exported.totals.start()
        await self.store.setup()
        for d in self._defaults:
            if await self.store.get("", d.key) is None:
                with contextlib.suppress(Exception):  # another process seeded it first
                    await self.store.put("", d.key, d.public(), "headway:seed", create=True)
        await self.reload()
        self._tasks.append(asyncio.create_task(self._poll(), name="headway-flags-poll"))
        if self.feed is not None:
            self._tasks.append(asyncio.create_task(self._listen(), name="headway-flags-feed"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.listening = False
        self._running = False
        if self.exported is not None:
            await self.exported.totals.stop()
        await self.store.close()

    # -- keeping the snapshot current -----------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        """Compiled flags by ``(tenant, key)``; tenant ``""`` is every tenant's."""
        return self._snapshot

    @snapshot.setter
    def snapshot(self, value: Snapshot) -> None:
        self._global = {key: flag for (tenant, key), flag in value.items() if not tenant}
        self._tenanted = len(self._global) < len(value)
        self._snapshot = value

    async def reload(self, known: int | None = None) -> None:
        """Read every flag again when the store's version is newer than the snapshot's."""
        async with self._lock:
            if known is not None and known <= self.version:
                return
            version, rows = await self.store.load()
            self.checked_at = time.monotonic()
            if version == self.version:
                return
            fresh: Snapshot = {}
            for row in rows:
                try:
                    fresh[(row.tenant, row.key)] = CompiledFlag(_definition(row.definition))
                except (ValidationError, ValueError) as exc:
                    log.error("flag %r in the store is invalid, skipped: %s", row.key, exc)
            self.snapshot, self.version = fresh, version

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                version = await self.store.version()
                if version != self.version:
                    await self.reload()
                self.checked_at = time.monotonic()
            except Exception as exc:  # keep serving the last snapshot
                self.store_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("flags store unreachable (%s); serving the last snapshot", exc)

    async def _listen(self) -> None:
        assert self.feed is not None
        while True:
            try:
                await self.feed.listen(self._on_version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening = False
                log.warning("flags change channel lost (%s); polling only", exc)
            await asyncio.sleep(1.0)

    def _on_version(self, version: int | None) -> None:
        if version is None:
            self.listening = True
        elif version > self.version:
            task = asyncio.create_task(self._safe_reload(version))
            self._tasks.append(task)
            self._tasks = [t for t in self._tasks if not t.done()]

    async def _safe_reload(self, version: int) -> None:
        try:
            await self.reload(version)
        except Exception as exc:
            log.warning("flags reload failed (%s)", exc)

    # -- evaluation (no I/O) --------------------------------------------------------------

    def find(self, key: str, tenant: str | None = None) -> CompiledFlag | None:
        if tenant and self._tenanted:
            own = self._snapshot.get((tenant, key))
            if own is not None:
                return own
        return self._global.get(key)

    def evaluate_now(
        self,
        key: str,
        *,
        tenant: str | None = None,
        user: str | None = None,
        context: Mapping[str, Any] | None = None,
        default: Any = False,
    ) -> Evaluation:
        """Evaluate from the snapshot (sync); never raises for an unknown flag."""
        flag = self.find(key, tenant)
        if flag is None:
            ev = not_found(key, default)
            counted = (key, ERROR)
        else:
            ev = _evaluate(flag, tenant, user, context)
            counted = flag.counted[ev.reason]
        try:
            self.evaluations[counted] += 1
        except KeyError:
            self._count_new(counted)
        return ev

    def _enabled(
        self,
        key: str,
        tenant: str | None,
        user: str | None,
        context: Mapping[str, Any] | None,
        default: bool,
    ) -> bool:
        """``is_enabled`` without the await (positional: it is the hot path)."""
        flag = self.find(key, tenant)
        if flag is None:
            counted = (key, ERROR)  # counted as evaluate_now counts it
            try:
                self.evaluations[counted] += 1
            except KeyError:
                self._count_new(counted)
            return default
        ev = _evaluate(flag, tenant, user, context)
        counted = flag.counted[ev.reason]
        try:
            self.evaluations[counted] += 1
        except KeyError:
            self._count_new(counted)
        return ev.enabled

    def _count_new(self, counted: tuple[str, str]) -> None:
        """The first evaluation of a (flag, reason): beyond MAX_FLAGS keys, "other"."""
        key = counted[0]
        if key not in self._counted_keys:
            if len(self._counted_keys) >= MAX_FLAGS:
                counted = (OTHER, counted[1])
            else:
                self._counted_keys.add(key)
        self.evaluations[counted] = self.evaluations.get(counted, 0) + 1

    async def evaluate(self, key: str, **kwargs: Any) -> Evaluation:
        return self.evaluate_now(key, **kwargs)

    async def is_enabled(
        self,
        key: str,
        *,
        tenant: str | None = None,
        user: str | None = None,
        context: Mapping[str, Any] | None = None,
        default: bool = False,
    ) -> bool:
        """Whether the flag is on for this context (``default`` for an unknown flag)."""
        return self._enabled(key, tenant, user, context, default)

    async def variant(
        self,
        key: str,
        *,
        tenant: str | None = None,
        user: str | None = None,
        context: Mapping[str, Any] | None = None,
        default: str | None = None,
    ) -> str | None:
        """The variant's name (``default`` for an unknown flag)."""
        ev = self.evaluate_now(key, tenant=tenant, user=user, context=context)
        return default if ev.variant is None else ev.variant

    # -- management (writes go to the store, then to every process) ----------------------

    async def get(self, key: str, tenant: str | None = None) -> dict[str, Any]:
        row = await self.store.get(tenant or "", key)
        if row is None:
            raise FlagNotFound(key)
        return {
            **row.definition,
            "tenant": row.tenant or None,
            "updated_at": row.updated_at.isoformat() if row.updated_at else None,
            "updated_by": row.updated_by,
        }

    async def list(self, tenant: str | None = None) -> list[dict[str, Any]]:
        _, rows = await self.store.load()
        chosen = [r for r in rows if tenant is None or r.tenant in ("", tenant)]
        return [
            {**r.definition, "tenant": r.tenant or None}
            for r in sorted(chosen, key=lambda r: (r.key, r.tenant))
        ]

    async def save(
        self,
        definition: FlagDefinition | Mapping[str, Any],
        *,
        tenant: str | None = None,
        actor: str = "api",
        create: bool = False,
    ) -> dict[str, Any]:
        """Create (``create=True``: 409 if it exists) or replace a flag."""
        d = _definition(definition)
        version = await self.store.put(tenant or "", d.key, d.public(), actor, create=create)
        await self._changed(version)
        return await self.get(d.key, tenant)

    async def update(
        self, key: str, changes: Mapping[str, Any], *, tenant: str | None = None, actor: str = "api"
    ) -> dict[str, Any]:
        """Merge ``changes`` into the stored definition; the result is validated."""
        row = await self.store.get(tenant or "", key)
        if row is None:
            raise FlagNotFound(key)
        merged = {**row.definition, **changes, "key": key}
        return await self.save(merged, tenant=tenant, actor=actor)

    async def delete(self, key: str, *, tenant: str | None = None, actor: str = "api") -> None:
        await self._changed(await self.store.delete(tenant or "", key, actor))

    async def audit(
        self, key: str | None = None, *, tenant: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        return [e.public() for e in await self.store.audit(tenant, key, limit)]

    async def _changed(self, version: int) -> None:
        await self.reload()
        if self.feed is not None:
            try:
                await self.feed.publish(version)
            except Exception as exc:  # the others will see it when they poll
                log.warning("flags change announcement failed (%s)", exc)

    # -- hub hooks ------------------------------------------------------------------------

    def install(self, app: Starlette) -> None:
        from headway.flags.web import MaintenanceMiddleware

        if not self._routes:
            from headway.flags.api import add_routes

            add_routes(self)
            self._routes = True
        if self.settings.maintenance_flag:
            app.add_middleware(MaintenanceMiddleware, flags=self)

    def register_metrics(self, registry: CollectorRegistry) -> None:
        from headway.flags.metrics import FlagMetrics

        self.exported = FlagMetrics(registry, self)
        if self._running:
            self.exported.totals.start()

    async def refresh_metrics(self) -> None:
        if self.exported is not None:
            self.exported.totals.flush()

    async def check_ready(self) -> Readiness | None:
        """The store's version (one round trip); never critical: the snapshot serves on."""
        from headway.observe.health import probe

        found: dict[str, Any] = {}

        async def version() -> None:
            found["version"] = await self.store.version()

        age = round(time.monotonic() - self.checked_at, 3)
        detail = {"snapshot": self.version, "flags": len(self.snapshot), "snapshot_age": age}
        ready = await probe(version, critical=False, detail=detail)
        return Readiness(ready.ok, {**ready.detail, **found}, critical=False)


def _evaluate(
    flag: CompiledFlag, tenant: str | None, user: str | None, context: Mapping[str, Any] | None
) -> Evaluation:
    """``flag.evaluate`` on the context plus ``tenant`` and ``user`` (which win)."""
    if flag.fixed is not None:
        return flag.fixed
    if flag.simple:  # a split: only the stickiness attribute matters
        attribute = flag.definition.stickiness
        if attribute == "user" and user is not None:
            return flag.split(user)
        if attribute == "tenant" and tenant is not None:
            return flag.split(tenant)
        return flag.split(context.get(attribute) if context else None)
    ctx: dict[str, Any] = dict(context) if context else {}
    if tenant is not None:
        ctx["tenant"] = tenant
    if user is not None:
        ctx["user"] = user
    return flag.evaluate(ctx)


def _definition(value: FlagDefinition | Mapping[str, Any]) -> FlagDefinition:
    if isinstance(value, FlagDefinition):
        return value
    return FlagDefinition.model_validate(dict(value))
