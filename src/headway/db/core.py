"""``hw.db``: the query monitor, read-replica sessions, and the database's own statistics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from headway.capability import Capability, Readiness
from headway.db.monitor import QueryMonitor, Scope, current_scope
from headway.db.replicas import ReplicaRouter
from headway.db.settings import DbSettings
from headway.settings import load_section, mask_url

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from starlette.applications import Starlette

    from headway.db.metrics import DbMonitorMetrics
    from headway.hub import Headway

__all__ = ["Database"]

log = logging.getLogger("headway.db")


class Database(Capability):
    """Query monitor (fingerprints, slow log, N+1), replicas, statistics and index advice."""

    name = "db"

    def __init__(self, hw: Headway, settings: DbSettings | None = None) -> None:
        super().__init__(hw)
        self.settings = settings or load_section(DbSettings)
        self.monitor = QueryMonitor(self.settings)
        self.router = ReplicaRouter(self.settings.replica_urls, self.settings.replica_retry)
        # the flag capability is created now: capabilities cannot be added once running
        self._flags: Any = (
            hw.flags if self.settings.replica_urls and self.settings.replica_flag else None
        )
        self.metrics: DbMonitorMetrics | None = None
        self._installed = False

    # -- engines and sessions -------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        """The primary: the hub's shared engine."""
        return self.hw.connections.engine()

    def replica_engine(self, url: str) -> AsyncEngine:
        engine = self.hw.connections.engine(url)
        if self.settings.monitor:
            self.monitor.attach(engine)
        return engine

    def attach(self) -> None:
        """Monitor the primary and every replica engine (idempotent; done by start)."""
        if self.settings.monitor:
            self.monitor.attach(self.engine)
            for url in self.router.urls:
                self.replica_engine(url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session on the primary."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            session.info["headway_target"] = "primary"
            yield session

    async def replicas_enabled(self) -> bool:
        if not self.router.urls:
            return False
        if self._flags is None:
            return True
        try:
            return bool(await self._flags.is_enabled(self.settings.replica_flag, default=True))
        except Exception:  # the flag store is down: keep reading from replicas
            log.warning("cannot read flag %r; replicas stay on", self.settings.replica_flag)
            return True

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads: a healthy replica in turn, else the primary.

        The primary is used when no replica is configured or healthy, when the
        ``use-read-replicas`` flag is off, and after a write in the same request or job
        (read-your-writes).
        """
        session, target = await self._read_target()
        async with session:
            session.info["headway_target"] = target
            yield session

    async def _read_target(self) -> tuple[AsyncSession, str]:
        scope = current_scope()
        if scope is not None and scope.wrote:
            return AsyncSession(self.engine, expire_on_commit=False), "primary"
        if not await self.replicas_enabled():
            return AsyncSession(self.engine, expire_on_commit=False), "primary"
        for url in self.router.order():
            session = AsyncSession(self.replica_engine(url), expire_on_commit=False)
            try:
                await session.connection()
            except Exception as exc:
                await session.close()
                self.router.mark_down(url)
                log.warning("replica %s skipped: %s", mask_url(url), type(exc).__name__)
                continue
            self.router.reads[url] += 1
            return session, f"replica:{self.router.urls.index(url)}"
        return AsyncSession(self.engine, expire_on_commit=False), "primary"

    @contextmanager
    def scope(self, name: str) -> Iterator[Scope]:
        """Count the block's statements as one request/job (N+1, read-your-writes)."""
        with self.monitor.scope(name) as scope:
            yield scope

    # -- reading --------------------------------------------------------------------------

    async def statistics(self) -> dict[str, Any]:
        from headway.db.inspect import statistics

        return await statistics(self.engine)

    async def explain(self, sql: str, *, analyze: bool = False) -> Any:
        from headway.db.explain import explain_select

        return await explain_select(self.engine, sql, analyze=analyze)

    async def index_advice(self) -> dict[str, Any]:
        from headway.db.advice import index_advice

        return await index_advice(self.engine, self.monitor, min_rows=self.settings.index_min_rows)

    async def ping(self, engine: AsyncEngine | None = None) -> float:
        """Milliseconds of a ``SELECT 1`` round trip."""
        start = time.perf_counter()
        async with (engine or self.engine).connect() as conn:
            await conn.execute(text("SELECT 1"))
        return round((time.perf_counter() - start) * 1000, 3)

    async def health(self) -> dict[str, Any]:
        from headway.observe.db import pool_stats

        out: dict[str, Any] = {"primary": await self._probe(self.engine), "replicas": []}
        out["primary"]["pool"] = pool_stats(self.engine)
        for url, status in zip(self.router.urls, self.router.status(), strict=True):
            probe = await self._probe(self.replica_engine(url))
            if probe["ok"]:
                self.router.mark_up(url)
            else:
                self.router.mark_down(url)
            out["replicas"].append({**status, **probe, "healthy": probe["ok"]})
        out["ok"] = out["primary"]["ok"]
        out["replicas_enabled"] = await self.replicas_enabled()
        return out

    async def _probe(self, engine: AsyncEngine) -> dict[str, Any]:
        try:
            return {"ok": True, "latency_ms": await self.ping(engine)}
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}"}

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.attach()

    async def stop(self) -> None:
        await self.monitor.drain()
        self.monitor.detach()

    def install(self, app: Starlette) -> None:
        from headway.db.api import add_routes
        from headway.db.middleware import ScopeMiddleware

        if not self._installed:
            add_routes(self)
            self._installed = True
        app.add_middleware(ScopeMiddleware)

    # -- observability --------------------------------------------------------------------

    def register_metrics(self, registry: CollectorRegistry) -> None:
        from headway.db.metrics import DbMonitorMetrics

        self.metrics = DbMonitorMetrics(registry)
        self.monitor.bind_metrics(self.metrics)

    async def refresh_metrics(self) -> None:
        if self.metrics is not None:
            self.metrics.fingerprints.set(len(self.monitor.stats))
            self.metrics.replicas_healthy.set(sum(map(self.router.healthy, self.router.urls)))

    async def check_ready(self) -> Readiness:
        from headway.observe.db import pool_stats

        latency = await self.ping()
        pool = pool_stats(self.engine)
        limit = self.hw.settings.pool_max
        detail = {
            "latency_ms": latency,
            "pool": pool,
            "pool_saturated": pool["active"] >= limit,
            "replicas_healthy": sum(map(self.router.healthy, self.router.urls)),
            "replicas": len(self.router.urls),
        }
        return Readiness(ok=True, detail=detail)
