"""SQLite and PostgreSQL: flags in the application's database (the hub's shared engine).

Three tables: ``headway_flags`` (one row per tenant and key, the definition as JSON),
``headway_flag_audit`` (every change: who, when by the database's ``now()``, before,
after) and ``headway_flag_version`` (one row, incremented by every write in the same
transaction: the value every process polls).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from headway.connections.sql import create_tables
from headway.flags.base import AuditEntry, FlagExists, FlagNotFound, FlagStore, StoredFlag

if TYPE_CHECKING:
    from headway.connections import Connections

metadata = MetaData()
flags_table = Table(
    "headway_flags",
    metadata,
    Column("tenant", String(200), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("definition", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", String(200), nullable=False, default=""),
)
audit_table = Table(
    "headway_flag_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", String(200), nullable=False),
    Column("tenant", String(200), nullable=False),
    Column("key", String(128), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("before", Text),
    Column("after", Text),
)
version_table = Table(
    "headway_flag_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _parse(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(orjson.loads(text))


class SqlFlagStore(FlagStore):
    def __init__(self, url: str, connections: Connections | None = None) -> None:
        super().__init__(url, connections)
        if connections is None:
            raise ValueError("the SQL flag store needs the hub's connections")
        self.engine: AsyncEngine = connections.engine(url)

    async def setup(self) -> None:
        await create_tables(self.engine, metadata)
        for attempt in (1, 2, 3):  # processes inserting the version row at once
            try:
                async with self.engine.begin() as conn:
                    row = await conn.execute(select(version_table.c.version))
                    if row.first() is None:
                        await conn.execute(insert(version_table).values(id=1, version=0))
                return
            except (IntegrityError, DBAPIError):  # a rival inserted it first: read again
                if attempt == 3:
                    raise
                await asyncio.sleep(0.05 * attempt)

    async def version(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(version_table.c.version))).scalar_one())

    async def load(self) -> tuple[int, list[StoredFlag]]:
        async with self.engine.begin() as conn:
            version = (await conn.execute(select(version_table.c.version))).scalar_one()
            rows = (await conn.execute(select(flags_table))).all()
        return int(version), [_stored(r) for r in rows]

    async def get(self, tenant: str, key: str) -> StoredFlag | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(_where(select(flags_table), tenant, key))).first()
        return None if row is None else _stored(row)

    async def _bump(
        self,
        conn: AsyncConnection,
        actor: str,
        tenant: str,
        key: str,
        action: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> int:
        await conn.execute(
            insert(audit_table).values(
                actor=actor,
                tenant=tenant,
                key=key,
                action=action,
                before=_json(before),
                after=_json(after),
            )
        )
        bump = update(version_table).values(version=version_table.c.version + 1)
        await conn.execute(bump.where(version_table.c.id == 1))
        return int((await conn.execute(select(version_table.c.version))).scalar_one())

    async def put(
        self, tenant: str, key: str, definition: dict[str, Any], actor: str, *, create: bool
    ) -> int:
        async with self.engine.begin() as conn:
            row = (await conn.execute(_where(select(flags_table), tenant, key))).first()
            values = {"definition": _json(definition), "updated_by": actor}
            if row is not None and create:
                raise FlagExists(key)
            if row is None:
                stmt: Any = insert(flags_table).values(tenant=tenant, key=key, **values)
            else:
                stmt = _where(update(flags_table), tenant, key).values(
                    **values, updated_at=func.now()
                )
            await conn.execute(stmt)
            before = None if row is None else _parse(row.definition)
            action = "create" if row is None else "update"
            return await self._bump(conn, actor, tenant, key, action, before, definition)

    async def delete(self, tenant: str, key: str, actor: str) -> int:
        async with self.engine.begin() as conn:
            row = (await conn.execute(_where(select(flags_table), tenant, key))).first()
            if row is None:
                raise FlagNotFound(key)
            await conn.execute(_where(delete(flags_table), tenant, key))
            before = _parse(row.definition)
            return await self._bump(conn, actor, tenant, key, "delete", before, None)

    async def audit(
        self, tenant: str | None = None, key: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        query = select(audit_table).order_by(audit_table.c.id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(audit_table.c.tenant == tenant)
        if key is not None:
            query = query.where(audit_table.c.key == key)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            AuditEntry(
                r.id,
                _aware(r.at),
                r.actor,
                r.tenant,
                r.key,
                r.action,
                _parse(r.before),
                _parse(r.after),
            )
            for r in rows
        ]


def _where(stmt: Any, tenant: str, key: str) -> Any:
    return stmt.where(flags_table.c.tenant == tenant, flags_table.c.key == key)


def _aware(at: datetime | None) -> datetime | None:
    from datetime import UTC

    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _stored(row: Any) -> StoredFlag:
    return StoredFlag(
        row.tenant, row.key, _parse(row.definition) or {}, _aware(row.updated_at), row.updated_by
    )
