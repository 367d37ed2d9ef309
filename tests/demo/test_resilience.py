"""Flags and breakers in the reference service: defaults, maintenance mode, caching flag."""

from __future__ import annotations

from tests.demo.conftest import ADMIN_TOKEN, Demo


async def test_default_flags_and_breakers_exist(demo: Demo) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    flags = (await demo.client.get("/admin/flags", headers=admin)).json()
    keys = {f["key"] for f in (flags["flags"] if isinstance(flags, dict) else flags)}
    assert {"core-api", "maintenance-mode", "vision-analysis", "enable-caching"} <= keys
    r = await demo.client.get("/admin/breakers", headers=admin)
    assert r.status_code == 200
    assert {"database", "external-api", "ai-provider", "storage"} <= {
        b["name"] for b in (r.json()["breakers"] if isinstance(r.json(), dict) else r.json())
    }
    # a tenant key never reaches them
    assert (await demo.client.get("/admin/flags", headers=demo.auth())).status_code == 403


async def test_maintenance_mode_answers_503_but_health_stays_up(demo: Demo) -> None:
    await demo.hw.flags.update("maintenance-mode", {"enabled": True})
    r = await demo.client.get("/api/v2/me", headers=demo.auth())
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
    assert (await demo.client.get("/health")).status_code == 200
    await demo.hw.flags.update("maintenance-mode", {"enabled": False})
    assert (await demo.client.get("/api/v2/me", headers=demo.auth())).status_code == 200


async def test_caching_flag_turns_the_post_cache_off_per_tenant(demo: Demo) -> None:
    from sqlalchemy import text

    async def set_title_behind_the_cache(title: str) -> None:
        async with demo.hw.connections.engine().begin() as conn:
            await conn.execute(text("UPDATE posts SET title = :t WHERE id = 60"), {"t": title})

    url = "/api/v2/posts/60?fields=title"
    first = (await demo.client.get(url, headers=demo.auth())).json()["title"]
    await set_title_behind_the_cache("changed behind the cache")
    # caching on: the cached (now stale) answer is served
    assert (await demo.client.get(url, headers=demo.auth())).json()["title"] == first
    await demo.hw.flags.save({"key": "enable-caching", "enabled": False}, tenant="1")
    # caching off for this tenant: the database answers
    r = await demo.client.get(url, headers=demo.auth())
    assert r.json()["title"] == "changed behind the cache"
