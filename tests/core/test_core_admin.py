"""Access to the admin endpoints: off without a token, then 401 / 403 / 200."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from headway import ConfigError, Headway, Settings

TOKEN = "admin-token-for-core-tests-0123456789"
REDIS_PASSWORD = "redis-password-in-url"


def make_app(hw: Headway) -> FastAPI:
    app = FastAPI()
    hw.install(app)
    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FastAPI:
    monkeypatch.setenv("HEADWAY_ADMIN_TOKEN", TOKEN)
    return make_app(Headway(data_dir=tmp_path / "data"))


@pytest.mark.parametrize("path", ["/admin/config", "/admin/checks"])
async def test_without_a_configured_token_admin_endpoints_do_not_exist(
    tmp_path: Path, path: str
) -> None:
    async with client(make_app(Headway(data_dir=tmp_path))) as c:
        response = await c.get(path, headers={"Authorization": "Bearer anything-at-all-123"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_no_credentials_is_401(app: FastAPI) -> None:
    async with client(app) as c:
        response = await c.get("/admin/config")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"X-Headway-Admin-Token": "wrong-token-0123456789abcdef"},
        {"Authorization": "Bearer hw_acme_0123456789abcdef0123456789abcdef"},  # a demo API key
    ],
    ids=["wrong", "longer", "shorter", "wrong-header", "demo-key"],
)
async def test_wrong_credentials_are_403(app: FastAPI, headers: dict[str, str]) -> None:
    async with client(app) as c:
        response = await c.get("/admin/config", headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert TOKEN not in response.text


async def test_token_under_another_auth_scheme_is_not_accepted(app: FastAPI) -> None:
    async with client(app) as c:
        response = await c.get("/admin/config", headers={"Authorization": f"Basic {TOKEN}"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {TOKEN}"},
        {"Authorization": f"bearer {TOKEN}"},
        {"X-Headway-Admin-Token": TOKEN},
    ],
    ids=["bearer", "bearer-lowercase", "header"],
)
async def test_right_token_is_200_and_the_config_masks_it(
    app: FastAPI, headers: dict[str, str]
) -> None:
    async with client(app) as c:
        response = await c.get("/admin/config", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["HEADWAY_ADMIN_TOKEN"] == "***"
    assert TOKEN not in response.text


async def test_admin_config_masks_url_passwords(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HEADWAY_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("HEADWAY_REDIS_URL", f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0")
    async with client(make_app(Headway(data_dir=tmp_path))) as c:
        response = await c.get("/admin/config", headers={"X-Headway-Admin-Token": TOKEN})
    assert response.status_code == 200
    assert response.json()["HEADWAY_REDIS_URL"] == "redis://:***@127.0.0.1:6379/0"
    assert REDIS_PASSWORD not in response.text


async def test_admin_checks_reports_the_backends(app: FastAPI) -> None:
    async with client(app) as c:
        response = await c.get("/admin/checks", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert [check["name"] for check in body["checks"]] == ["database"]
    assert body["capabilities"] == []


async def test_admin_checks_reports_a_down_redis(tmp_path: Path) -> None:
    hw = Headway(
        data_dir=tmp_path, admin_token=TOKEN, redis_url="redis://127.0.0.1:1/0", connect_timeout=2
    )
    async with client(make_app(hw)) as c:
        response = await c.get("/admin/checks", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    redis = next(check for check in body["checks"] if check["name"] == "redis")
    assert redis["ok"] is False
    assert redis["error"]


async def test_token_given_as_override_works(tmp_path: Path) -> None:
    hw = Headway(data_dir=tmp_path, admin_token=TOKEN)
    async with client(make_app(hw)) as c:
        ok = await c.get("/admin/config", headers={"Authorization": f"Bearer {TOKEN}"})
        bad = await c.get("/admin/config", headers={"Authorization": "Bearer nope-nope-nope"})
    assert ok.status_code == 200
    assert bad.status_code == 403


async def test_overrides_on_top_of_a_settings_object_work(tmp_path: Path) -> None:
    hw = Headway(Settings(data_dir=tmp_path), admin_token=TOKEN)
    async with client(make_app(hw)) as c:
        response = await c.get("/admin/config", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert TOKEN not in response.text


def test_overrides_on_top_of_a_settings_object_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="HEADWAY_ADMIN_TOKEN"):
        Headway(Settings(data_dir=tmp_path), admin_token="ab")
