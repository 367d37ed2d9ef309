"""EXPLAIN: of a captured statement (its own parameters) and of a SELECT sent by an admin.

Every plan runs in a read-only transaction with a statement timeout: even a SELECT that
calls a writing function cannot change anything, and ANALYZE cannot run for long.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from headway.db.sqltext import check_single_select

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["explain_raw", "explain_select"]

TIMEOUT_MS = 10_000


def _options(analyze: bool, verbose: bool = False) -> str:
    opts = ["FORMAT JSON"]
    if analyze:
        opts[:0] = ["ANALYZE", "BUFFERS"]
    if verbose:
        opts.append("VERBOSE")
    return ", ".join(opts)


async def explain_raw(
    engine: AsyncEngine, statement: str, params: Any, *, analyze: bool = False,
    verbose: bool = False,
) -> Any:  # fmt: skip
    """The JSON plan of a statement as the driver received it (PostgreSQL + asyncpg)."""
    args = list(params) if isinstance(params, list | tuple) else []
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        async with driver.transaction(readonly=True):
            await driver.execute(f"SET LOCAL statement_timeout = {TIMEOUT_MS}")
            value = await driver.fetchval(
                f"EXPLAIN ({_options(analyze, verbose)}) {statement}", *args
            )
    return json.loads(value) if isinstance(value, str) else value


async def explain_select(engine: AsyncEngine, sql: str, *, analyze: bool = False) -> Any:
    """The plan of an admin's SELECT (raises UnsafeStatement for anything else)."""
    sql = check_single_select(sql)
    if engine.dialect.name == "postgresql":
        return await explain_raw(engine, sql, (), analyze=analyze)
    async with engine.connect() as conn:
        rows = (await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()
        await conn.rollback()
    return [{"id": r[0], "parent": r[1], "detail": r[-1]} for r in rows]
