"""API-key management: create (shown once), list, revoke; the ``auth`` policy limits it."""

from __future__ import annotations

from tests.demo.conftest import Demo


async def test_create_list_and_revoke_a_key(demo: Demo) -> None:
    r = await demo.client.post("/api/v1/keys", json={"name": "ci"}, headers=demo.auth())
    assert r.status_code == 201, r.text
    created = r.json()
    token = created["key"]
    assert token.startswith("hw_") and created["prefix"] == token[:10]
    new_auth = {"Authorization": f"Bearer {token}"}
    assert (await demo.client.get("/api/v2/agents", headers=new_auth)).status_code == 200
    listed = (await demo.client.get("/api/v1/keys", headers=demo.auth())).json()["data"]
    assert created["id"] in [k["id"] for k in listed]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    # another tenant can neither see nor revoke it
    other = (await demo.client.get("/api/v1/keys", headers=demo.auth("globex"))).json()["data"]
    assert created["id"] not in [k["id"] for k in other]
    r = await demo.client.delete(f"/api/v1/keys/{created['id']}", headers=demo.auth("globex"))
    assert r.status_code == 404
    r = await demo.client.delete(f"/api/v1/keys/{created['id']}", headers=demo.auth())
    assert r.status_code == 204
    assert (await demo.client.get("/api/v2/agents", headers=new_auth)).status_code == 401
    r = await demo.client.delete(f"/api/v1/keys/{created['id']}", headers=demo.auth())
    assert r.status_code == 404


async def test_key_endpoints_are_under_the_auth_policy(demo: Demo) -> None:
    demo.hw.limits.policy("auth", "3/minute")
    codes = []
    for i in range(5):
        r = await demo.client.post("/api/v1/keys", json={"name": f"k{i}"}, headers=demo.auth())
        codes.append(r.status_code)
    assert codes == [201, 201, 201, 429, 429]
    assert "auth" in r.json().get("detail", "") + str(r.json())
    assert int(r.headers["retry-after"]) >= 1
    assert "RateLimit-Policy".lower() in {k.lower() for k in r.headers}


async def test_bad_key_input_is_a_422(demo: Demo) -> None:
    r = await demo.client.post("/api/v1/keys", json={"name": ""}, headers=demo.auth())
    assert r.status_code == 422
    r = await demo.client.post("/api/v1/keys", json={}, headers=demo.auth())
    assert r.status_code == 422
