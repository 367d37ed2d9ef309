"""Endpoints, messages and the delivery log in the hub's SQL database (SQLite or PostgreSQL).

Every query that reads or changes an endpoint filters on its tenant: an id of another
tenant finds nothing. Times are UNIX seconds (floats) so that ranges (replay, retention)
compare the same way on every database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from headway.connections.sql import create_tables
from headway.webhooks.models import Delivery, Endpoint, Message

metadata = MetaData()
endpoints = Table(
    "headway_webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(200), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("event_types", Text, nullable=False),
    Column("owner", String(200)),
    Column("secret", String(200), nullable=False),
    Column("previous_secret", String(200)),
    Column("previous_expires", Float),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("disabled_reason", String(200)),
    Column("failures", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
messages = Table(
    "headway_webhook_messages",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(200), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_headway_webhook_messages_tenant_at", "tenant", "created_at"),
)
deliveries = Table(
    "headway_webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(200), nullable=False),
    Column("endpoint_id", String(40), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Float, nullable=False),
    Column("response", Text, nullable=False, default=""),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Index("ix_headway_webhook_deliveries_ep", "endpoint_id", "id"),
    Index("ix_headway_webhook_deliveries_at", "created_at"),
)


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id, tenant=row.tenant, url=row.url, description=row.description,
        event_types=list(orjson.loads(row.event_types)), owner=row.owner,
        disabled=bool(row.disabled), disabled_reason=row.disabled_reason,
        failures=int(row.failures), created_at=float(row.created_at),
        updated_at=float(row.updated_at), secret=row.secret,
        previous_secret=row.previous_secret, previous_expires=row.previous_expires,
    )  # fmt: skip


def _delivery(row: Any) -> Delivery:
    return Delivery(
        row.id, row.endpoint_id, row.message_id, row.event_type, row.attempt, row.outcome,
        row.status_code, float(row.latency_ms), row.response, row.error, float(row.created_at),
    )  # fmt: skip


def _message(row: Any) -> Message:
    return Message(row.id, row.tenant, row.event_type, row.payload.encode(), row.created_at)


class WebhookStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self) -> None:
        await create_tables(self.engine, metadata)

    # -- endpoints ----------------------------------------------------------------------

    async def add_endpoint(self, values: dict[str, Any], limit: int) -> bool:
        """Insert unless the tenant already has ``limit`` endpoints; False when full."""
        async with self.engine.begin() as conn:
            count = await conn.scalar(
                select(func.count()).where(endpoints.c.tenant == values["tenant"])
            )
            if (count or 0) >= limit:
                return False
            await conn.execute(insert(endpoints).values(**values))
        return True

    async def get_endpoint(self, tenant: str, endpoint_id: str) -> Endpoint | None:
        where = and_(endpoints.c.tenant == tenant, endpoints.c.id == endpoint_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(endpoints).where(where))).first()
        return None if row is None else _endpoint(row)

    async def list_endpoints(self, tenant: str, *, enabled_only: bool = False) -> list[Endpoint]:
        stmt = select(endpoints).where(endpoints.c.tenant == tenant)
        if enabled_only:
            stmt = stmt.where(endpoints.c.disabled.is_(False))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt.order_by(endpoints.c.created_at, endpoints.c.id))).all()
        return [_endpoint(r) for r in rows]

    async def update_endpoint(self, tenant: str, endpoint_id: str, values: dict[str, Any]) -> bool:
        where = and_(endpoints.c.tenant == tenant, endpoints.c.id == endpoint_id)
        async with self.engine.begin() as conn:
            result = await conn.execute(update(endpoints).where(where).values(**values))
        return bool(result.rowcount)

    async def delete_endpoint(self, tenant: str, endpoint_id: str) -> bool:
        where = and_(endpoints.c.tenant == tenant, endpoints.c.id == endpoint_id)
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(endpoints).where(where))
            if result.rowcount:
                gone = deliveries.c.endpoint_id == endpoint_id
                await conn.execute(delete(deliveries).where(gone))
        return bool(result.rowcount)

    async def record_failure(self, endpoint_id: str, now: float) -> int:
        """Count one more consecutive failure; the new count (0 if the endpoint is gone)."""
        stmt = (
            update(endpoints)
            .where(endpoints.c.id == endpoint_id)
            .values(failures=endpoints.c.failures + 1, updated_at=now)
            .returning(endpoints.c.failures)
        )
        async with self.engine.begin() as conn:
            value = (await conn.execute(stmt)).scalar()
        return int(value or 0)

    async def record_success(self, endpoint_id: str) -> None:
        stmt = (
            update(endpoints)
            .where(endpoints.c.id == endpoint_id, endpoints.c.failures != 0)
            .values(failures=0)
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """Disable an enabled endpoint; True only for the call that disabled it."""
        stmt = (
            update(endpoints)
            .where(endpoints.c.id == endpoint_id, endpoints.c.disabled.is_(False))
            .values(disabled=True, disabled_reason=reason, updated_at=now)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def count_endpoints(self) -> dict[str, int]:
        stmt = select(endpoints.c.disabled, func.count()).group_by(endpoints.c.disabled)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        counts = {"enabled": 0, "disabled": 0}
        for disabled, count in rows:
            counts["disabled" if disabled else "enabled"] += int(count)
        return counts

    # -- messages -----------------------------------------------------------------------

    async def add_message(self, message: Message) -> bool:
        """Insert; False when a message with this id exists (an idempotent resend)."""
        values = {
            "id": message.id, "tenant": message.tenant, "event_type": message.event_type,
            "payload": message.payload.decode(), "created_at": message.created_at,
        }  # fmt: skip
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(messages).values(**values))
        except IntegrityError:
            return False
        return True

    async def get_message(self, tenant: str, message_id: str) -> Message | None:
        where = and_(messages.c.tenant == tenant, messages.c.id == message_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(messages).where(where))).first()
        return None if row is None else _message(row)

    async def messages_between(
        self, tenant: str, since: float, until: float, limit: int
    ) -> list[Message]:
        stmt = (
            select(messages)
            .where(messages.c.tenant == tenant)
            .where(messages.c.created_at >= since, messages.c.created_at < until)
            .order_by(messages.c.created_at, messages.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_message(r) for r in rows]

    # -- delivery log -------------------------------------------------------------------

    async def log(self, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            async with self.engine.begin() as conn:
                await conn.execute(insert(deliveries), [{"tenant": tenant, **r} for r in rows])

    async def deliveries(
        self, tenant: str, endpoint_id: str, *, limit: int = 50, before: int | None = None,
        message_id: str | None = None,
    ) -> list[Delivery]:  # fmt: skip
        stmt = select(deliveries).where(
            deliveries.c.tenant == tenant, deliveries.c.endpoint_id == endpoint_id
        )
        if before is not None:
            stmt = stmt.where(deliveries.c.id < before)
        if message_id is not None:
            stmt = stmt.where(deliveries.c.message_id == message_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt.order_by(deliveries.c.id.desc()).limit(limit))).all()
        return [_delivery(r) for r in rows]

    async def prune(self, older_than: float, keep: int) -> int:
        """Drop log rows and messages older than ``older_than``, and log rows beyond ``keep``
        per endpoint; the number of rows removed."""
        removed = 0
        async with self.engine.begin() as conn:
            for table in (deliveries, messages):
                result = await conn.execute(delete(table).where(table.c.created_at < older_than))
                removed += result.rowcount or 0
            ids = select(deliveries.c.endpoint_id).distinct()
            for (endpoint_id,) in (await conn.execute(ids)).all():
                removed += await self._trim(conn, endpoint_id, keep)
        return removed

    @staticmethod
    async def _trim(conn: Any, endpoint_id: str, keep: int) -> int:
        cutoff = await conn.scalar(
            select(deliveries.c.id)
            .where(deliveries.c.endpoint_id == endpoint_id)
            .order_by(deliveries.c.id.desc())
            .offset(keep)
            .limit(1)
        )
        if cutoff is None:
            return 0
        result = await conn.execute(
            delete(deliveries).where(
                deliveries.c.endpoint_id == endpoint_id, deliveries.c.id <= cutoff
            )
        )
        return int(result.rowcount or 0)
