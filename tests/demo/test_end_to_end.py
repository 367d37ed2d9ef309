"""One agent execution seen three ways: a WebSocket event, a signed webhook at a local
receiver, and an e-mail at a local SMTP server process — through the reference service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from standardwebhooks import Webhook
from tests.events.conftest import Server
from tests.events.realtime_helpers import next_frame, until_ready, ws_client
from tests.notify.conftest import Smtp, smtp  # noqa: F401  (the SMTP server fixture)
from tests.webhooks.receiver import Receiver, running_receiver

from headway import Headway, Settings
from headway.demo.app import create_app
from headway.demo.db import sessionmaker
from headway.demo.models import Post
from headway.demo.seed import seed


@dataclass
class Live:
    hw: Headway
    app: FastAPI
    server: Server
    client: httpx.AsyncClient
    key: str
    receiver: Receiver
    smtp: Smtp


@pytest.fixture
async def live(
    sqlite_url: str,
    tmp_path: Path,
    smtp: Smtp,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Live]:
    for name, value in {
        "HEADWAY_NOTIFY_SMTP_HOST": "127.0.0.1",
        "HEADWAY_NOTIFY_SMTP_PORT": str(smtp.port),
        "HEADWAY_NOTIFY_SMTP_FROM": "headway <noreply@headway.test>",
        "HEADWAY_WEBHOOKS_ALLOW_HOSTS": "127.0.0.1",
        "HEADWAY_WEBHOOKS_RETRY_SCHEDULE": "0,0.2",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(database_url=sqlite_url, data_dir=tmp_path / ".headway", demo_seed=False)
    hw = Headway(settings)
    app = create_app(hw=hw)
    async with running_receiver() as receiver, Server(app) as server:
        keys = {k.tenant: k.key for k in await seed(hw.connections.engine())}
        key = keys["acme"]
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=f"http://{server.base}", headers=headers) as c:
            yield Live(hw, app, server, c, key, receiver, smtp)


async def test_an_execution_reaches_websocket_webhook_and_email(live: Live) -> None:
    me = (await live.client.get("/api/v2/me")).json()
    tenant = me["tenant"]["id"]
    r = await live.client.post(
        "/api/v1/webhooks/endpoints",
        json={"url": live.receiver.url("/hook"), "event_types": ["execution.*"]},
    )
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    agent = (await live.client.get("/api/v2/agents?limit=1")).json()["data"][0]["id"]

    async with ws_client(live.server, f"channels=tenant.{tenant}&access_token={live.key}") as ws:
        await until_ready(ws)
        r = await live.client.post(f"/api/v1/agents/{agent}/execute", json={"prompt": "hi"})
        assert r.status_code == 202
        execution = r.json()["execution_id"]
        frame = await next_frame(ws)
    assert frame["type"] == "event" and frame["event"] == "AgentExecutionCompleted"
    assert frame["data"]["execution_id"] == execution and frame["data"]["tenant_id"] == tenant

    (hook,) = await live.receiver.wait_for(1, timeout=20)
    payload = Webhook(secret).verify(hook.body, hook.headers)  # raises on a bad signature
    assert payload["type"] == "execution.completed"
    assert payload["data"]["execution_id"] == execution
    assert hook.headers["webhook-id"] == f"msg_execution_{execution}_completed"

    (mail,) = await live.smtp.wait_for(1, timeout=20)
    assert mail["To"].endswith("owner@acme.test")
    assert f"Execution {execution}" in mail["Subject"] and "completed" in mail["Subject"]


async def test_a_failed_execution_alerts_the_user_and_supervisors(live: Live) -> None:
    agent = (await live.client.get("/api/v2/agents?limit=1")).json()["data"][0]["id"]
    r = await live.client.post(f"/api/v1/agents/{agent}/execute", json={"prompt": "x [fail]"})
    execution = r.json()["execution_id"]
    mails = await live.smtp.wait_for(1, timeout=30)
    assert any(f"Execution {execution}" in m["Subject"] for m in mails)
    assert any(m["To"].endswith("owner@acme.test") for m in mails)


async def _views(live: Live, post_id: int) -> int:
    async with sessionmaker(live.hw.connections.engine())() as session:
        count = await session.scalar(select(Post.view_count).where(Post.id == post_id))
    assert count is not None
    return int(count)


async def test_post_views_are_counted_in_batches(live: Live) -> None:
    post_id = (await live.client.get("/api/v2/posts?limit=1")).json()["data"][0]["id"]
    before = await _views(live, post_id)
    for _ in range(5):  # cached answers after the first: every view is still counted
        assert (await live.client.get(f"/api/v2/posts/{post_id}")).status_code == 200
    await live.hw.events.drain()
    views = live.app.state.views
    assert sum(views.pending.values()) == 5  # held in memory, not one UPDATE per read
    assert await views.flush() == 5
    assert await _views(live, post_id) == before + 5
