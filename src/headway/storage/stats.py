"""Per-tenant totals (files, bytes, per category) in the hub's SQL database.

Why SQL and not a JSON object in the store: an upload in any process or machine adds
``files + 1, bytes + n`` with one atomic ``INSERT ... ON CONFLICT DO UPDATE``; a JSON
object in S3 would be a read-modify-write that concurrent uploads overwrite. The totals
are derived data: :meth:`StorageStats.recount` rebuilds them from a listing of the
store (after a migration, an outage between the write and the count, or presigned PUTs
that bypass headway).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

TABLE = "headway_storage_stats"
_CREATE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    tenant VARCHAR(64) NOT NULL,
    category VARCHAR(64) NOT NULL,
    files BIGINT NOT NULL DEFAULT 0,
    bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, category))"""
_ADD = text(
    "INSERT INTO headway_storage_stats (tenant, category, files, bytes) "
    "VALUES (:t, :c, :f, :b) ON CONFLICT (tenant, category) DO UPDATE SET "
    "files = headway_storage_stats.files + excluded.files, "
    "bytes = headway_storage_stats.bytes + excluded.bytes"
)
_SELECT = "SELECT tenant, category, files, bytes FROM headway_storage_stats"
_DELETE = "DELETE FROM headway_storage_stats"


class StorageStats:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(_CREATE))

    async def add(self, tenant: str, category: str, files: int, nbytes: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_ADD, {"t": tenant, "c": category, "f": files, "b": nbytes})

    async def get(self, tenant: str | None = None) -> dict[str, dict[str, Any]]:
        """``{tenant: {"files", "bytes", "categories": {category: {"files", "bytes"}}}}``."""
        sql = _SELECT
        params: dict[str, str] = {}
        if tenant is not None:
            sql += " WHERE tenant = :t"
            params["t"] = tenant
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(sql + " ORDER BY tenant, category"), params)).all()
        return fold(rows)

    async def replace(self, tenant: str | None, rows: Iterable[tuple[str, str, int, int]]) -> None:
        """Swap the totals of ``tenant`` (None: every tenant) for ``rows``, in one transaction."""
        async with self.engine.begin() as conn:
            if tenant is None:
                await conn.execute(text(_DELETE))
            else:
                await conn.execute(text(_DELETE + " WHERE tenant = :t"), {"t": tenant})
            values = [{"t": t, "c": c, "f": f, "b": b} for t, c, f, b in rows]
            if values:
                await conn.execute(_ADD, values)


def fold(rows: Iterable[Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for tenant, category, files, nbytes in rows:
        if files <= 0 and nbytes <= 0:
            continue
        entry = out.setdefault(tenant, {"files": 0, "bytes": 0, "categories": {}})
        entry["files"] += files
        entry["bytes"] += nbytes
        entry["categories"][category] = {"files": files, "bytes": nbytes}
    return out
