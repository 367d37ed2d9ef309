"""Human approval steps: the run pauses, one decision continues or stops it, never two."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from tests.conftest import backend_params
from tests.workflows.conftest import STORES, Running, eventually

from headway.workflows import (
    ApprovalAlreadyDecided,
    ApprovalConflict,
    ApprovalExpired,
    ApprovalForbidden,
    ApprovalNotFound,
    ApprovalRecord,
    approval,
)
from headway.workflows import constants as c

pytestmark = pytest.mark.parametrize("backend", backend_params(*STORES))


def declare(env: Running, **approval_options: Any) -> dict[str, int]:
    calls: dict[str, int] = {}

    @env.hub.jobs.task(name="t.draft", retries=0)
    async def draft(topic: str) -> str:
        calls["draft"] = calls.get("draft", 0) + 1
        return f"draft about {topic}"

    @env.hub.jobs.task(name="t.publish", retries=0)
    async def publish(text: str) -> dict[str, str]:
        calls["publish"] = calls.get("publish", 0) + 1
        return {"published": text}

    env.flows.chain("post", draft, approval("review", **approval_options), publish)
    return calls


async def waiting_approval(env: Running, tenant: str = "acme") -> tuple[str, ApprovalRecord]:
    run = await env.flows.start("post", "cats", tenant=tenant, user_id="u0")

    async def paused() -> bool:
        return bool(await env.flows.approvals(tenant=tenant))

    await eventually(paused)
    assert (await env.flows.get(run.id)).state == c.WAITING
    (pending,) = await env.flows.approvals(tenant=tenant)
    return run.id, pending


async def test_approve_continues_the_run(env: Running) -> None:
    calls = declare(env, approvers=["u1"], role="editor", expires_in=60)
    requested: list[tuple[ApprovalRecord, Any]] = []
    env.flows.on_approval_requested(lambda a, run: requested.append((a, run)))
    await env.hub.start()
    env.start_worker()
    run_id, pending = await waiting_approval(env)
    assert (pending.run_id, pending.step, pending.tenant) == (run_id, "review", "acme")
    assert pending.approvers == ["u1"] and pending.role == "editor"
    assert pending.expires_at is not None and pending.expires_at > time.time() + 50
    assert [(a.id, r.id) for a, r in requested] == [(pending.id, run_id)]
    run = await env.flows.get(run_id)
    assert run.steps["review"].approval_id == pending.id
    assert run.steps["publish"].state == c.PENDING
    await env.flows.approve(pending.id, by="u1", tenant="acme", comment="fine")
    done = await env.flows.wait(run_id, 10)
    assert done.state == c.COMPLETED
    assert done.output == {"published": "draft about cats"}
    assert calls == {"draft": 1, "publish": 1}
    decided = await env.flows.get_approval(pending.id, tenant="acme")
    assert (decided.state, decided.decided_by, decided.comment) == (c.APPROVED, "u1", "fine")
    assert await env.flows.approvals(tenant="acme") == []


async def test_reject_stops_the_run(env: Running) -> None:
    calls = declare(env)
    await env.hub.start()
    env.start_worker()
    run_id, pending = await waiting_approval(env)
    await env.flows.reject(pending.id, by="u9", tenant="acme")
    done = await env.flows.wait(run_id, 10)
    assert done.state == c.FAILED and "rejected by u9" in str(done.error)
    assert done.steps["publish"].state == c.SKIPPED
    assert calls == {"draft": 1}


async def test_concurrent_approvals_continue_the_run_once(env: Running) -> None:
    calls = declare(env)
    await env.hub.start()
    env.start_worker()
    run_id, pending = await waiting_approval(env)
    outcomes = await asyncio.gather(
        *(env.flows.approve(pending.id, by=f"u{i}", tenant="acme") for i in range(10)),
        return_exceptions=True,
    )
    wins = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(wins) == 1
    assert all(isinstance(o, ApprovalAlreadyDecided) for o in outcomes if o not in wins)
    done = await env.flows.wait(run_id, 10)
    await asyncio.sleep(0.1)
    assert done.state == c.COMPLETED and calls == {"draft": 1, "publish": 1}


async def test_a_decided_approval_cannot_be_decided_again(env: Running) -> None:
    declare(env)
    await env.hub.start()
    env.start_worker()
    _, pending = await waiting_approval(env)
    await env.flows.approve(pending.id, by="u1", tenant="acme")
    with pytest.raises(ApprovalAlreadyDecided):
        await env.flows.approve(pending.id, by="u1", tenant="acme")
    with pytest.raises(ApprovalConflict):
        await env.flows.reject(pending.id, by="u1", tenant="acme")


async def test_another_tenants_approval_is_not_found(env: Running) -> None:
    declare(env)
    await env.hub.start()
    env.start_worker()
    run_id, pending = await waiting_approval(env, tenant="acme")
    with pytest.raises(ApprovalNotFound):
        await env.flows.approve(pending.id, by="u1", tenant="globex")
    with pytest.raises(ApprovalNotFound):
        await env.flows.approve("no-such-approval", by="u1", tenant="acme")
    assert await env.flows.approvals(tenant="globex") == []
    assert (await env.flows.get(run_id)).state == c.WAITING


async def test_only_the_listed_approvers_or_role_may_decide(env: Running) -> None:
    declare(env, approvers=["u1"], role="editor")
    await env.hub.start()
    env.start_worker()
    run_id, pending = await waiting_approval(env)
    with pytest.raises(ApprovalForbidden):
        await env.flows.approve(pending.id, by="u2", tenant="acme", roles=["member"])
    await env.flows.approve(pending.id, by="u2", tenant="acme", roles=["editor"])
    assert (await env.flows.wait(run_id, 10)).state == c.COMPLETED


async def test_an_expired_approval_stops_the_run(env: Running) -> None:
    calls = declare(env, expires_in=0.2)
    failed: list[str] = []
    env.flows.on_failed(lambda run: failed.append(run.id))
    await env.hub.start()
    env.start_worker()
    run_id, pending = await waiting_approval(env)
    await asyncio.sleep(0.3)
    with pytest.raises(ApprovalExpired):
        await env.flows.approve(pending.id, by="u1", tenant="acme")
    done = await env.flows.wait(run_id, 10)
    assert done.state == c.FAILED and "expired" in str(done.error)
    with pytest.raises(ApprovalAlreadyDecided):
        await env.flows.approve(pending.id, by="u1", tenant="acme")
    await eventually(lambda: failed)
    assert calls == {"draft": 1} and failed == [run_id]


async def test_the_sweep_expires_overdue_approvals(env: Running) -> None:
    declare(env, expires_in=0.2)
    await env.hub.start()
    env.start_worker()
    run_id, pending = await waiting_approval(env)
    await asyncio.sleep(0.3)
    await env.flows.sweep()
    assert (await env.flows.get(run_id)).state == c.FAILED
    assert (await env.flows.get_approval(pending.id)).state == c.EXPIRED


async def test_cancelling_a_waiting_run_closes_its_approval(env: Running) -> None:
    declare(env)
    await env.hub.start()
    env.start_worker()
    run_id, pending = await waiting_approval(env)
    assert await env.flows.cancel(run_id, tenant="acme")
    assert (await env.flows.get_approval(pending.id)).state == c.APPROVAL_CANCELLED
    with pytest.raises(ApprovalAlreadyDecided):
        await env.flows.approve(pending.id, by="u1", tenant="acme")


async def test_metrics_and_readiness(env: Running) -> None:
    declare(env)
    registry = CollectorRegistry()
    env.flows.register_metrics(registry)
    await env.hub.start()
    env.start_worker()
    run_id, pending = await waiting_approval(env)
    await env.flows.refresh_metrics()
    assert registry.get_sample_value("headway_workflows_approvals_pending") == 1
    ready = await env.flows.check_ready()
    assert ready is not None and ready.ok and ready.detail["approvals_pending"] == 1
    await env.flows.approve(pending.id, by="u1", tenant="acme")
    await env.flows.wait(run_id, 10)
    labels = {"workflow": "post"}
    value = registry.get_sample_value
    await eventually(
        lambda: value("headway_workflows_runs_total", {**labels, "event": "completed"})
    )
    assert value("headway_workflows_runs_total", {**labels, "event": "started"}) == 1
    assert value("headway_workflows_runs_total", {**labels, "event": "completed"}) == 1
    assert value("headway_workflows_approvals_requested_total", labels) == 1
