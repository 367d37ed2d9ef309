"""Agent executions: 202 Accepted, a job moves the Execution to completed or failed."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.demo.conftest import Demo


async def _wait_for(demo: Demo, execution_id: int, states: set[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(200):  # up to 10 s
        r = await demo.client.get(f"/api/v1/executions/{execution_id}", headers=demo.auth())
        assert r.status_code == 200
        body = r.json()
        if body["status"] in states:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"execution stuck in {body.get('status')}: {body}")


async def _agent_id(demo: Demo, tenant: str = "acme") -> int:
    r = await demo.client.get("/api/v2/agents?limit=1", headers=demo.auth(tenant))
    return int(r.json()["data"][0]["id"])


async def test_execute_answers_202_and_the_job_completes(demo: Demo) -> None:
    agent = await _agent_id(demo)
    r = await demo.client.post(
        f"/api/v1/agents/{agent}/execute", json={"prompt": "hello world"}, headers=demo.auth()
    )
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "pending" and isinstance(body["execution_id"], int)
    # SQLite (the app's file) and PostgreSQL: the row and its job share one transaction
    assert demo.hw.jobs.transactional
    assert r.headers["location"] == f"/api/v1/executions/{body['execution_id']}"
    done = await _wait_for(demo, body["execution_id"], {"completed", "failed"})
    assert done["status"] == "completed"
    assert done["output"] == {"text": done["output"]["text"], "tokens": 2}
    assert done["output"]["text"].endswith("dlrow olleh")
    assert done["progress"] == 100 and done["attempts"] == 1
    assert done["started_at"] and done["finished_at"]
    # the worker acknowledges in batches: the job may still read "running" for a moment
    result = await demo.hw.jobs.handle(body["job_id"]).result(timeout=5)
    assert result == done["output"]
    job = await demo.hw.jobs.get(body["job_id"])
    assert job is not None and job.state == "succeeded" and job.tenant is not None


async def test_a_failing_execution_lands_in_the_failed_store(demo: Demo) -> None:
    agent = await _agent_id(demo)
    r = await demo.client.post(
        f"/api/v1/agents/{agent}/execute", json={"prompt": "boom [fail]"}, headers=demo.auth()
    )
    body = r.json()
    done = await _wait_for(demo, body["execution_id"], {"completed", "failed"})
    assert done["status"] == "failed"
    assert "SimulatedModelError" in done["error"]
    assert done["attempts"] == 3
    # the failure hook marks the row first; the worker acknowledges in batches just after
    for _ in range(100):
        failed = await demo.hw.jobs.failed()
        if body["job_id"] in [job.id for job in failed]:
            break
        await asyncio.sleep(0.05)
    assert body["job_id"] in [job.id for job in failed]


async def test_executions_are_tenant_scoped(demo: Demo) -> None:
    acme_agent = await _agent_id(demo, "acme")
    r = await demo.client.post(
        f"/api/v1/agents/{acme_agent}/execute", json={"prompt": "x"}, headers=demo.auth("globex")
    )
    assert r.status_code == 404
    r = await demo.client.post(
        f"/api/v1/agents/{acme_agent}/execute", json={"prompt": "x"}, headers=demo.auth()
    )
    execution_id = r.json()["execution_id"]
    r = await demo.client.get(f"/api/v1/executions/{execution_id}", headers=demo.auth("globex"))
    assert r.status_code == 404


async def test_bad_execute_bodies_are_422(demo: Demo) -> None:
    agent = await _agent_id(demo)
    for body in ({}, {"prompt": ""}, {"prompt": "a\x00"}, {"prompt": "ok", "extra": 1}):
        r = await demo.client.post(
            f"/api/v1/agents/{agent}/execute", json=body, headers=demo.auth()
        )
        assert r.status_code == 422, body
