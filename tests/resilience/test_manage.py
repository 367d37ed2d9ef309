"""Management API (admin router) and the ``headway breakers`` CLI."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from headway import Headway
from headway.cli.breakers import breakers_app
from headway.resilience import Breakers, BreakersSettings

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_admin_endpoints() -> None:
    hw = Headway(admin_token=TOKEN)
    breakers = hw.add(Breakers(hw, url="memory://"))
    breakers.breaker("database")
    breakers.breaker("storage")
    app = FastAPI()
    hw.install(app)
    async with hw:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/admin/breakers")).status_code == 401
            listed = (await c.get("/admin/breakers", headers=AUTH)).json()["breakers"]
            assert [b["name"] for b in listed] == ["database", "storage"]
            assert listed[0]["state"] == "closed" and "policy" in listed[0]
            r = await c.post("/admin/breakers/database/open", headers=AUTH)
            assert r.status_code == 200 and r.json()["state"] == "open"
            assert r.json()["forced"] is True
            r = await c.post("/admin/breakers/database/close", headers=AUTH)
            assert r.json()["state"] == "closed" and r.json()["forced"] is True
            r = await c.post("/admin/breakers/database/reset", headers=AUTH)
            assert r.json()["forced"] is False
            r = await c.post("/admin/breakers/nope/open", headers=AUTH)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
            assert (await c.get("/admin/breakers/nope", headers=AUTH)).status_code == 404


async def test_open_breaker_in_a_request_is_503() -> None:
    hw = Headway()
    b = hw.add(Breakers(hw, url="memory://")).breaker("ai", failure_threshold=1)
    app = FastAPI()

    async def boom() -> None:
        raise RuntimeError

    @app.get("/ai")
    async def ai() -> dict[str, str]:
        await b.call(boom)
        return {}

    hw.install(app)
    async with hw:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/ai")).status_code == 500
            r = await c.get("/ai")
            assert r.status_code == 503 and r.headers["retry-after"] == "60"
            assert r.json()["error"]["code"] == "circuit_open"


@pytest.mark.redis
def test_cli_on_shared_state(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    monkeypatch.setenv("HEADWAY_REDIS_URL", redis_url)
    monkeypatch.setenv("HEADWAY_BREAKERS_PREFIX", redis_prefix)

    async def declare() -> None:  # a server process declares its breakers
        hw = Headway()
        hw.add(Breakers(hw, BreakersSettings())).breaker("external-api")
        async with hw:
            pass

    asyncio.run(declare())
    runner = CliRunner()
    r = runner.invoke(breakers_app, ["list", "--json"])
    assert r.exit_code == 0, r.output
    assert '"external-api"' in r.output
    r = runner.invoke(breakers_app, ["open", "external-api"])
    assert r.exit_code == 0 and "open" in r.output
    r = runner.invoke(breakers_app, ["reset", "external-api", "--json"])
    assert r.exit_code == 0 and '"closed"' in r.output
    r = runner.invoke(breakers_app, ["close", "missing"])
    assert r.exit_code == 2
    assert "no circuit breaker named 'missing'" in r.output
    r = runner.invoke(breakers_app, ["open"])
    assert r.exit_code == 2  # usage error, no traceback
    assert "Traceback" not in r.output


def test_cli_memory_list_explains() -> None:
    r = CliRunner().invoke(breakers_app, ["list"])
    assert r.exit_code == 0 and "memory://" in r.output
