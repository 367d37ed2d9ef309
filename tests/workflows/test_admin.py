"""The admin endpoints (``/admin/workflows/...``): every tenant, behind the admin token."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from headway import Headway
from headway.workflows import Workflows, approval
from headway.workflows.settings import WorkflowsSettings

TOKEN = "admin-token-for-tests-0123456789"


async def test_admin_endpoints(tmp_path: Path) -> None:
    hw = Headway(data_dir=tmp_path, jobs_url="memory://", admin_token=TOKEN)
    flows = hw.add(Workflows(hw, "memory://", settings=WorkflowsSettings(sweep_interval=0)))

    @hw.jobs.task(name="t.a", retries=0)
    async def a(x: int) -> int:
        return x

    flow = flows.chain("adm", a, approval("ok"))
    app = FastAPI()
    hw.install(app)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with app.router.lifespan_context(app):
        first = await flows.start(flow, 1, tenant="t1")
        second = await flows.start(flow, 2, tenant="t2")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/admin/workflows/runs")).status_code == 401
            r = await client.get("/admin/workflows/runs", headers=auth)
            assert [run["id"] for run in r.json()["runs"]] == [second.id, first.id]
            r = await client.get("/admin/workflows/runs?tenant=t1", headers=auth)
            assert [run["id"] for run in r.json()["runs"]] == [first.id]
            r = await client.get(f"/admin/workflows/runs/{first.id}", headers=auth)
            assert r.json()["steps"][0]["state"] == "queued" and r.json()["spec"]["name"] == "adm"
            r = await client.get("/admin/workflows/runs?state=bogus", headers=auth)
            assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
            assert (await client.get("/admin/workflows/runs/nope", headers=auth)).status_code == 404
            r = await client.post(f"/admin/workflows/runs/{second.id}/cancel", headers=auth)
            assert r.json() == {"cancelled": True}
            r = await client.get("/admin/workflows/approvals?state=all", headers=auth)
            assert r.status_code == 400
            r = await client.get("/admin/workflows/approvals", headers=auth)
            assert r.json() == {"approvals": []}
            r = await client.get("/admin/workflows", headers=auth)
            assert [w["name"] for w in r.json()["workflows"]] == ["adm"]
            r = await client.post("/admin/workflows/sweep", headers=auth)
            assert r.json() == {"runs_checked": 1}
