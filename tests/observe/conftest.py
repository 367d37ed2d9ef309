"""An app with a few routes, a hub on a temp SQLite file and observe configured per test."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import text
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from headway import Headway, Settings
from headway.observe import Observe, ObserveSettings, bind_request

ADMIN = "observe-admin-token-0123456789"


def build_app(hw: Headway) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("exploded")

    @app.get("/fail")
    async def fail() -> PlainTextResponse:
        return PlainTextResponse("no", status_code=503)

    @app.get("/query")
    async def query() -> dict[str, int]:
        async with hw.connections.engine().connect() as conn:
            value = (await conn.execute(text("SELECT 41 + 1"))).scalar_one()
        return {"value": int(value)}

    @app.get("/tenant/{tenant}")
    async def tenant(tenant: str, request: Request) -> dict[str, str]:
        bind_request(tenant=tenant)
        import logging

        logging.getLogger("test.app").info(
            "handling with %s", request.headers.get("authorization", "")
        )
        return {"tenant": tenant}

    async def sub_item(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["name"])

    app.router.routes.append(Mount("/orgs/{org}", routes=[Route("/things/{name}", sub_item)]))
    return app


Factory = Callable[..., Any]


@pytest.fixture
def make(tmp_path: Path) -> Factory:
    """``async with make(**observe_settings) as (hw, client, logs): ...``"""

    @asynccontextmanager
    async def factory(
        hub: dict[str, Any] | None = None,
        app_factory: Callable[[Headway], FastAPI] = build_app,
        **observe: Any,
    ) -> AsyncIterator[tuple[Headway, httpx.AsyncClient, io.StringIO]]:
        options: dict[str, Any] = {
            "data_dir": tmp_path / ".headway",
            "database_url": f"sqlite:///{tmp_path / 'obs.db'}",
            "admin_token": ADMIN,
            **(hub or {}),
        }
        settings = Settings(**options)
        hw = Headway(settings)
        observe.setdefault("alerts", False)
        hw.add(Observe(hw, ObserveSettings(**observe)))
        the_app = app_factory(hw)
        hw.install(the_app)
        stream = io.StringIO()
        async with the_app.router.lifespan_context(the_app):
            if hw.observe._logs is not None:
                hw.observe.configure_logging(stream)
            transport = httpx.ASGITransport(app=the_app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield hw, client, stream

    return factory
