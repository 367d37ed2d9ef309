"""Database plumbing of the reference service: migrations, sessions, first-start seed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request

from headway.hub import from_request


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "headway.demo:migrations")
    return cfg


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (idempotent: at head it does nothing)."""

    def run(sync_conn: Any) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency for read-only routes: a replica when configured and healthy
    (``HEADWAY_DB_REPLICA_URLS``, the ``use-read-replicas`` flag), else the primary."""
    async with from_request(request).db.read_session() as session:
        yield session


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: a session on the hub's shared engine, closed after the request."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with factory() as session:
        yield session
