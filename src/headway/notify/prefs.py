"""Per-user notification preferences in the hub's SQL database.

One row per (tenant, user, event): the channels that event goes to (an empty list opts
out). The event ``*`` is the user's default; with neither, ``HEADWAY_NOTIFY_DEFAULT_CHANNELS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from sqlalchemy import Column, MetaData, String, Table, Text, and_, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from headway.connections.sql import create_tables

ANY_EVENT = "*"
metadata = MetaData()
prefs = Table(
    "headway_notify_prefs",
    metadata,
    Column("tenant", String(200), primary_key=True),
    Column("user_id", String(200), primary_key=True),
    Column("event", String(200), primary_key=True),
    Column("channels", Text, nullable=False),
)


class Preferences:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self) -> None:
        await create_tables(self.engine, metadata)

    async def get(self, tenant: str, user: str) -> dict[str, list[str]]:
        where = and_(prefs.c.tenant == tenant, prefs.c.user_id == user)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(prefs.c.event, prefs.c.channels).where(where))).all()
        return {event: list(orjson.loads(channels)) for event, channels in rows}

    async def replace(self, tenant: str, user: str, values: Mapping[str, Sequence[str]]) -> None:
        where = and_(prefs.c.tenant == tenant, prefs.c.user_id == user)
        rows = [
            {"tenant": tenant, "user_id": user, "event": event,
             "channels": orjson.dumps(list(channels)).decode()}
            for event, channels in values.items()
        ]  # fmt: skip
        async with self.engine.begin() as conn:
            await conn.execute(delete(prefs).where(where))
            if rows:
                await conn.execute(insert(prefs), rows)

    async def channels_for(self, tenant: str, user: str, event: str) -> list[str] | None:
        """The user's channels for ``event`` (its own row, else ``*``); None = no preference."""
        stmt = select(prefs.c.event, prefs.c.channels).where(
            prefs.c.tenant == tenant, prefs.c.user_id == user, prefs.c.event.in_([event, ANY_EVENT])
        )
        async with self.engine.connect() as conn:
            found = dict((await conn.execute(stmt)).all())
        value = found.get(event, found.get(ANY_EVENT))
        return None if value is None else list(orjson.loads(value))
