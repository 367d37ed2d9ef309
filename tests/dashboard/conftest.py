"""A hub with every capability the dashboard shows, installed on a FastAPI app, and a
logged-in client (ASGI transport: no network)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from headway import Headway, Settings

TOKEN = "admin-token-for-dashboard-tests-0123"
UI = "/admin/ui"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


@dataclass
class Admin:
    app: FastAPI
    hw: Headway
    client: httpx.AsyncClient
    csrf: str = ""

    async def login(self, credential: str = TOKEN) -> httpx.Response:
        page = await self.client.get(f"{UI}/login")
        form = {"csrf_token": csrf_of(page.text), "credential": credential, "next": f"{UI}/"}
        response = await self.client.post(f"{UI}/login", data=form)
        if response.status_code == 303:
            self.csrf = csrf_of((await self.client.get(f"{UI}/")).text)
        return response

    async def post(self, path: str, **fields: str) -> httpx.Response:
        return await self.client.post(UI + path, data={"csrf_token": self.csrf, **fields})


def make_hub(tmp_path: Path, **overrides: object) -> Headway:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        data_dir=tmp_path / ".headway",
        admin_token=TOKEN,  # type: ignore[arg-type]
    )
    hw = Headway(settings, **overrides) if overrides else Headway(settings)
    for name in ("jobs", "workflows", "cache", "flags", "breakers", "limits", "storage", "db"):
        getattr(hw, name)
    return hw


@pytest.fixture
def hub(tmp_path: Path) -> Headway:
    return make_hub(tmp_path)


@pytest.fixture
async def admin(hub: Headway) -> AsyncIterator[Admin]:
    app = FastAPI()
    hub.install(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Admin(app, hub, client)
