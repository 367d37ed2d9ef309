"""Admin endpoints under ``/admin/db`` (the hub's admin-auth'd router)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, StatementError

from headway.db.sqltext import UnsafeStatement
from headway.web.errors import HTTPError

if TYPE_CHECKING:
    from headway.db.core import Database

__all__ = ["ExplainRequest", "add_routes"]

Order = Literal["total", "count", "mean", "p95", "p99", "rows"]


class ExplainRequest(BaseModel):
    sql: str = Field(..., min_length=1, max_length=20_000, description="One SELECT.")
    analyze: bool = Field(False, description="EXPLAIN (ANALYZE, BUFFERS): runs the query.")


def add_routes(db: Database) -> None:
    router = db.hw.admin_router
    monitor = db.monitor

    @router.get("/db/metrics")
    async def db_metrics(
        limit: int = Query(50, ge=1, le=1000), order: Order = "total"
    ) -> dict[str, Any]:
        return {
            "summary": monitor.summary(),
            "fingerprints": monitor.top(limit, order),
            "n_plus_one": list(monitor.n_plus_one_log)[-limit:],
        }

    @router.get("/db/statistics")
    async def db_statistics() -> dict[str, Any]:
        return await db.statistics()

    @router.get("/db/slow")
    async def db_slow(limit: int = Query(100, ge=1, le=10_000)) -> dict[str, Any]:
        entries = list(monitor.slow_log)[-limit:]
        entries.reverse()
        return {"threshold_s": monitor.slow_threshold, "slow": entries}

    @router.post("/db/explain")
    async def db_explain(body: ExplainRequest) -> dict[str, Any]:
        try:
            plan = await db.explain(body.sql, analyze=body.analyze)
        except UnsafeStatement as exc:
            raise HTTPError(400, "bad_request", f"not explained: {exc}") from None
        except (DBAPIError, StatementError) as exc:
            message = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
            raise HTTPError(400, "bad_request", f"the database refused it: {message}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("asyncpg"):
                raise HTTPError(400, "bad_request", f"the database refused it: {exc}") from None
            raise
        return {"plan": plan}

    @router.get("/db/indexes")
    async def db_indexes() -> dict[str, Any]:
        return await db.index_advice()

    @router.delete("/db/stats")
    async def db_clear() -> dict[str, Any]:
        monitor.reset()
        return {"cleared": True}

    @router.get("/db/health")
    async def db_health() -> dict[str, Any]:
        return await db.health()
