"""The reference service's workflow routes: a run of agent executions with an approval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.demo.conftest import Demo

from headway import Headway, Settings
from headway.demo.app import create_app
from headway.demo.auth import hash_key, new_key
from headway.demo.db import sessionmaker
from headway.demo.models import ApiKey, Execution, User
from headway.demo.seed import seed
from headway.demo.workflows import register_workflows


@asynccontextmanager
async def service(url: str, tmp_path: Path, review_seconds: float = 3600) -> AsyncIterator[Demo]:
    settings = Settings(database_url=url, data_dir=tmp_path / ".headway", demo_seed=False)
    hw = Headway(settings)
    app = create_app(hw=hw)
    register_workflows(hw, review_seconds=review_seconds)  # create_app's, with this expiry
    async with app.router.lifespan_context(app):
        seeded = await seed(hw.connections.engine())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Demo(app, hw, client, {k.tenant: k.key for k in seeded})


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def demo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Demo]:
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    async with service(str(request.getfixturevalue(fixture)), tmp_path) as running:
        yield running


@pytest.fixture
async def quick(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Demo]:
    """SQLite only, for the error cases."""
    async with service(sqlite_url, tmp_path) as running:
        yield running


async def agent_of(demo: Demo, tenant: str = "acme") -> int:
    r = await demo.client.get("/api/v2/agents?limit=1", headers=demo.auth(tenant))
    return int(r.json()["data"][0]["id"])


async def start(demo: Demo, prompt: str = "write a haiku") -> dict[str, Any]:
    body = {"agent_id": await agent_of(demo), "prompt": prompt}
    r = await demo.client.post("/api/v1/workflows/agent-review/run", json=body, headers=demo.auth())
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/api/v1/workflows/runs/{r.json()['id']}"
    return dict(r.json())


async def run_in(demo: Demo, run_id: str, states: set[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(400):  # up to 20 s
        r = await demo.client.get(f"/api/v1/workflows/runs/{run_id}", headers=demo.auth())
        assert r.status_code == 200
        body = r.json()
        if body["state"] in states:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"run stuck in {body.get('state')}: {body}")


async def pending_approval(demo: Demo, run_id: str) -> dict[str, Any]:
    await run_in(demo, run_id, {"waiting"})
    for _ in range(100):
        r = await demo.client.get("/api/v1/approvals?state=pending", headers=demo.auth())
        found = [a for a in r.json()["data"] if a["run_id"] == run_id]
        if found:
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError("no approval request recorded")


def steps(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in run["steps"]}


async def test_approved_run_executes_both_agent_steps(demo: Demo) -> None:
    run = await start(demo, "hello world")
    assert run["workflow"] == "agent-review" and run["state"] in ("running", "waiting")
    assert [s["name"] for s in run["steps"]] == ["draft", "review", "finalize"]
    approval = await pending_approval(demo, run["id"])
    paused = steps(await run_in(demo, run["id"], {"waiting"}))
    assert paused["draft"]["state"] == "succeeded" and paused["review"]["state"] == "waiting"
    assert paused["finalize"]["state"] == "pending"
    assert approval["step"] == "review" and approval["role"] == "owner"
    assert approval["links"]["approve"] == f"/api/v1/approvals/{approval['id']}/approve"
    r = await demo.client.post(
        approval["links"]["approve"], json={"comment": "ship it"}, headers=demo.auth()
    )
    assert r.status_code == 200, r.text
    done = await run_in(demo, run["id"], {"completed", "failed"})
    assert done["state"] == "completed"
    final = steps(done)
    assert final["finalize"]["state"] == "succeeded"
    # the second execution refined the first one's answer ("Refine: <draft>", reversed)
    assert final["finalize"]["result"]["text"].endswith(":enifeR")
    assert final["draft"]["result"]["text"].endswith("dlrow olleh")
    for name in ("draft", "finalize"):
        execution_id = final[name]["execution_id"]
        r = await demo.client.get(f"/api/v1/executions/{execution_id}", headers=demo.auth())
        assert r.json()["status"] == "completed"
        assert r.json()["input"]["workflow_run"] == run["id"]
    assert done["output"] == final["finalize"]["result"]
    r = await demo.client.get("/api/v1/approvals?state=approved", headers=demo.auth())
    decided = [a for a in r.json()["data"] if a["id"] == approval["id"]]
    assert decided[0]["comment"] == "ship it"


async def test_rejected_run_stops_before_the_second_execution(quick: Demo) -> None:
    run = await start(quick)
    approval = await pending_approval(quick, run["id"])
    r = await quick.client.post(f"/api/v1/approvals/{approval['id']}/reject", headers=quick.auth())
    assert r.status_code == 200
    done = await run_in(quick, run["id"], {"completed", "failed"})
    assert done["state"] == "failed" and "rejected" in done["error"]
    assert steps(done)["finalize"]["state"] == "skipped"


async def test_a_decided_approval_answers_409_and_never_continues_twice(quick: Demo) -> None:
    run = await start(quick)
    approval = await pending_approval(quick, run["id"])
    url = f"/api/v1/approvals/{approval['id']}/approve"
    answers = await asyncio.gather(
        *(quick.client.post(url, headers=quick.auth()) for _ in range(5))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 409, 409, 409, 409]
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {
        "approval_decided"
    }
    await run_in(quick, run["id"], {"completed"})
    async with sessionmaker(quick.hw.connections.engine())() as session:
        rows = (await session.scalars(select(Execution))).all()
    finals = [e for e in rows if e.input.get("workflow_run") == run["id"]]
    assert sorted(e.input["step"] for e in finals) == ["draft", "finalize"]  # finalize ran once
    r = await quick.client.post(f"/api/v1/approvals/{approval['id']}/reject", headers=quick.auth())
    assert r.status_code == 409


async def test_an_expired_approval_answers_409(sqlite_url: str, tmp_path: Path) -> None:
    async with service(sqlite_url, tmp_path, review_seconds=0.3) as demo:
        run = await start(demo)
        approval = await pending_approval(demo, run["id"])
        await asyncio.sleep(0.4)
        r = await demo.client.post(
            f"/api/v1/approvals/{approval['id']}/approve", headers=demo.auth()
        )
        assert r.status_code == 409 and r.json()["error"]["code"] == "approval_expired"
        done = await run_in(demo, run["id"], {"failed"})
        assert "expired" in done["error"]


async def test_another_tenant_gets_404(quick: Demo) -> None:
    run = await start(quick)
    approval = await pending_approval(quick, run["id"])
    other = quick.auth("globex")
    r = await quick.client.get(f"/api/v1/workflows/runs/{run['id']}", headers=other)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await quick.client.post(f"/api/v1/approvals/{approval['id']}/approve", headers=other)
    assert r.status_code == 404
    r = await quick.client.post(f"/api/v1/workflows/runs/{run['id']}/cancel", headers=other)
    assert r.status_code == 404
    r = await quick.client.get("/api/v1/approvals", headers=other)
    assert r.status_code == 200 and r.json()["data"] == []
    body = {"agent_id": await agent_of(quick, "acme"), "prompt": "x"}
    r = await quick.client.post("/api/v1/workflows/agent-review/run", json=body, headers=other)
    assert r.status_code == 404  # acme's agent
    assert (await run_in(quick, run["id"], {"waiting"}))["state"] == "waiting"


async def test_a_member_may_not_approve(quick: Demo) -> None:
    run = await start(quick)
    approval = await pending_approval(quick, run["id"])
    key = new_key()
    async with sessionmaker(quick.hw.connections.engine())() as session:
        member = await session.scalar(select(User).where(User.email == "dev@acme.test"))
        assert member is not None
        session.add(
            ApiKey(tenant_id=member.tenant_id, user_id=member.id, name="member",
                   prefix=key[:10], key_hash=hash_key(key))
        )  # fmt: skip
        await session.commit()
    url = f"/api/v1/approvals/{approval['id']}/approve"
    r = await quick.client.post(url, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert (await quick.client.post(url, headers=quick.auth())).status_code == 200


async def test_cancel_and_bad_input(quick: Demo) -> None:
    run = await start(quick)
    await pending_approval(quick, run["id"])
    r = await quick.client.post(f"/api/v1/workflows/runs/{run['id']}/cancel", headers=quick.auth())
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert steps(r.json())["review"]["state"] == "cancelled"
    r = await quick.client.post(f"/api/v1/workflows/runs/{run['id']}/cancel", headers=quick.auth())
    assert r.status_code == 409
    auth = quick.auth()
    agent = await agent_of(quick)
    bad = [
        ("/api/v1/workflows/nope/run", {"agent_id": agent, "prompt": "x"}, 404),
        ("/api/v1/workflows/agent-review/run", {"agent_id": agent}, 422),
        ("/api/v1/workflows/agent-review/run", {"agent_id": 0, "prompt": "x"}, 422),
        ("/api/v1/workflows/agent-review/run", {"agent_id": agent, "prompt": "x", "y": 1}, 422),
        ("/api/v1/approvals/nope/approve", None, 404),
        ("/api/v1/approvals/bad%20id/approve", None, 422),
    ]
    for url, body, status in bad:
        r = await quick.client.post(url, json=body, headers=auth)
        assert r.status_code == status, (url, r.text)
        assert "error" in r.json()
    r = await quick.client.get("/api/v1/approvals?state=bogus", headers=auth)
    assert r.status_code == 422
    r = await quick.client.get("/api/v1/workflows/runs/nope", headers=auth)
    assert r.status_code == 404
    r = await quick.client.get("/api/v1/workflows/runs?state=cancelled", headers=auth)
    assert [x["id"] for x in r.json()["data"]] == [run["id"]]
    r = await quick.client.get("/api/v1/workflows/runs?state=running", headers=auth)
    assert r.json()["data"] == []
    r = await quick.client.get("/api/v1/workflows/runs", headers=quick.auth("globex"))
    assert r.json()["data"] == []
    r = await quick.client.get("/api/v1/workflows/runs?state=bogus", headers=auth)
    assert r.status_code == 422
    r = await quick.client.get("/api/v1/workflows", headers=auth)
    assert [w["name"] for w in r.json()["data"]] == ["agent-review"]
    r = await quick.client.get("/api/v1/workflows")
    assert r.status_code == 401
