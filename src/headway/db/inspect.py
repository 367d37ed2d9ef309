"""What the database says about itself: table sizes, index usage, cache hit ratio."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["statistics"]

_PG_TABLES = """
SELECT t.schemaname, t.relname, t.n_live_tup, t.seq_scan, t.idx_scan,
       pg_total_relation_size(t.relid) AS total_bytes, pg_relation_size(t.relid) AS table_bytes
FROM pg_stat_user_tables t
WHERE t.schemaname = ANY (current_schemas(false))
ORDER BY total_bytes DESC LIMIT :limit
"""
_PG_INDEXES = """
SELECT i.schemaname, i.relname, i.indexrelname, i.idx_scan,
       pg_relation_size(i.indexrelid) AS bytes
FROM pg_stat_user_indexes i
WHERE i.schemaname = ANY (current_schemas(false))
ORDER BY i.idx_scan ASC, bytes DESC LIMIT :limit
"""
_PG_CACHE = """
SELECT blks_hit, blks_read, xact_commit, xact_rollback, deadlocks, temp_bytes,
       pg_database_size(current_database()) AS bytes
FROM pg_stat_database WHERE datname = current_database()
"""


def _ratio(hit: int, read: int) -> float | None:
    return round(hit / (hit + read), 4) if hit + read else None


async def statistics(engine: AsyncEngine, limit: int = 50) -> dict[str, Any]:
    if engine.dialect.name == "postgresql":
        return await _postgres(engine, limit)
    return await _sqlite(engine, limit)


async def _postgres(engine: AsyncEngine, limit: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        tables = (await conn.execute(text(_PG_TABLES), {"limit": limit})).mappings().all()
        indexes = (await conn.execute(text(_PG_INDEXES), {"limit": limit})).mappings().all()
        db = (await conn.execute(text(_PG_CACHE))).mappings().one()
        heap = (
            await conn.execute(
                text(
                    "SELECT coalesce(sum(heap_blks_hit),0), coalesce(sum(heap_blks_read),0) "
                    "FROM pg_statio_user_tables"
                )
            )
        ).one()
    return {
        "dialect": "postgresql",
        "database_bytes": db["bytes"],
        "cache_hit_ratio": _ratio(db["blks_hit"], db["blks_read"]),
        "table_cache_hit_ratio": _ratio(int(heap[0]), int(heap[1])),
        "transactions": {"commit": db["xact_commit"], "rollback": db["xact_rollback"]},
        "deadlocks": db["deadlocks"],
        "temp_bytes": db["temp_bytes"],
        "tables": [
            {
                "schema": r["schemaname"],
                "table": r["relname"],
                "rows": r["n_live_tup"],
                "seq_scans": r["seq_scan"],
                "index_scans": r["idx_scan"] or 0,
                "total_bytes": r["total_bytes"],
                "table_bytes": r["table_bytes"],
            }
            for r in tables
        ],
        "indexes": [
            {
                "schema": r["schemaname"],
                "table": r["relname"],
                "index": r["indexrelname"],
                "scans": r["idx_scan"],
                "bytes": r["bytes"],
                "unused": r["idx_scan"] == 0,
            }
            for r in indexes
        ],
    }


async def _sqlite(engine: AsyncEngine, limit: int) -> dict[str, Any]:
    async with engine.connect() as conn:

        async def scalar(sql: str) -> Any:
            return (await conn.execute(text(sql))).scalar()

        page_size, pages, free = (
            await scalar("PRAGMA page_size"),
            await scalar("PRAGMA page_count"),
            await scalar("PRAGMA freelist_count"),
        )
        objects = (
            await conn.execute(
                text(
                    "SELECT type, name, tbl_name FROM sqlite_master "
                    "WHERE type IN ('table','index') AND name NOT LIKE 'sqlite_%' "
                    "ORDER BY name LIMIT :limit"
                ),
                {"limit": limit * 4},
            )
        ).all()
        tables = []
        for _, name, _ in [o for o in objects if o[0] == "table"][:limit]:
            quoted = '"' + name.replace('"', '""') + '"'
            count = await scalar(f"SELECT count(*) FROM {quoted}")  # noqa: S608
            tables.append({"table": name, "rows": count})
        await conn.rollback()
    return {
        "dialect": "sqlite",
        "database_bytes": page_size * pages,
        "free_bytes": page_size * free,
        "page_size": page_size,
        "cache_hit_ratio": None,  # SQLite keeps no such counter
        "tables": tables,
        "indexes": [{"table": t, "index": n} for kind, n, t in objects if kind == "index"],
    }
