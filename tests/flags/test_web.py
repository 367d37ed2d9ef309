"""Admin API (422 on invalid definitions), feature_gate, maintenance middleware, OpenFeature."""

from __future__ import annotations

import httpx
from fastapi import Depends, FastAPI

from headway import Headway
from headway.flags import Flags, feature_gate

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Headway-Actor": "ann"}


def build() -> tuple[Headway, Flags, FastAPI]:
    hw = Headway(admin_token=TOKEN)
    flags = hw.add(Flags(hw, url="memory://"))
    app = FastAPI()

    @app.get("/beta", dependencies=[Depends(feature_gate("beta"))])
    async def beta() -> dict[str, bool]:
        return {"beta": True}

    @app.get("/api/things")
    async def things() -> list[int]:
        return [1]

    hw.install(app)
    return hw, flags, app


async def test_admin_crud_validation_and_gate() -> None:
    hw, _flags, app = build()
    async with hw:
        t = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=t, base_url="http://t") as c:
            assert (await c.get("/beta")).status_code == 404
            r = await c.post("/admin/flags", json={"key": "beta", "rollout": 150}, headers=AUTH)
            assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
            bad = {"key": "ab", "variants": {"a": 1, "b": 2}, "weights": {"a": 60, "b": 60}}
            assert (await c.post("/admin/flags", json=bad, headers=AUTH)).status_code == 422
            cond = {"attribute": "a", "operator": "like", "values": [1]}
            op = {"key": "x", "rules": [{"conditions": [cond], "variant": "on"}]}
            assert (await c.post("/admin/flags", json=op, headers=AUTH)).status_code == 422
            r = await c.post("/admin/flags", json={"key": "beta"}, headers=AUTH)
            assert r.status_code == 201 and r.json()["enabled"] is True
            assert (
                await c.post("/admin/flags", json={"key": "beta"}, headers=AUTH)
            ).status_code == 409
            assert (await c.get("/beta")).json() == {"beta": True}
            r = await c.patch("/admin/flags/beta", json={"rollout": 101}, headers=AUTH)
            assert r.status_code == 422
            r = await c.patch("/admin/flags/beta", json={"enabled": False}, headers=AUTH)
            assert r.status_code == 200 and r.json()["updated_by"] == "ann"
            assert (await c.get("/beta")).status_code == 404
            r = await c.post("/admin/flags/beta/evaluate", json={"user": "u1"}, headers=AUTH)
            assert r.json()["reason"] == "DISABLED"
            r = await c.post("/admin/flags/nope/evaluate", json={}, headers=AUTH)
            assert (r.json()["reason"], r.json()["error_code"]) == ("ERROR", "FLAG_NOT_FOUND")
            r = await c.put("/admin/flags/beta", json={"key": "beta", "rollout": 10}, headers=AUTH)
            assert r.status_code == 200
            assert (await c.get("/admin/flags/beta", headers=AUTH)).json()["rollout"] == 10
            audit = (await c.get("/admin/flags/beta/audit", headers=AUTH)).json()["audit"]
            assert [a["action"] for a in audit] == ["update", "update", "create"]
            assert audit[0]["before"]["enabled"] is False and audit[0]["actor"] == "ann"
            assert (await c.get("/admin/flags", headers=AUTH)).json()["flags"][0]["key"] == "beta"
            assert (await c.delete("/admin/flags/beta", headers=AUTH)).status_code == 204
            assert (await c.get("/admin/flags/beta", headers=AUTH)).status_code == 404
            assert (await c.delete("/admin/flags/beta", headers=AUTH)).status_code == 404


async def test_maintenance_mode() -> None:
    hw, flags, app = build()
    async with hw:
        await flags.save({"key": "maintenance-mode", "enabled": False})
        t = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=t, base_url="http://t") as c:
            assert (await c.get("/api/things")).status_code == 200
            await flags.update("maintenance-mode", {"enabled": True})
            r = await c.get("/api/things")
            assert r.status_code == 503 and r.headers["retry-after"] == "120"
            assert r.json()["error"]["code"] == "maintenance"
            assert (await c.get("/health")).status_code == 200
            assert (await c.get("/admin/flags", headers=AUTH)).status_code == 200


async def test_openfeature_provider() -> None:
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from headway.flags.openfeature import HeadwayProvider

    hw = Headway()
    flags = hw.add(Flags(hw, url="memory://"))
    async with hw:
        await flags.save({"key": "on"})
        await flags.save({"key": "off", "enabled": False})
        await flags.save({"key": "roll", "rollout": 50})
        await flags.save({"key": "colour", "variants": {"a": "blue", "b": "red"},
                          "allow": [{"attribute": "tenant", "values": ["acme"]}],
                          "allow_variant": "b"})  # fmt: skip
        api.set_provider(HeadwayProvider(flags))
        client = api.get_client()
        d = client.get_boolean_details("on", False)
        assert (d.value, d.reason) == (True, "DEFAULT")
        assert client.get_boolean_details("off", True).reason == "DISABLED"
        d = client.get_boolean_details("missing", True)
        assert (d.value, d.reason, d.error_code) == (True, "ERROR", "FLAG_NOT_FOUND")
        d = client.get_boolean_details("roll", False, EvaluationContext("user-1"))
        assert d.reason == "SPLIT"
        ctx = EvaluationContext("u", {"tenant": "acme"})
        d = client.get_string_details("colour", "x", ctx)
        assert (d.value, d.variant, d.reason) == ("red", "b", "TARGETING_MATCH")
        d = client.get_boolean_details("colour", False, ctx)
        assert (d.value, d.error_code) == (False, "TYPE_MISMATCH")
        d = await client.get_boolean_details_async("on", False)
        assert d.value is True
        api.clear_providers()
