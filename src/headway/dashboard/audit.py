"""The dashboard's audit log: every action (and login) as a row of the hub's database.

Table ``headway_dashboard_audit`` (created on first use): when, who (the credential that
logged in and the client address), what (an action name), on what, and a small JSON
detail. The time comes from the database (``now()``), so that several processes agree.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
)

from headway.connections.sql import create_tables

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

metadata = MetaData()
audit_table = Table(
    "headway_dashboard_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", String(200), nullable=False),
    Column("address", String(100), nullable=False, default=""),
    Column("action", String(100), nullable=False, index=True),
    Column("target", String(500), nullable=False, default=""),
    Column("detail", Text),
)


class AuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._ready = False
        self._lock = asyncio.Lock()

    async def _setup(self) -> None:
        if self._ready:
            return
        async with self._lock:
            await create_tables(self.engine, metadata)
            self._ready = True

    async def record(
        self,
        actor: str,
        action: str,
        target: str = "",
        detail: dict[str, Any] | None = None,
        address: str = "",
    ) -> None:
        await self._setup()
        row = {
            "actor": actor[:200],
            "address": address[:100],
            "action": action[:100],
            "target": target[:500],
            "detail": None if detail is None else orjson.dumps(detail).decode(),
        }
        async with self.engine.begin() as conn:
            await conn.execute(insert(audit_table).values(**row))

    async def recent(self, limit: int = 200, action: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        await self._setup()
        query = select(audit_table).order_by(audit_table.c.id.desc()).limit(limit)
        if action:
            query = query.where(audit_table.c.action == action)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_entry(dict(r)) for r in rows]


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    at = row["at"]
    row["at"] = at.isoformat(sep=" ", timespec="seconds") if isinstance(at, datetime) else at
    row["detail"] = orjson.loads(row["detail"]) if row["detail"] else None
    return row
