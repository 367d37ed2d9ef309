"""A running reference service (in process, ASGI transport) on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from headway import Headway, Settings
from headway.demo.app import create_app
from headway.demo.seed import seed

ADMIN_TOKEN = "admin-token-for-tests-0123456789"


@dataclass
class Demo:
    app: FastAPI
    hw: Headway
    client: httpx.AsyncClient
    keys: dict[str, str]  # tenant slug -> API key

    def auth(self, tenant: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def demo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Demo]:
    if request.param == "sqlite":
        url = str(request.getfixturevalue("sqlite_url"))
    else:
        url = str(request.getfixturevalue("pg_url"))
    settings = Settings(
        database_url=url,
        data_dir=tmp_path / ".headway",
        demo_seed=False,
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
    )
    hw = Headway(settings)
    app = create_app(hw=hw)
    async with app.router.lifespan_context(app):
        seeded = await seed(hw.connections.engine())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Demo(app, hw, client, {k.tenant: k.key for k in seeded})
