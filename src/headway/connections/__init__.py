"""Shared connections: one Redis pool and one SQLAlchemy async engine per URL.

Every capability asks the hub's :class:`Connections` for its client instead of opening
its own, so a process holds one pool per server whatever it runs. The hub opens them
lazily and closes them all in its lifespan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headway import registry
from headway.constants import REDIS_SCHEMES
from headway.settings import Settings, mask_url

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

registry.register("connection", "sqlite", "headway.connections.sql:make_engine")
registry.register(
    "connection", "postgresql", "headway.connections.postgres:make_engine", extra="postgres"
)
registry.register(
    "connection", "postgres", "headway.connections.postgres:make_engine", extra="postgres"
)
for _scheme in REDIS_SCHEMES:
    registry.register("connection", _scheme, "headway.connections.redis:make_client", extra="redis")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one backend check (``headway check``, readiness)."""

    name: str
    url: str
    ok: bool
    latency_ms: float
    error: str | None = None


class Connections:
    """Opens each backend URL once and hands out the shared client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engines: dict[str, AsyncEngine] = {}
        self._redis: dict[str, Redis] = {}

    def engine(self, url: str | None = None) -> AsyncEngine:
        """The shared SQLAlchemy async engine for ``url`` (default: the database URL)."""
        url = url or self.settings.sql_url
        if url not in self._engines:
            factory: Any = registry.resolve_callable("connection", url)
            self._engines[url] = factory(url, self.settings)
        return self._engines[url]

    def redis(self, url: str | None = None) -> Redis:
        """The shared Redis client (one connection pool) for ``url``."""
        url = url or self.settings.redis_url
        if not url:
            raise LookupError("no Redis configured: set HEADWAY_REDIS_URL")
        if url not in self._redis:
            factory: Any = registry.resolve_callable("connection", url)
            self._redis[url] = factory(url, self.settings)
        return self._redis[url]

    async def close(self) -> None:
        """Close every pool opened so far."""
        redis_clients, engines = list(self._redis.values()), list(self._engines.values())
        self._redis.clear()
        self._engines.clear()
        for client in redis_clients:
            await client.aclose()
        for engine in engines:
            await engine.dispose()

    async def check_sql(self, url: str | None = None) -> CheckResult:
        from sqlalchemy import text

        url = url or self.settings.sql_url
        start = time.perf_counter()
        try:
            async with self.engine(url).connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # a check reports every failure, it never raises
            return _failed("database", url, start, exc)
        return CheckResult("database", mask_url(url), True, _ms(start))

    async def check_redis(self, url: str | None = None) -> CheckResult:
        url = url or self.settings.redis_url or ""
        start = time.perf_counter()
        try:
            await self.redis(url).ping()
        except Exception as exc:
            return _failed("redis", url, start, exc)
        return CheckResult("redis", mask_url(url), True, _ms(start))

    async def check_all(self) -> list[CheckResult]:
        """Check the database and every Redis URL any capability is configured with."""
        results = [await self.check_sql()]
        redis_urls = {self.settings.redis_url} if self.settings.redis_url else set()
        for capability in ("jobs", "cache", "limits", "resilience", "flags", "events"):
            url = self.settings.backend_url(capability)
            if registry.scheme_of(url) in REDIS_SCHEMES:
                redis_urls.add(url)
        for url in sorted(u for u in redis_urls if u):
            results.append(await self.check_redis(url))
        return results


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def _failed(name: str, url: str, start: float, exc: BaseException) -> CheckResult:
    # str(exc) of a driver error can quote the URL: mask before reporting it.
    message = f"{type(exc).__name__}: {exc}".replace(url, mask_url(url))
    return CheckResult(name, mask_url(url), False, _ms(start), message[:300])


__all__ = ["CheckResult", "Connections"]
