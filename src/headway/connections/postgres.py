"""SQLAlchemy async engines for PostgreSQL through asyncpg.

A ``schema=NAME`` query parameter (headway's own) sets the connections' ``search_path``,
which is how tests and multi-app databases keep their tables apart.
"""

from __future__ import annotations

import asyncpg  # noqa: F401  (imported so that a missing extra is reported at resolve time)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from headway.connections.sql import add_idle_timeout
from headway.settings import Settings


def make_engine(url: str, settings: Settings) -> AsyncEngine:
    parsed = make_url(url).set(drivername="postgresql+asyncpg")
    server_settings = {"application_name": "headway"}
    schema = parsed.query.get("schema")
    if schema:
        server_settings["search_path"] = str(schema)
        parsed = parsed.difference_update_query(["schema"])
    engine = create_async_engine(
        parsed,
        connect_args={"timeout": settings.connect_timeout, "server_settings": server_settings},
        pool_size=settings.pool_size,
        max_overflow=max(settings.pool_max - settings.pool_size, 0),
        pool_timeout=30,
    )
    add_idle_timeout(engine, settings.idle_timeout)
    return engine
