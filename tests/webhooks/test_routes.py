"""The reference service's /api/v1/webhooks routes (demo app + this router), SQLite and PG."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook
from tests.webhooks.conftest import make_hub
from tests.webhooks.receiver import Receiver, running_receiver

from headway import Headway
from headway.demo.app import create_app
from headway.demo.seed import seed
from headway.demo.webhooks import install_notifications
from headway.demo.webhooks import router as webhooks_router

BASE = "/api/v1/webhooks/endpoints"


@dataclass
class Api:
    hw: Headway
    client: httpx.AsyncClient
    keys: dict[str, str]
    receiver: Receiver

    def auth(self, tenant: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}


@pytest.fixture
async def api(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    hw = make_hub(db_url, tmp_path)
    install_notifications(hw)
    app = create_app(hw=hw)
    app.include_router(webhooks_router)
    async with running_receiver() as receiver, app.router.lifespan_context(app):
        keys = {k.tenant: k.key for k in await seed(hw.connections.engine())}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(hw, client, keys, receiver)


async def test_endpoint_lifecycle(api: Api) -> None:
    c, auth = api.client, api.auth()
    r = await c.post(BASE, json={"url": api.receiver.url(), "event_types": ["execution.*"]},
                     headers=auth)  # fmt: skip
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and created["owner"] is not None
    ep = created["id"]
    listed = (await c.get(BASE, headers=auth)).json()["data"]
    assert [e["id"] for e in listed] == [ep] and "secret" not in listed[0]
    r = await c.patch(f"{BASE}/{ep}", json={"description": "ci hook"}, headers=auth)
    assert r.json()["description"] == "ci hook"
    rotated = (await c.post(f"{BASE}/{ep}/rotate-secret", headers=auth)).json()
    assert rotated["secret"] != created["secret"]
    assert (await c.delete(f"{BASE}/{ep}", headers=auth)).status_code == 204
    assert (await c.get(f"{BASE}/{ep}", headers=auth)).status_code == 404


async def test_another_tenants_endpoint_is_a_404(api: Api) -> None:
    r = await api.client.post(BASE, json={"url": api.receiver.url()}, headers=api.auth("acme"))
    ep = r.json()["id"]
    other = api.auth("globex")
    for method, path in (
        ("GET", f"{BASE}/{ep}"), ("PATCH", f"{BASE}/{ep}"), ("DELETE", f"{BASE}/{ep}"),
        ("POST", f"{BASE}/{ep}/enable"), ("POST", f"{BASE}/{ep}/rotate-secret"),
        ("POST", f"{BASE}/{ep}/replay"), ("GET", f"{BASE}/{ep}/deliveries"),
    ):  # fmt: skip
        body = {"since": 0} if path.endswith("replay") else {}
        r = await api.client.request(method, path, json=body, headers=other)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    assert (await api.client.get(BASE, headers=other)).json()["data"] == []
    assert (await api.client.get(f"{BASE}/{ep}", headers=api.auth())).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://10.0.0.1/hook"}, {"url": "http://169.254.169.254/latest/meta-data"},
        {"url": "file:///etc/passwd"}, {"url": "x" * 3000}, {"url": "http://127.0.0.1/", "x": 1},
        {"url": "http://127.0.0.1/", "secret": "plain"}, {"url": "http://127.0.0.1/",
        "event_types": ["bad type"]}, {},
    ],
)  # fmt: skip
async def test_bad_endpoints_are_4xx(api: Api, body: dict[str, object]) -> None:
    r = await api.client.post(BASE, json=body, headers=api.auth())
    assert r.status_code == 422, r.text
    assert "error" in r.json()


async def test_delivery_log_and_replay_through_the_api(api: Api) -> None:
    c, auth = api.client, api.auth()
    created = (await c.post(BASE, json={"url": api.receiver.url()}, headers=auth)).json()
    tenant = await _tenant_id(api)
    sent = await api.hw.webhooks.send(tenant, "execution.completed", {"execution_id": 1})
    (request,) = await api.receiver.wait_for(1)
    Webhook(created["secret"]).verify(request.body, request.headers)
    r = await c.post(f"{BASE}/{created['id']}/replay", json={"message_id": sent.message_id},
                     headers=auth)  # fmt: skip
    assert r.status_code == 202 and r.json() == {"enqueued": 1}
    await api.receiver.wait_for(2)
    r = await c.post(f"{BASE}/{created['id']}/replay", json={}, headers=auth)
    assert r.status_code == 422
    r = await c.post(f"{BASE}/{created['id']}/replay", json={"message_id": "msg_nope"},
                     headers=auth)  # fmt: skip
    assert r.status_code == 404
    log = await _log(api, created["id"], 2)
    assert [row["outcome"] for row in log] == ["succeeded", "succeeded"]
    assert {row["message_id"] for row in log} == {sent.message_id}


async def test_disabled_endpoint_replay_is_a_409_until_enabled(api: Api) -> None:
    c, auth = api.client, api.auth()
    ep = (await c.post(BASE, json={"url": api.receiver.url()}, headers=auth)).json()["id"]
    await api.hw.webhooks.disable(await _tenant_id(api), ep)
    assert (await c.post(f"{BASE}/{ep}/replay", json={"since": 0}, headers=auth)).status_code == 409
    enabled = (await c.post(f"{BASE}/{ep}/enable", headers=auth)).json()
    assert enabled["disabled"] is False
    r = await c.post(f"{BASE}/{ep}/replay", json={"since": 0}, headers=auth)
    assert r.status_code == 202


async def test_notification_preferences_of_the_caller(api: Api) -> None:
    c, auth = api.client, api.auth()
    body = {"preferences": {"execution.failed": ["email", "sms"], "*": []}}
    r = await c.put("/api/v1/notifications/preferences", json=body, headers=auth)
    assert r.status_code == 200, r.text
    got = (await c.get("/api/v1/notifications/preferences", headers=auth)).json()
    assert got["preferences"] == body["preferences"]
    bad = {"preferences": {"execution.failed": ["pigeon"]}}
    r = await c.put("/api/v1/notifications/preferences", json=bad, headers=auth)
    assert r.status_code == 422
    other = (await c.get("/api/v1/notifications/preferences", headers=api.auth("globex"))).json()
    assert other["preferences"] == {}


async def _tenant_id(api: Api) -> str:
    r = await api.client.get(BASE, headers=api.auth())
    assert r.status_code == 200
    from sqlalchemy import text

    async with api.hw.connections.engine().connect() as conn:
        value = await conn.scalar(text("SELECT id FROM tenants WHERE slug = 'acme'"))
    return str(value)


async def _log(api: Api, endpoint_id: str, count: int) -> list[dict[str, object]]:
    import asyncio

    async with asyncio.timeout(10):
        while True:
            r = await api.client.get(f"{BASE}/{endpoint_id}/deliveries", headers=api.auth())
            data: list[dict[str, object]] = r.json()["data"]
            if len(data) >= count:
                return data
            await asyncio.sleep(0.05)


async def test_announce_execution_sends_one_webhook_and_notifies_users(api: Api) -> None:
    from headway.demo.webhooks import announce_execution

    tenant = await _tenant_id(api)
    created = (
        await api.client.post(BASE, json={"url": api.receiver.url()}, headers=api.auth())
    ).json()
    for _ in range(2):  # a listener that runs twice sends one message
        await announce_execution(
            api.hw, tenant_id=int(tenant), execution_id=5, agent_id=1, agent_name="Writer",
            status="failed", users=[int(created["owner"])], error="boom",
        )  # fmt: skip
    (request,) = await api.receiver.wait_for(1)
    body = Webhook(created["secret"]).verify(request.body, request.headers)
    assert body["type"] == "execution.failed" and body["data"]["error"] == "boom"
    assert request.headers["webhook-id"] == "msg_execution_5_failed"
    assert len(await _log(api, created["id"], 1)) == 1
    with pytest.raises(ValueError):
        await announce_execution(
            api.hw, tenant_id=1, execution_id=5, agent_id=1, agent_name="x", status="odd",
            users=[],
        )  # fmt: skip
