"""The reference service's channels: API keys decide who joins what; no tenant ever
joins another tenant's channel; its events reach their channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.events.conftest import Server, eventually
from tests.events.realtime_helpers import next_frame, sse_client, until_ready, ws_client

from headway import Headway, Settings
from headway.demo.app import create_app
from headway.demo.db import sessionmaker
from headway.demo.events import (
    AgentExecutionCompleted,
    ApprovalRequested,
    PostUpdated,
    WorkflowCompleted,
)
from headway.demo.models import Agent, Post, Tenant, User
from headway.demo.seed import seed


@dataclass
class Tenancy:
    key: str
    tenant: int
    owner: int
    member: int
    agent: int
    post: int


@dataclass
class Demo:
    hw: Headway
    server: Server
    acme: Tenancy
    globex: Tenancy


async def _tenancy(hw: Headway, slug: str, key: str) -> Tenancy:
    async with sessionmaker(hw.connections.engine())() as s:
        tenant = await s.scalar(select(Tenant.id).where(Tenant.slug == slug))
        users = (await s.execute(select(User.id, User.role).where(User.tenant_id == tenant))).all()
        agent = await s.scalar(select(Agent.id).where(Agent.tenant_id == tenant).limit(1))
        post = await s.scalar(select(Post.id).where(Post.tenant_id == tenant).limit(1))
    owner = next(u for u, role in users if role == "owner")
    member = next(u for u, role in users if role != "owner")
    assert tenant and agent and post
    return Tenancy(key, tenant, owner, member, agent, post)


@pytest.fixture
async def demo(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Demo]:
    settings = Settings(
        database_url=sqlite_url,
        data_dir=tmp_path / ".headway",
        demo_seed=False,
        jobs_url="memory://",
        inprocess_worker=False,
    )
    hw = Headway(settings)
    app = create_app(hw=hw)  # installs the API-key channel authorizer and its router
    async with Server(app) as server:
        keys = {k.tenant: k.key for k in await seed(hw.connections.engine())}
        acme = await _tenancy(hw, "acme", keys["acme"])
        globex = await _tenancy(hw, "globex", keys["globex"])
        yield Demo(hw, server, acme, globex)


async def _joins(demo: Demo, key: str | None, channels: str) -> bool:
    query = f"channels={channels}" + (f"&access_token={key}" if key else "")
    async with ws_client(demo.server, query) as ws:
        frame = await next_frame(ws)
    return bool(frame["type"] == "ready")


async def test_a_tenant_joins_only_its_own_channels(demo: Demo) -> None:
    a, g = demo.acme, demo.globex
    allowed = [f"tenant.{a.tenant}", f"user.{a.owner}", f"agent.{a.agent}", f"post.{a.post}"]
    for channel in allowed:
        assert await _joins(demo, a.key, channel), channel
    refused = [
        f"tenant.{g.tenant}",
        f"user.{g.owner}",
        f"user.{a.member}",  # another user of the same tenant
        f"agent.{g.agent}",
        f"post.{g.post}",
        f"execution.{g.agent}",
        "agent.99999999",
        "workflow.nope",
        "admin.1",
        f"tenant.{a.tenant}x",
    ]
    for channel in refused:
        assert not await _joins(demo, a.key, channel), channel
    assert not await _joins(demo, a.key, f"tenant.{a.tenant},tenant.{g.tenant}")  # one bad = no
    assert not await _joins(demo, None, f"tenant.{a.tenant}")
    assert not await _joins(demo, "hw_not-a-key", f"tenant.{a.tenant}")


async def test_header_auth_and_sse(demo: Demo) -> None:
    a, g = demo.acme, demo.globex
    headers = {"Authorization": f"Bearer {a.key}"}
    async with httpx.AsyncClient(base_url=f"http://{demo.server.base}", headers=headers) as c:
        assert (await c.get(f"/realtime/sse?channels=tenant.{g.tenant}")).status_code == 403
        mine = (await c.get("/api/v1/realtime/channels")).json()
        assert mine["channels"] == [f"tenant.{a.tenant}", f"user.{a.owner}"]
    async with sse_client(demo.server, f"channels=tenant.{a.tenant}", headers) as sse:
        assert (await sse.next())["event"] == "ready"


async def test_events_reach_their_tenant_only(demo: Demo) -> None:
    a, g = demo.acme, demo.globex
    async with (
        ws_client(demo.server, f"channels=tenant.{a.tenant}&access_token={a.key}") as acme,
        ws_client(demo.server, f"channels=tenant.{g.tenant}&access_token={g.key}") as globex,
        ws_client(demo.server, f"channels=post.{a.post}&access_token={a.key}") as post,
    ):
        for ws in (acme, globex, post):
            await until_ready(ws)
        done = AgentExecutionCompleted(
            tenant_id=a.tenant, agent_id=a.agent, execution_id=1, user_id=a.owner
        )
        await demo.hw.events.dispatch(done)
        await demo.hw.events.dispatch(PostUpdated(tenant_id=a.tenant, post_id=a.post))
        await demo.hw.events.dispatch(
            AgentExecutionCompleted(tenant_id=g.tenant, agent_id=g.agent, execution_id=2)
        )
        got = await next_frame(acme)
        assert got["event"] == "AgentExecutionCompleted" and got["data"]["tenant_id"] == a.tenant
        other = await next_frame(globex)
        assert other["data"]["tenant_id"] == g.tenant  # globex sees only its own event
        assert (await next_frame(post))["event"] == "PostUpdated"
        assert demo.hw.events.connection_counts() == {str(a.tenant): 2, str(g.tenant): 1}


async def test_workflow_hooks_dispatch_the_demo_events(tmp_path: Path) -> None:
    import asyncio

    from headway.demo.realtime import install_workflow_events
    from headway.events import Events, EventsSettings
    from headway.jobs import DEFAULT_QUEUES
    from headway.workflows import Workflows, approval

    hw = Headway(data_dir=tmp_path / ".headway", jobs_url="memory://")
    hw.add(Events(hw, "memory://wf-test", settings=EventsSettings()))
    hw.add(Workflows(hw, "memory://"))
    seen: list[object] = []

    @hw.jobs.task(name="wf.draft", retries=0)
    async def draft(topic: str) -> str:
        return topic

    @hw.events.listener(WorkflowCompleted, ApprovalRequested)
    def record(event: object) -> None:
        seen.append(event)

    install_workflow_events(hw)
    flow = hw.workflows.chain("demo-post", draft, approval("review", approvers=["7"]))
    async with hw:
        worker = hw.jobs.worker(list(DEFAULT_QUEUES), poll_interval=0.01)
        running = asyncio.create_task(worker.run())
        try:
            run = await hw.workflows.start(flow, "hello", tenant="3", user_id="7")
            await eventually(lambda: len(seen) == 1)
            requested = seen[0]
            assert isinstance(requested, ApprovalRequested)
            assert requested.channels() == ["tenant.3", f"workflow.{run.id}", "user.7"]
            await hw.workflows.approve(requested.approval_id, by="7", tenant="3")
            await eventually(lambda: len(seen) == 2)
            done = seen[1]
            assert isinstance(done, WorkflowCompleted)
            assert (done.tenant_id, done.run_id, done.user_id) == (3, run.id, 7)
        finally:
            worker.stop()
            await running
