"""Runs through the real job system: chains, groups, DAGs, retries, failure,
compensation, cancellation, at-least-once completion and the repair sweep."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.conftest import backend_params
from tests.workflows.conftest import Running, eventually

from headway.jobs import Backoff
from headway.workflows import RunNotFound, dag, step
from headway.workflows import constants as c

pytestmark = pytest.mark.parametrize("backend", backend_params("memory", "sqlite", "redis"))


def add_tasks(env: Running, calls: dict[str, int] | None = None) -> dict[str, Any]:
    jobs, seen = env.hub.jobs, calls if calls is not None else {}

    def count(name: str) -> None:
        seen[name] = seen.get(name, 0) + 1

    @jobs.task(name="t.inc", retries=0)
    async def inc(x: int) -> int:
        count("inc")
        return x + 1

    @jobs.task(name="t.total", retries=0)
    async def total(xs: list[int]) -> int:
        count("total")
        return sum(xs)

    @jobs.task(name="t.show", retries=0)
    async def show(value: Any) -> Any:
        count("show")
        return {"got": value}

    @jobs.task(name="t.boom", retries=1, backoff=Backoff(base=0.01, factor=1, cap=0.01))
    async def boom(x: Any) -> None:
        count("boom")
        raise RuntimeError("boom")

    return {"inc": inc, "total": total, "show": show, "boom": boom}


async def test_chain_passes_each_result_to_the_next_step(env: Running) -> None:
    t = add_tasks(env)
    completed: list[str] = []
    env.flows.on_completed(lambda run: completed.append(run.id))
    flow = env.flows.chain("c", t["inc"], t["inc"], t["inc"])
    await env.hub.start()
    env.start_worker()
    run = await env.flows.start(flow, 1, tenant="acme", user_id=7)
    assert (run.tenant, run.user_id, run.input) == ("acme", "7", 1)
    done = await env.flows.wait(run.id, 10)
    assert done.state == c.COMPLETED and done.output == 4
    assert [done.steps[n].result for n in ("inc", "inc-2", "inc-3")] == [2, 3, 4]
    for rec in done.steps.values():
        assert rec.state == c.SUCCEEDED and rec.attempts == 1 and rec.job_id
        assert rec.queue == "workflows"
        assert rec.queued_at is not None and rec.finished_at is not None
        assert rec.finished_at >= rec.queued_at
        # started_at is the job system's clock (Redis TIME on Redis): close, not ordered
        assert rec.started_at is not None and abs(rec.started_at - rec.queued_at) < 5
    assert done.finished_at is not None
    await eventually(lambda: completed)  # hooks fire just after the state is stored
    assert completed == [run.id]

    async def starts_stored() -> bool:  # copied from the jobs once the run ended
        stored = await env.flows.backend.get_run(run.id)
        return stored is not None and all(s.started_at for s in stored.steps.values())

    await eventually(starts_stored)


async def test_group_join_receives_every_result_in_order(env: Running) -> None:
    t = add_tasks(env)
    flow = env.flows.group("g", [t["inc"], t["show"], t["inc"]], then=t["show"])
    await env.hub.start()
    env.start_worker()
    run = await env.flows.start(flow, 10)
    done = await env.flows.wait(run.id, 10)
    assert done.state == c.COMPLETED
    assert done.output == {"got": [11, {"got": 10}, 11]}


async def test_dag_step_with_several_dependencies_gets_a_dict(env: Running) -> None:
    t = add_tasks(env)
    flow = env.flows.define(
        dag(
            "d",
            {
                "root": t["inc"],
                "left": step(t["inc"], after="root"),
                "right": step(t["show"], after="root"),
                "join": step(t["show"], after=["left", "right"]),
            },
        )
    )
    await env.hub.start()
    env.start_worker()
    done = await env.flows.wait((await env.flows.start("d", 0)).id, 10)
    assert done.output == {"got": {"left": 2, "right": {"got": 1}}}
    assert flow.name == "d"


async def test_failure_after_retries_fails_the_run_and_skips_the_rest(env: Running) -> None:
    calls: dict[str, int] = {}
    t = add_tasks(env, calls)
    failed: list[Any] = []
    env.flows.on_failed(failed.append)
    flow = env.flows.chain("f", t["inc"], t["boom"], t["inc"])
    await env.hub.start()
    env.start_worker()
    done = await env.flows.wait((await env.flows.start(flow, 1)).id, 10)
    assert done.state == c.FAILED
    assert "boom" in str(done.error)
    assert done.steps["boom"].state == c.STEP_FAILED
    assert done.steps["boom"].attempts == 2  # the task's retry policy: 1 retry
    assert "RuntimeError: boom" in str(done.steps["boom"].error)
    assert done.steps["inc-2"].state == c.SKIPPED
    assert calls == {"inc": 1, "boom": 2}
    await eventually(lambda: failed)
    assert [r.id for r in failed] == [done.id]


async def test_a_failed_step_runs_its_compensation(env: Running) -> None:
    t = add_tasks(env)
    undone: list[Any] = []

    @env.hub.jobs.task(name="t.undo", retries=0)
    async def undo(data: dict[str, Any]) -> str:
        undone.append(data)
        return "undone"

    flow = env.flows.chain("comp", t["inc"], step(t["boom"], compensate=undo), t["inc"])
    await env.hub.start()
    env.start_worker()
    run = await env.flows.start(flow, 1)
    done = await env.flows.wait(run.id, 10)
    assert done.state == c.FAILED
    assert done.steps["boom:compensate"].state == c.SUCCEEDED
    assert done.steps["boom:compensate"].result == "undone"
    assert undone == [{"input": 2, "error": done.steps["boom"].error, "run_id": run.id}]


async def test_cancel_a_run_whose_steps_are_queued(env: Running) -> None:
    calls: dict[str, int] = {}
    t = add_tasks(env, calls)
    cancelled: list[str] = []
    env.flows.on_cancelled(lambda run: cancelled.append(run.id))
    flow = env.flows.group("gc", [t["inc"], t["inc"]], then=t["total"])
    await env.hub.start()
    run = await env.flows.start(flow, 1)  # no worker yet: both members are queued
    assert {run.steps[n].state for n in ("inc", "inc-2")} == {c.QUEUED}
    assert await env.flows.cancel(run.id)
    assert not await env.flows.cancel(run.id)  # already ended
    env.start_worker()
    await asyncio.sleep(0.3)
    after = await env.flows.get(run.id)
    assert after.state == c.CANCELLED
    assert after.steps["inc"].state == c.STEP_CANCELLED
    assert after.steps["total"].state == c.SKIPPED
    assert calls == {}  # queued steps never ran
    job = await env.hub.jobs.get(str(after.steps["inc"].job_id))
    assert job is not None and job.state == "cancelled"
    assert cancelled == [run.id]


async def test_cancel_while_a_step_runs_stops_the_chain(env: Running) -> None:
    release, started = asyncio.Event(), asyncio.Event()
    calls: dict[str, int] = {}
    t = add_tasks(env, calls)

    @env.hub.jobs.task(name="t.slow", retries=0)
    async def slow(x: int) -> int:
        started.set()
        await release.wait()
        return x

    flow = env.flows.chain("slow", slow, t["inc"])
    await env.hub.start()
    env.start_worker(lease=0.6)  # the heartbeat (every lease/3) carries cancel requests
    run = await env.flows.start(flow, 1)
    await asyncio.wait_for(started.wait(), 10)
    assert (await env.flows.get(run.id)).steps["slow"].state == c.STEP_RUNNING
    assert await env.flows.cancel(run.id)
    job_id = str((await env.flows.get(run.id)).steps["slow"].job_id)

    async def job_cancelled() -> bool:
        job = await env.hub.jobs.get(job_id)
        return job is not None and job.state == "cancelled"

    await eventually(job_cancelled)  # the running job was cancelled through the jobs API
    assert not release.is_set()
    after = await env.flows.get(run.id)
    assert after.state == c.CANCELLED and after.steps["slow"].state == c.STEP_CANCELLED
    assert after.steps["inc"].state == c.SKIPPED
    assert "inc" not in calls


async def test_a_completion_delivered_twice_starts_the_next_step_once(env: Running) -> None:
    t = add_tasks(env)
    flow = env.flows.chain("twice", t["inc"], t["inc"], t["inc"])
    await env.hub.start()
    run = await env.flows.start(flow, 1)  # no worker: "inc" is queued
    engine, submitted = env.flows.engine, []
    real_submit = engine.submit

    async def submit(run: Any, name: str, *args: Any) -> None:
        submitted.append(name)
        await real_submit(run, name, *args)

    engine.submit = submit  # type: ignore[method-assign]
    job = await env.hub.jobs.get(str(run.steps["inc"].job_id))
    assert job is not None
    plan = job.meta[c.META_KEY]["next"]  # what the job's success hook claims with
    assert [p["step"] for p in plan] == ["inc-2"]
    await asyncio.gather(
        *(engine.step_succeeded(run.id, "inc", 2, 1, plan=plan) for _ in range(5)),
        *(engine.step_succeeded(run.id, "inc", 2, 1) for _ in range(5)),  # e.g. the sweep
    )
    assert submitted == ["inc-2"]  # the next step started once
    after = await env.flows.get(run.id)
    assert after.steps["inc"].state == c.SUCCEEDED
    assert after.steps["inc-2"].state == c.QUEUED
    assert after.steps["inc-3"].state == c.PENDING
    stats = await env.hub.jobs.stats()
    assert stats["workflows"]["queued"] == 2  # inc and inc-2, each enqueued once


async def test_the_sweep_advances_runs_whose_job_hooks_were_lost(env: Running) -> None:
    """A worker process that never touched hw.workflows runs the steps without the
    hooks: the sweep (in any process) reads the jobs' outcomes and advances the run."""
    t = add_tasks(env)
    flow = env.flows.chain("lost", t["inc"], t["inc"])
    hooks = env.hub.jobs.hooks
    saved = {k: list(v) for k, v in hooks.items()}
    for v in hooks.values():
        v.clear()
    await env.hub.start()
    env.start_worker()
    run = await env.flows.start(flow, 1)

    async def swept() -> bool:
        await env.flows.sweep()
        return (await env.flows.get(run.id)).state == c.COMPLETED

    await eventually(swept)
    done = await env.flows.get(run.id)
    assert done.output == 3 and done.steps["inc"].attempts == 1
    hooks.update(saved)


async def test_bad_input_and_unknown_runs(env: Running) -> None:
    t = add_tasks(env)
    flow = env.flows.chain("bad", t["inc"])
    await env.hub.start()
    with pytest.raises(TypeError, match="JSON"):
        await env.flows.start(flow, {1, 2})
    with pytest.raises(RunNotFound):
        await env.flows.get("nope")
    run = await env.flows.start(flow, 1, tenant="a")
    with pytest.raises(RunNotFound):
        await env.flows.get(run.id, tenant="b")
    with pytest.raises(RunNotFound):
        await env.flows.cancel(run.id, tenant="b")
    with pytest.raises(ValueError, match="state"):
        await env.flows.runs(state="bogus")


async def test_read_api_lists_runs_by_tenant_and_state(env: Running) -> None:
    t = add_tasks(env)
    flow = env.flows.chain("list", t["inc"])
    await env.hub.start()
    first = await env.flows.start(flow, 1, tenant="a")
    second = await env.flows.start(flow, 1, tenant="b")
    await env.flows.cancel(second.id)
    assert [r.id for r in await env.flows.runs(tenant="a")] == [first.id]
    assert [r.id for r in await env.flows.runs(state=c.CANCELLED)] == [second.id]
    assert [r.id for r in await env.flows.runs(state=c.RUNNING)] == [first.id]
    listed = (await env.flows.runs(tenant="a"))[0].to_dict()
    assert listed["steps"][0]["name"] == "inc" and listed["state"] == c.RUNNING
    assert await env.flows.purge(3600) == 0  # ended just now: kept
    assert await env.flows.purge(0) == 1  # the cancelled one; the running one stays
    assert [r.id for r in await env.flows.runs()] == [first.id]
    with pytest.raises(ValueError):
        await env.flows.purge(-1)


async def test_steps_run_on_the_workflows_queue_or_their_tasks_queue(env: Running) -> None:
    t = add_tasks(env)

    @env.hub.jobs.task(name="t.mail", queue="email", retries=0)
    async def mail(x: int) -> str:
        return f"mailed {x}"

    flow = env.flows.chain("queues", t["inc"], mail, step(t["inc"], queue="low"))
    await env.hub.start()
    run = await env.flows.start(flow, 1)  # no worker yet
    assert run.steps["inc"].queue == "workflows"
    env.start_worker(("workflows", "email", "low"))
    done = await env.flows.wait(run.id, 10)
    assert done.state == c.FAILED  # "inc" got a string from "mail": a TypeError
    assert [done.steps[n].queue for n in ("inc", "mail", "inc-2")] == ["workflows", "email", "low"]
    assert "TypeError" in str(done.steps["inc-2"].error)
