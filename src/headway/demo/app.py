"""The reference service: a multi-tenant AI-agent platform built on headway's public API.

``uvicorn headway.demo.app:app`` or ``headway serve`` (which also migrates and seeds).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from headway import Headway, Settings, __version__
from headway.demo.api import router
from headway.demo.db import sessionmaker
from headway.demo.seed import prepare

log = logging.getLogger("headway.demo")


def create_app(settings: Settings | None = None, *, hw: Headway | None = None) -> FastAPI:
    """Build the service on ``hw`` (default: a hub from ``settings`` / the environment)."""
    hub = hw or Headway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = hub.connections.engine()
        seeded = await prepare(engine, seed_if_empty=hub.settings.demo_seed)
        if seeded:
            log.info("seeded demo tenants; run `headway demo seed` for API keys to try")
        app.state.sessions = sessionmaker(engine)
        yield

    app = FastAPI(
        title="headway reference service",
        version=__version__,
        description="A multi-tenant AI-agent platform built on headway.",
        lifespan=lifespan,
    )
    app.include_router(router)
    hub.install(app)
    return app


def __getattr__(name: str) -> FastAPI:
    # ``uvicorn headway.demo.app:app`` asks for ``app``: build it then, from the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
