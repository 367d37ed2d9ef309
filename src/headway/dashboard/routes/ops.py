"""Cache (stats, clear a namespace or a tenant), rate limits, storage usage, database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from headway.dashboard.core import PREFIX
from headway.dashboard.routes import page
from headway.dashboard.security import Session

if TYPE_CHECKING:
    from headway.dashboard.core import Dashboard

TENANTS_SHOWN = 200
DB_ROWS = 25


def add(d: Dashboard) -> None:
    if d.has("cache"):
        add_cache(d)
    if d.has("limits"):
        add_limits(d)
    if d.has("storage"):
        add_storage(d)
    if d.has("db"):
        add_database(d)


def add_cache(d: Dashboard) -> None:
    @page(d, "/cache")
    async def cache(request: Request, session: Session) -> Response:
        stats = d.hw.cache.stats()
        return d.render(request, session, "cache.html", stats=stats)

    async def clear_namespace(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        namespace = form.get("namespace", "").strip()
        if not namespace or "*" in namespace or ":" in namespace:
            raise ValueError("give a namespace: the part of keys before the first ':'")
        tenant = form.get("tenant", "").strip() or None
        n = await d.hw.cache.invalidate_pattern(f"{namespace}:*", tenant=tenant)
        whose = f"tenant {tenant}" if tenant else "the shared (no tenant) space"
        return f"Cleared {n} key(s) of namespace {namespace} in {whose}.", PREFIX + "/cache"

    async def clear_tenant(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        tenant = form.get("tenant", "").strip()
        if not tenant:
            raise ValueError("give a tenant")
        n = await d.hw.cache.invalidate_tenant(tenant)
        return f"Cleared {n} key(s) of tenant {tenant}.", PREFIX + "/cache"

    d.action("cache_clear_namespace", "/cache/clear-namespace", clear_namespace)
    d.action("cache_clear_tenant", "/cache/clear-tenant", clear_tenant)


def add_limits(d: Dashboard) -> None:
    @page(d, "/limits")
    async def limits(request: Request, session: Session) -> Response:
        info: dict[str, Any] = d.hw.limits.describe()
        return d.render(request, session, "limits.html", info=info)


def add_storage(d: Dashboard) -> None:
    @page(d, "/storage")
    async def storage(request: Request, session: Session) -> Response:
        stats = await d.hw.storage.stats()
        rows = sorted(stats.items(), key=lambda kv: -int(kv[1].get("bytes", 0)))
        total = {
            "files": sum(int(v.get("files", 0)) for v in stats.values()),
            "bytes": sum(int(v.get("bytes", 0)) for v in stats.values()),
        }
        return d.render(
            request, session, "storage.html", rows=rows[:TENANTS_SHOWN], total=total,
            tenants=len(rows), shown=TENANTS_SHOWN,
        )  # fmt: skip


def add_database(d: Dashboard) -> None:
    @page(d, "/database")
    async def database(request: Request, session: Session) -> Response:
        monitor = d.hw.db.monitor
        slow = list(monitor.slow_log)[-DB_ROWS:]
        slow.reverse()
        n1 = list(monitor.n_plus_one_log)[-DB_ROWS:]
        n1.reverse()
        try:
            advice: dict[str, Any] = await d.hw.db.index_advice()
        except Exception as exc:  # advice is best effort: say why it is missing
            advice = {"source": None, "suggestions": [], "note": f"unavailable: {exc}"}
        return d.render(
            request, session, "database.html", summary=monitor.summary(),
            top=monitor.top(DB_ROWS, "total"), slow=slow, n1=n1, advice=advice,
        )  # fmt: skip
