"""SQLAlchemy async engines for SQLite (aiosqlite) and the pool settings they share."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from headway.settings import Settings


def add_idle_timeout(engine: AsyncEngine, idle_timeout: float) -> None:
    """Replace a pooled connection that sat idle longer than ``idle_timeout`` seconds.

    SQLAlchemy's pool has no idle timeout of its own (``pool_recycle`` counts age, not
    idleness); raising DisconnectionError at checkout makes the pool open a fresh one.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _checkin(dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is not None and time.monotonic() - since > idle_timeout:
            raise exc.DisconnectionError("connection idle longer than HEADWAY_IDLE_TIMEOUT")


def sqlite_url(url: str) -> URL:
    """``sqlite:///x.db`` -> ``sqlite+aiosqlite:///x.db``, creating the file's directory."""
    parsed = make_url(url).set(drivername="sqlite+aiosqlite")
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return parsed


def make_engine(url: str, settings: Settings) -> AsyncEngine:
    """An aiosqlite engine in WAL mode with foreign keys on and a 15 s busy timeout."""
    engine = create_async_engine(
        sqlite_url(url),
        connect_args={"timeout": 15},
        pool_size=settings.pool_size,
        max_overflow=max(settings.pool_max - settings.pool_size, 0),
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn: Any, record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    add_idle_timeout(engine, settings.idle_timeout)
    return engine


async def create_tables(engine: AsyncEngine, metadata: MetaData, attempts: int = 5) -> None:
    """``metadata.create_all`` on ``engine``, safe when several processes start at once.

    Processes may all see a table missing and all create it; a loser's error (an
    integrity or "already exists" error) is answered by another try after a short pause,
    which finds the tables its rivals made (several tables, several rivals: a few tries).
    """
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
            return
        except exc.DBAPIError:  # IntegrityError is one
            if attempt == attempts:
                raise
            await asyncio.sleep(0.05 * attempt)
