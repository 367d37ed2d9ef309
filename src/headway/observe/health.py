"""Readiness: the database, every Redis in use, and each capability's own check.

Checks run concurrently, each bounded by ``HEADWAY_OBSERVE_CHECK_TIMEOUT``; each reports
its latency. Overall status: ``ok``; ``degraded`` when only non-critical checks fail;
``down`` when a critical one fails (answered with HTTP 503).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from headway import registry
from headway.capability import Readiness
from headway.settings import CAPABILITY_URLS

if TYPE_CHECKING:
    from headway.hub import Headway

__all__ = ["CheckReport", "ReadyReport", "probe", "run_checks"]

log = logging.getLogger("headway.observe")
_REDIS_SCHEMES = ("redis", "rediss", "unix")
# The seconds the running check may take (set by _run for each check's own task).
_BUDGET: contextvars.ContextVar[float] = contextvars.ContextVar("headway_check_budget", default=2.0)


@dataclass(frozen=True, slots=True)
class CheckReport:
    name: str
    ok: bool
    latency_ms: float
    critical: bool = True
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ReadyReport:
    status: str  # ok | degraded | down
    uptime_seconds: float
    checks: list[CheckReport]
    database_pool: dict[str, int] | None

    def public(self) -> dict[str, Any]:
        return {"status": self.status}

    def detail(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "uptime_seconds": round(self.uptime_seconds, 3),
            "checks": {
                c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in self.checks
            },
            "database_pool": self.database_pool,
        }


Check = Callable[[], Awaitable[Readiness | None]]


def checks_of(hw: Headway) -> dict[str, Check]:
    """Every check of the hub: database, each Redis URL in use, each capability's hook."""
    conns = hw.connections
    checks: dict[str, Check] = {}

    async def database() -> Readiness:
        result = await conns.check_sql()
        return Readiness(result.ok, {"url": result.url, "error": result.error})

    checks["database"] = database
    for i, url in enumerate(redis_urls(hw)):

        async def redis_check(url: str = url) -> Readiness:
            result = await conns.check_redis(url)
            return Readiness(result.ok, {"url": result.url, "error": result.error})

        checks["redis" if i == 0 else f"redis{i + 1}"] = redis_check
    for name, capability in hw.capabilities.items():
        checks[name] = capability.check_ready
    return checks


def redis_urls(hw: Headway) -> list[str]:
    settings = hw.settings
    urls = {settings.redis_url} if settings.redis_url else set()
    for capability in CAPABILITY_URLS:
        url = settings.backend_url(capability)
        if registry.scheme_of(url) in _REDIS_SCHEMES:
            urls.add(url)
    return sorted(u for u in urls if u)


async def run_checks(checks: dict[str, Check], seconds: float) -> list[CheckReport]:
    """Run ``checks`` concurrently, each bounded by ``seconds``."""
    reports = await asyncio.gather(*(_run(name, fn, seconds) for name, fn in checks.items()))
    return [r for r in reports if r is not None]


async def probe(
    call: Callable[[], Awaitable[object]],
    *,
    critical: bool,
    detail: Mapping[str, Any] | None = None,
) -> Readiness:
    """Readiness from one round trip ``call()`` (a ping), for a ``check_ready`` hook.

    A failure or a timeout answers ``ok=False`` with the given ``critical``: an exception
    escaping ``check_ready`` (or the check's timeout) would count as critical. The call
    gets 80% of the check's time budget, so that it times out first.
    """
    facts = dict(detail or {})
    try:
        async with asyncio.timeout(_BUDGET.get() * 0.8):
            await call()
    except TimeoutError:
        facts["error"] = f"timed out after {_BUDGET.get() * 0.8:g}s"
        return Readiness(False, facts, critical)
    except Exception as exc:
        facts["error"] = f"{type(exc).__name__}: {exc}"[:300]
        return Readiness(False, facts, critical)
    return Readiness(True, facts, critical)


async def _run(name: str, fn: Check, seconds: float) -> CheckReport | None:
    start = time.perf_counter()
    _BUDGET.set(seconds)  # this check's own task (gather): seen by probe() only here
    try:
        async with asyncio.timeout(seconds):
            result = await fn()
    except TimeoutError:
        return CheckReport(name, False, _ms(start), error=f"timed out after {seconds:g}s")
    except Exception as exc:  # a check reports, it never raises
        log.warning("readiness check %s failed: %s", name, exc)
        return CheckReport(name, False, _ms(start), error=f"{type(exc).__name__}: {exc}"[:300])
    if result is None:
        return None
    detail = dict(result.detail)
    error = detail.pop("error", None) if not result.ok else None
    detail.pop("error", None)
    return CheckReport(name, result.ok, _ms(start), result.critical, detail, error)


def overall(reports: list[CheckReport]) -> str:
    if any(not r.ok and r.critical for r in reports):
        return "down"
    if any(not r.ok for r in reports):
        return "degraded"
    return "ok"


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
