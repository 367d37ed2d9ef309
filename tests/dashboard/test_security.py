"""Who gets in: the admin token or password only, a signed session cookie, CSRF on every
state-changing request, and no dashboard at all without an admin token."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from tests.dashboard.conftest import TOKEN, UI, Admin, csrf_of, make_hub

from headway import Headway, Settings
from headway.dashboard import hash_password
from headway.dashboard.security import COOKIE

TENANT_KEY = "hw_acme_0123456789abcdef0123456789abcdef"  # the shape of a demo API key


async def test_without_an_admin_token_the_dashboard_does_not_exist(tmp_path: Path) -> None:
    hw = Headway(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'a.db'}"))
    app = FastAPI()
    hw.install(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        for path in ("/admin", f"{UI}/", f"{UI}/login", f"{UI}/jobs", f"{UI}/static/htmx.min.js"):
            assert (await c.get(path)).status_code == 404, path
        assert (await c.post(f"{UI}/login", data={"credential": "x"})).status_code == 404


async def test_pages_redirect_to_the_login_until_logged_in(admin: Admin) -> None:
    r = await admin.client.get(f"{UI}/jobs?queue=x")
    assert r.status_code == 303
    assert r.headers["location"] == f"{UI}/login?next=%2Fadmin%2Fui%2Fjobs%3Fqueue%3Dx"
    r = await admin.client.get(f"{UI}/jobs", headers={"HX-Request": "true"})
    assert r.status_code == 401
    assert r.headers["hx-redirect"].startswith(f"{UI}/login")
    assert (await admin.client.get("/admin")).headers["location"] == f"{UI}/"


async def test_the_admin_token_logs_in_with_a_strict_http_only_cookie(admin: Admin) -> None:
    r = await admin.login()
    assert r.status_code == 303
    assert r.headers["location"] == f"{UI}/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain http here
    page = await admin.client.get(f"{UI}/")
    assert page.status_code == 200
    assert "Health" in page.text


async def test_the_cookie_is_secure_behind_https(hub: Headway) -> None:
    app = FastAPI()
    hub.install(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://test") as c:
            page = await c.get(f"{UI}/login")
            form = {"csrf_token": csrf_of(page.text), "credential": TOKEN}
            r = await c.post(f"{UI}/login", data=form)
    assert r.status_code == 303
    assert "Secure" in r.headers["set-cookie"]


@pytest.mark.parametrize(
    "credential", ["wrong-token-0123456789abcdef", TOKEN + "x", TENANT_KEY, ""]
)
async def test_anything_but_the_admin_credential_is_refused(admin: Admin, credential: str) -> None:
    r = await admin.login(credential)
    assert r.status_code == 401
    assert (await admin.client.get(f"{UI}/")).status_code == 303


async def test_a_tenant_api_key_never_opens_the_dashboard(admin: Admin) -> None:
    for headers in (
        {"Authorization": f"Bearer {TENANT_KEY}"},
        {"Authorization": f"Bearer {TOKEN}"},  # even the admin token: pages use the login
        {"X-Headway-Admin-Token": TOKEN},
    ):
        r = await admin.client.get(f"{UI}/", headers=headers)
        assert r.status_code == 303, headers
    r = await admin.login(TENANT_KEY)
    assert r.status_code == 401
    assert "Wrong token or password" in r.text


async def test_a_forged_or_tampered_cookie_is_not_a_session(admin: Admin) -> None:
    await admin.login()
    good = admin.client.cookies[COOKIE]
    body, _, mac = good.partition(".")
    admin.client.cookies.set(COOKIE, body + "." + mac[:-2] + "AA", path="/admin")
    assert (await admin.client.get(f"{UI}/")).status_code == 303


async def test_a_password_from_settings_logs_in(tmp_path: Path) -> None:
    stored = hash_password("correct horse battery", iterations=1000)
    hw = make_hub(tmp_path)
    from headway.dashboard import DashboardSettings

    app = FastAPI()
    hw.install(app)
    app.state.headway_dashboard.settings = DashboardSettings(password_hash=stored)  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            admin = Admin(app, hw, c)
            assert (await admin.login("correct horse battery!")).status_code == 401
            assert (await admin.login("correct horse battery")).status_code == 303
            assert "Log out (password)" in (await c.get(f"{UI}/")).text


async def test_a_post_without_the_csrf_token_is_refused(admin: Admin) -> None:
    await admin.login()
    await admin.hw.jobs.pause("default")
    r = await admin.client.post(f"{UI}/jobs/queues/default/resume", data={})
    assert r.status_code == 403
    r = await admin.client.post(
        f"{UI}/jobs/queues/default/resume", data={"csrf_token": "forged-token"}
    )
    assert r.status_code == 403
    assert (await admin.hw.jobs.stats())["default"]["paused"] is True
    r = await admin.post("/jobs/queues/default/resume")
    assert r.status_code == 303
    assert (await admin.hw.jobs.stats())["default"]["paused"] is False


async def test_the_csrf_header_works_like_the_field(admin: Admin) -> None:
    await admin.login()
    r = await admin.client.post(
        f"{UI}/jobs/queues/default/pause", headers={"X-CSRF-Token": admin.csrf}
    )
    assert r.status_code == 303
    assert (await admin.hw.jobs.stats())["default"]["paused"] is True


async def test_the_login_form_needs_its_csrf_token(admin: Admin) -> None:
    await admin.client.get(f"{UI}/login")
    r = await admin.client.post(f"{UI}/login", data={"credential": TOKEN})
    assert r.status_code == 403


async def test_logout_ends_the_session(admin: Admin) -> None:
    await admin.login()
    r = await admin.post("/logout")
    assert r.status_code == 303
    assert (await admin.client.get(f"{UI}/")).status_code == 303


async def test_a_session_ends_when_the_admin_token_changes(tmp_path: Path) -> None:
    first = make_hub(tmp_path)
    app = FastAPI()
    first.install(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            await Admin(app, first, c).login()
            first_cookie = c.cookies[COOKIE]
    rotated = make_hub(tmp_path, admin_token="another-admin-token-0123456789")
    app2 = FastAPI()
    rotated.install(app2)
    async with app2.router.lifespan_context(app2):
        transport = httpx.ASGITransport(app=app2)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            c.cookies.set(COOKIE, first_cookie, path="/admin")
            assert (await c.get(f"{UI}/")).status_code == 303


async def test_actions_and_logins_are_in_the_audit_log(admin: Admin) -> None:
    await admin.login("wrong-token-0123456789abcdef")
    await admin.login()
    await admin.post("/jobs/queues/low/pause")
    entries = await admin.app.state.headway_dashboard.audit_log.recent()
    actions = [e["action"] for e in entries]
    assert actions[:3] == ["queue_pause", "login", "login_failed"]
    assert entries[0]["actor"] == "token"
    assert entries[0]["target"] == f"{UI}/jobs/queues/low/pause"
    page = await admin.client.get(f"{UI}/audit")
    assert "queue_pause" in page.text and "login_failed" in page.text
    assert TOKEN not in page.text


async def test_the_json_admin_endpoints_still_answer(admin: Admin) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    config = (await admin.client.get("/admin/config", headers=headers)).json()
    assert config["HEADWAY_DASHBOARD_SESSION_LIFETIME"] == 8 * 3600
    assert config["HEADWAY_DASHBOARD_PASSWORD_HASH"] is None
    assert (await admin.client.get("/admin/flags", headers=headers)).status_code == 200
    assert (await admin.client.get("/admin/config")).status_code == 401


async def test_next_never_leaves_the_dashboard(admin: Admin) -> None:
    page = await admin.client.get(f"{UI}/login")
    form = {"csrf_token": csrf_of(page.text), "credential": TOKEN, "next": "//evil.example/x"}
    r = await admin.client.post(f"{UI}/login", data=form)
    assert r.headers["location"] == f"{UI}/"


async def test_repeated_failed_logins_are_refused_for_a_while(admin: Admin) -> None:
    for _ in range(10):
        assert (await admin.login("wrong-token-0123456789abcdef")).status_code == 401
    r = await admin.login()  # even the right token, until the window passes
    assert r.status_code == 429
    assert "Too many failed logins" in r.text
    admin.app.state.headway_dashboard.throttle.failures.clear()  # the window passed
    assert (await admin.login()).status_code == 303
