"""The workflow store contract, on every backend (memory, SQLite, Redis, PostgreSQL)."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.conftest import backend_params
from tests.workflows.conftest import STORES

from headway.workflows import ApprovalRecord, RunRecord, StepRecord, WorkflowBackend
from headway.workflows import constants as c
from headway.workflows.base import StepMove

pytestmark = pytest.mark.parametrize("backend", backend_params(*STORES))

BIG = 2**62 + 1  # a float would lose it


def new_run(run_id: str, tenant: str | None = "t1", created: float | None = None) -> RunRecord:
    run = RunRecord(
        run_id,
        "flow",
        {"name": "flow", "steps": [{"name": "a"}, {"name": "b"}]},
        input={"n": BIG, "nested": [1, {"x": None}], "text": "é"},
        tenant=tenant,
        user_id="u1",
        created_at=time.time() if created is None else created,
    )
    run.steps["a"] = StepRecord("a", c.TASK, "tasks.a", 0)
    run.steps["b"] = StepRecord("b", c.APPROVAL, None, 1)
    run.steps["a:compensate"] = StepRecord("a:compensate", c.COMPENSATION, "tasks.undo", 0)
    return run


def new_approval(approval_id: str, tenant: str | None = "t1", expires: float | None = None):
    now = time.time()
    return ApprovalRecord(
        approval_id, "r1", "b", tenant, ["u1", "u2"], "admin", created_at=now,
        expires_at=expires, workflow="flow",
    )  # fmt: skip


async def move(store: WorkflowBackend, run_id: str, step: str, frm, to, fields=None, alive=True):
    return await store.move_step(
        run_id, step, from_states=frm, to_state=to, fields=fields or {},
        run_states=c.ACTIVE_RUN if alive else None,
    )  # fmt: skip


async def test_run_round_trips_exactly(store: WorkflowBackend) -> None:
    run = new_run("r1")
    await store.create_run(run)
    got = await store.get_run("r1")
    assert got is not None
    assert got.input == run.input and got.input["n"] == BIG
    assert got.spec == run.spec
    assert (got.workflow, got.tenant, got.user_id, got.state) == ("flow", "t1", "u1", c.RUNNING)
    assert got.created_at == pytest.approx(run.created_at)
    assert set(got.steps) == {"a", "b", "a:compensate"}
    assert got.steps["a"].kind == c.TASK and got.steps["a"].task == "tasks.a"
    assert got.steps["b"].kind == c.APPROVAL and got.steps["b"].position == 1
    assert all(s.state == c.PENDING for s in got.steps.values())
    assert await store.get_run("missing") is None


async def test_move_step_is_a_compare_and_set(store: WorkflowBackend) -> None:
    await store.create_run(new_run("r1"))
    assert not await move(store, "r1", "a", [c.QUEUED], c.SUCCEEDED)
    fields = {"job_id": "j1", "queue": "workflows", "queued_at": 12.5}
    assert await move(store, "r1", "a", [c.PENDING], c.QUEUED, fields)
    result = {"big": BIG, "list": [1.5, "x", None, True]}
    done = {"result": result, "attempts": 3, "finished_at": 13.0}
    assert await move(store, "r1", "a", [c.QUEUED], c.SUCCEEDED, done)
    step = (await store.get_run("r1")).steps["a"]  # type: ignore[union-attr]
    assert step.state == c.SUCCEEDED
    assert step.result == result and step.attempts == 3
    assert (step.job_id, step.queue, step.queued_at) == ("j1", "workflows", 12.5)  # kept
    assert not await move(store, "r1", "missing", [c.PENDING], c.QUEUED)
    assert not await move(store, "nope", "a", [c.SUCCEEDED], c.QUEUED)


async def test_move_step_respects_the_run_state(store: WorkflowBackend) -> None:
    await store.create_run(new_run("r1"))
    assert await store.move_run("r1", from_states=[c.RUNNING], to_state=c.CANCELLED, fields={})
    assert not await move(store, "r1", "a", [c.PENDING], c.QUEUED)
    assert await move(store, "r1", "a", [c.PENDING], c.SKIPPED, alive=False)
    run = await store.get_run("r1")
    assert run is not None and run.steps["a"].state == c.SKIPPED


async def test_concurrent_moves_have_one_winner(store: WorkflowBackend) -> None:
    await store.create_run(new_run("r1"))
    wins = await asyncio.gather(
        *(move(store, "r1", "a", [c.PENDING], c.QUEUED, {"job_id": f"j{i}"}) for i in range(20))
    )
    assert sum(wins) == 1
    run = await store.get_run("r1")
    assert run is not None and run.steps["a"].job_id == f"j{wins.index(True)}"


async def test_move_run_and_active_runs(store: WorkflowBackend) -> None:
    await store.create_run(new_run("r1"))
    await store.create_run(new_run("r2"))
    assert sorted(await store.active_runs(10)) == ["r1", "r2"]
    fields = {"output": {"n": BIG}, "error": None, "finished_at": 99.0}
    assert await store.move_run("r1", from_states=[c.RUNNING], to_state=c.COMPLETED, fields=fields)
    assert not await store.move_run("r1", from_states=[c.RUNNING], to_state=c.FAILED, fields={})
    run = await store.get_run("r1")
    assert run is not None
    assert (run.state, run.output, run.finished_at) == (c.COMPLETED, {"n": BIG}, 99.0)
    assert await store.active_runs(10) == ["r2"]


async def test_list_runs_newest_first_by_tenant_and_state(store: WorkflowBackend) -> None:
    for i in range(5):
        await store.create_run(new_run(f"r{i}", tenant="t1" if i % 2 else "t2", created=100 + i))
    await store.move_run("r3", from_states=[c.RUNNING], to_state=c.FAILED, fields={})
    every = await store.list_runs(tenant=None, state=None, limit=10, offset=0)
    assert [r.id for r in every] == ["r4", "r3", "r2", "r1", "r0"]
    assert set(every[0].steps) == {"a", "b", "a:compensate"}
    t1 = await store.list_runs(tenant="t1", state=None, limit=10, offset=0)
    assert [r.id for r in t1] == ["r3", "r1"]
    running = await store.list_runs(tenant="t1", state=c.RUNNING, limit=10, offset=0)
    assert [r.id for r in running] == ["r1"]
    page = await store.list_runs(tenant=None, state=None, limit=2, offset=1)
    assert [r.id for r in page] == ["r3", "r2"]


async def test_approvals_round_trip_and_list(store: WorkflowBackend) -> None:
    await store.create_approval(new_approval("a1", expires=time.time() + 60))
    await store.create_approval(new_approval("a2", tenant="t2"))
    got = await store.get_approval("a1")
    assert got is not None
    assert (got.run_id, got.step, got.tenant, got.role) == ("r1", "b", "t1", "admin")
    assert got.approvers == ["u1", "u2"] and got.state == c.APPROVAL_PENDING
    assert got.expires_at is not None and got.expires_at > time.time()
    assert await store.get_approval("nope") is None
    assert await store.pending_approvals() == 2
    pending = await store.list_approvals(tenant=None, state=c.APPROVAL_PENDING, limit=10, offset=0)
    assert {a.id for a in pending} == {"a1", "a2"}
    mine = await store.list_approvals(tenant="t2", state=None, limit=10, offset=0)
    assert [a.id for a in mine] == ["a2"]


async def test_decide_approval_once(store: WorkflowBackend) -> None:
    await store.create_approval(new_approval("a1", expires=time.time() + 60))

    async def decide(i: int) -> bool:
        return await store.decide_approval(
            "a1", to_state=c.APPROVED, by=f"u{i}", at=time.time(), comment="ok", unexpired=True
        )

    wins = await asyncio.gather(*(decide(i) for i in range(20)))
    assert sum(wins) == 1
    got = await store.get_approval("a1")
    assert got is not None and got.state == c.APPROVED
    assert got.decided_by == f"u{wins.index(True)}" and got.comment == "ok"
    assert await store.pending_approvals() == 0
    left = await store.list_approvals(tenant="t1", state=c.APPROVAL_PENDING, limit=5, offset=0)
    assert left == []


async def test_an_expired_approval_cannot_be_approved(store: WorkflowBackend) -> None:
    await store.create_approval(new_approval("a1", expires=time.time() - 1))
    now = time.time()
    assert not await store.decide_approval(
        "a1", to_state=c.APPROVED, by="u1", at=now, comment=None, unexpired=True
    )
    assert await store.decide_approval(
        "a1", to_state=c.EXPIRED, by=None, at=now, comment=None, unexpired=False
    )
    got = await store.get_approval("a1")
    assert got is not None and got.state == c.EXPIRED and got.decided_by is None


async def test_move_step_requires_other_steps_states(store: WorkflowBackend) -> None:
    await store.create_run(new_run("r1"))
    needs_a = {"a": [c.SUCCEEDED]}
    assert not await store.move_step(
        "r1", "b", from_states=[c.PENDING], to_state=c.WAITING, fields={},
        run_states=c.ACTIVE_RUN, requires=needs_a,
    )  # fmt: skip
    await move(store, "r1", "a", [c.PENDING], c.SUCCEEDED)
    assert await store.move_step(
        "r1", "b", from_states=[c.PENDING], to_state=c.WAITING, fields={"approval_id": "x"},
        run_states=c.ACTIVE_RUN, requires=needs_a,
    )  # fmt: skip


async def test_move_steps_applies_in_order_and_returns_the_run(store: WorkflowBackend) -> None:
    await store.create_run(new_run("r1"))
    await move(store, "r1", "a", [c.PENDING], c.QUEUED)
    moves = [
        StepMove("a", [c.QUEUED], c.SUCCEEDED, {"result": [BIG]}, c.ACTIVE_RUN),
        StepMove("b", [c.PENDING], c.WAITING, {"approval_id": "ap"}, c.ACTIVE_RUN,
                 {"a": [c.SUCCEEDED]}),  # sees the move before it
        StepMove("a:compensate", [c.QUEUED], c.SUCCEEDED),  # does not apply
    ]  # fmt: skip
    applied, run = await store.move_steps("r1", moves)
    assert applied == [True, True, False]
    assert run is not None and run.steps["a"].result == [BIG]
    assert (run.steps["b"].state, run.steps["b"].approval_id) == (c.WAITING, "ap")
    again, run = await store.move_steps("r1", moves)  # delivered twice: nothing applies
    assert again == [False, False, False] and run is not None
    assert await store.move_steps("nope", moves[:1]) == ([False], None)


async def test_delete_runs_removes_old_ended_runs_and_their_approvals(
    store: WorkflowBackend,
) -> None:
    for i in range(4):
        await store.create_run(new_run(f"r{i}", tenant="t1", created=100 + i))
    await move(store, "r0", "b", [c.PENDING], c.WAITING, {"approval_id": "ap0"})
    done = {"error": None, "finished_at": 200.0}
    await store.move_run("r0", from_states=[c.RUNNING], to_state=c.COMPLETED, fields=done)
    await store.move_run("r1", from_states=[c.RUNNING], to_state=c.FAILED, fields=done)
    late = {"error": None, "finished_at": 900.0}
    await store.move_run("r2", from_states=[c.RUNNING], to_state=c.COMPLETED, fields=late)
    approval = new_approval("ap0")
    approval.run_id = "r0"
    await store.create_approval(approval)
    assert await store.delete_runs(500.0, limit=1) == 1
    assert await store.delete_runs(500.0, limit=10) == 1
    assert await store.delete_runs(500.0, limit=10) == 0
    left = await store.list_runs(tenant="t1", state=None, limit=10, offset=0)
    assert [r.id for r in left] == ["r3", "r2"]  # running, and finished after the cutoff
    assert await store.get_run("r0") is None and await store.get_approval("ap0") is None
    assert await store.list_approvals(tenant=None, state=None, limit=10, offset=0) == []
    assert await store.pending_approvals() == 0
