"""Advancing runs: every move is a compare-and-set in the store, so that a step's
completion delivered twice (at-least-once jobs) or two processes advancing the same run
never start a step twice nor end a run twice.

:meth:`Engine.advance` is idempotent: given a fresh snapshot of a run it starts the steps
whose dependencies all succeeded, runs a failed step's compensation, or ends the run.
Every event (a job's outcome, a decision, the repair sweep) records its transition and
then calls it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from headway.errors import BackendUnavailableError
from headway.jobs import FAILED as JOB_FAILED
from headway.jobs import SUCCEEDED as JOB_SUCCEEDED
from headway.jobs import Job, JobError
from headway.workflows import constants as c
from headway.workflows.base import StepMove
from headway.workflows.codec import normalize
from headway.workflows.definition import Step, Workflow
from headway.workflows.models import ApprovalRecord, RunRecord, StepRecord

if TYPE_CHECKING:
    from headway.jobs import Jobs
    from headway.workflows.base import WorkflowBackend

log = logging.getLogger("headway.workflows")
Fire = Callable[[str, RunRecord, ApprovalRecord | None], Awaitable[None]]
_NO_STEP = StepRecord("")
_SPECS: dict[str, Workflow] = {}  # parsed specs by run id (a bounded cache)


def compensation_name(step: str) -> str:
    return f"{step}:compensate"


def spec_of(run: RunRecord) -> Workflow:
    """The run's definition, parsed once per run (a run's spec never changes)."""
    wf = _SPECS.get(run.id)
    if wf is None:
        if len(_SPECS) > 1000:
            _SPECS.clear()
        wf = _SPECS[run.id] = Workflow.from_spec(run.spec)
    return wf


def step_input(run: RunRecord, st: Step) -> Any:
    results = {name: run.steps[name].result for name in st.after}
    mode = st.mode
    if mode == c.INPUT:
        return run.input
    if mode == c.VALUE:
        return results[st.after[0]]
    if mode == c.LIST:
        return [results[name] for name in st.after]
    return results


def run_output(run: RunRecord, wf: Workflow) -> Any:
    """The result of the step nobody depends on; several such steps: a dict by name."""
    used = {dep for st in wf.steps.values() for dep in st.after}
    sinks = [name for name in wf.steps if name not in used]
    if len(sinks) == 1:
        return run.steps[sinks[0]].result
    return {name: run.steps[name].result for name in sinks}


def _claim(item: Mapping[str, Any], now: float) -> StepMove:
    """The CAS that claims a planned step: pending -> queued (a task) or waiting (an
    approval), only while the run is running and every dependency succeeded."""
    if "approval_id" in item:
        to_state, fields = c.WAITING, {"approval_id": item["approval_id"], "queued_at": now}
    else:
        fields = {"job_id": item["job_id"], "queue": item["queue"], "queued_at": now}
        to_state = c.QUEUED
    requires = {str(dep): (c.SUCCEEDED,) for dep in item["after"]}
    return StepMove(str(item["step"]), (c.PENDING,), to_state, fields, c.ACTIVE_RUN, requires)


class Engine:
    """The transitions of runs, steps and approvals over one store and the jobs system."""

    def __init__(self, store: WorkflowBackend, jobs: Jobs, default_queue: str, fire: Fire) -> None:
        self.store, self.jobs, self.default_queue, self.fire = store, jobs, default_queue, fire
        self.approval_expiry = c.DEFAULT_APPROVAL_EXPIRY

    # -- creating ---------------------------------------------------------------------

    def new_run(
        self, wf: Workflow, data: Any, tenant: str | None, user_id: str | None
    ) -> RunRecord:
        run = RunRecord(
            secrets.token_hex(12), wf.name, wf.to_spec(), normalize(data, "the workflow input"),
            tenant, user_id, created_at=time.time(),
        )  # fmt: skip
        for pos, st in enumerate(wf.steps.values()):
            run.steps[str(st.name)] = StepRecord(str(st.name), st.kind, st.task, pos)
            if st.compensate:
                name = compensation_name(str(st.name))
                run.steps[name] = StepRecord(name, c.COMPENSATION, st.compensate, pos)
        return run

    # -- the one idempotent move ------------------------------------------------------

    async def advance(self, run: RunRecord | None) -> None:
        """Start what is ready, compensate what failed, or end the run."""
        if run is None or run.state != c.RUNNING:
            return
        wf = spec_of(run)
        failed = [n for n in wf.steps if run.steps[n].state in (c.STEP_FAILED, c.STEP_CANCELLED)]
        if failed:
            await self._after_failure(run, wf, failed[0])
            return
        if all(run.steps[n].state == c.SUCCEEDED for n in wf.steps):
            await self.finish(run, c.COMPLETED, output=run_output(run, wf))
            return
        for st in wf.steps.values():
            rec = run.steps[str(st.name)]
            if rec.state == c.PENDING and all(run.steps[d].state == c.SUCCEEDED for d in st.after):
                await self._launch(run, st)

    async def _after_failure(self, run: RunRecord, wf: Workflow, name: str) -> None:
        rec, st = run.steps[name], wf.steps[name]
        error = f"step {name!r} failed: {rec.error or rec.state}"
        comp = run.steps.get(compensation_name(name)) if st.compensate else None
        if comp is None or comp.state in (c.SUCCEEDED, c.STEP_FAILED, c.STEP_CANCELLED):
            if comp is not None and comp.state != c.SUCCEEDED:
                error += f"; its compensation failed too: {comp.error}"
            await self.finish(run, c.FAILED, error=error)
        elif comp.state == c.PENDING:
            data = {"input": step_input(run, st), "error": rec.error, "run_id": run.id}
            await self._enqueue_step(run, comp.name, str(comp.task), data, st.queue)

    async def _launch(self, run: RunRecord, st: Step) -> None:
        """Claim a ready step (the store's CAS: one caller wins), then start it."""
        item = self._plan_item(run.id, st)
        claim = _claim(item, time.time())
        won = await self.store.move_step(
            run.id, claim.step, from_states=claim.from_states, to_state=claim.to_state,
            fields=claim.fields, run_states=claim.run_states, requires=claim.requires,
        )  # fmt: skip
        if won:
            await self._begin(run, item)

    async def _begin(self, run: RunRecord, item: Mapping[str, Any]) -> None:
        """Start a step this process claimed: enqueue its job, or record its approval."""
        st = spec_of(run).steps[str(item["step"])]
        if "approval_id" in item:
            await self._record_approval(run, st, str(item["approval_id"]), time.time())
        else:
            data = step_input(run, st)
            await self.submit(run, str(st.name), str(st.task), data, item["job_id"], item["queue"])

    # -- plans: the claims a step's completion makes in the same store call -----------

    def _plan_item(self, run_id: str, st: Step) -> dict[str, Any]:
        item: dict[str, Any] = {"step": st.name, "after": list(st.after)}
        if st.kind == c.APPROVAL:
            item["approval_id"] = secrets.token_hex(12)
        else:
            item["job_id"] = f"wf-{run_id}-{st.name}"
            item["queue"] = self._queue_for(str(st.task), st.queue)
        return item

    def plan_next(self, run: RunRecord, name: str) -> list[dict[str, Any]]:
        """How to claim the steps that depend on ``name``; it travels in the step's job
        meta, so that the job's completion and these claims are one store call."""
        wf = spec_of(run)
        return [self._plan_item(run.id, st) for st in wf.steps.values() if name in st.after]

    # -- task steps -------------------------------------------------------------------

    def _queue_for(self, task: str, queue: str | None) -> str:
        if queue:
            return queue
        found = self.jobs.tasks.get(task)
        if found is None or found.queue == "default":
            return self.default_queue
        return found.queue

    async def _enqueue_step(
        self, run: RunRecord, name: str, task: str, data: Any, queue: str | None
    ) -> None:
        job_id, target = f"wf-{run.id}-{name}", self._queue_for(task, queue)
        fields = {"job_id": job_id, "queue": target, "queued_at": time.time()}
        won = await self.store.move_step(
            run.id, name, from_states=(c.PENDING,), to_state=c.QUEUED, fields=fields,
            run_states=c.ACTIVE_RUN,
        )  # fmt: skip
        if won:
            await self.submit(run, name, task, data, job_id, target)

    async def submit(
        self, run: RunRecord, name: str, task: str, data: Any, job_id: str, queue: str
    ) -> None:
        """Enqueue a step's job (its id is fixed: a second enqueue is a no-op)."""
        ref = {"run": run.id, "step": name, "next": self.plan_next(run, name)}
        try:
            await self.jobs.submit(
                task, [data], job_id=job_id, queue=queue, tenant=run.tenant,
                user_id=run.user_id, meta={c.META_KEY: ref},
            )  # fmt: skip
        except BackendUnavailableError:
            log.warning("run %s: step %s not enqueued yet (job backend down)", run.id, name)
        except (JobError, TypeError, ValueError) as exc:
            await self.step_failed(run.id, name, f"{type(exc).__name__}: {exc}", 0)

    async def complete(
        self, run_id: str, name: str, from_state: str, to_state: str,
        fields: Mapping[str, Any], plan: Sequence[Mapping[str, Any]] = (),
    ) -> None:  # fmt: skip
        """Record a step's outcome and, when it succeeded, claim the steps of ``plan`` it
        made ready, in one store call; start what was claimed; then advance."""
        moves = [StepMove(name, (from_state,), to_state, fields, c.ACTIVE_RUN)]
        if to_state == c.SUCCEEDED:
            now = time.time()
            moves += [_claim(item, now) for item in plan]
        applied, run = await self.store.move_steps(run_id, moves)
        if run is None:
            return
        for item, won in zip(plan, applied[1:], strict=False):
            if won:
                await self._begin(run, item)
        await self.advance(run)

    async def step_succeeded(
        self, run_id: str, name: str, result: Any, attempts: int,
        started_at: float | None = None, plan: Sequence[Mapping[str, Any]] = (),
    ) -> None:  # fmt: skip
        fields = {
            "result": normalize(result, f"the result of step {name!r}"), "error": None,
            "attempts": attempts, "finished_at": time.time(),
        }  # fmt: skip
        if started_at is not None:
            fields["started_at"] = started_at
        await self.complete(run_id, name, c.QUEUED, c.SUCCEEDED, fields, plan)

    async def step_failed(
        self, run_id: str, name: str, error: str, attempts: int, started_at: float | None = None
    ) -> None:
        fields: dict[str, Any] = {"error": error, "attempts": attempts, "finished_at": time.time()}
        if started_at is not None:
            fields["started_at"] = started_at
        await self.complete(run_id, name, c.QUEUED, c.STEP_FAILED, fields)

    async def step_retrying(self, run_id: str, name: str, error: str, attempts: int) -> None:
        await self.store.move_step(
            run_id, name, from_states=(c.QUEUED,), to_state=c.QUEUED,
            fields={"error": error, "attempts": attempts}, run_states=c.ACTIVE_RUN,
        )  # fmt: skip

    # -- approval steps ---------------------------------------------------------------

    async def _record_approval(
        self, run: RunRecord, st: Step, approval_id: str, now: float
    ) -> None:
        expiry = self.approval_expiry if st.expires_in is None else st.expires_in
        approval = ApprovalRecord(
            approval_id, run.id, str(st.name), run.tenant, list(st.approvers), st.role,
            created_at=now, expires_at=now + expiry, workflow=run.workflow,
        )  # fmt: skip
        await self.store.create_approval(approval)
        await self.fire("approval_requested", run, approval)

    async def apply_decision(self, approval: ApprovalRecord) -> None:
        """Move the approval's step after its (recorded) decision, then advance."""
        run = await self.store.get_run(approval.run_id)
        if run is None or run.steps.get(approval.step, _NO_STEP).approval_id != approval.id:
            return
        if approval.state == c.APPROVED:
            st = spec_of(run).steps[approval.step]
            fields: dict[str, Any] = {"result": step_input(run, st), "finished_at": time.time()}
            plan = self.plan_next(run, approval.step)
            await self.complete(run.id, approval.step, c.WAITING, c.SUCCEEDED, fields, plan)
        else:
            who = f" by {approval.decided_by}" if approval.decided_by else ""
            fields = {"error": f"approval {approval.state}{who}", "finished_at": time.time()}
            await self.complete(run.id, approval.step, c.WAITING, c.STEP_FAILED, fields)

    async def expire(self, approval: ApprovalRecord) -> None:
        now = time.time()
        if await self.store.decide_approval(
            approval.id, to_state=c.EXPIRED, by=None, at=now, comment=None, unexpired=False
        ):
            approval.state, approval.decided_at = c.EXPIRED, now
        fresh = await self.store.get_approval(approval.id)
        if fresh is not None and fresh.state != c.APPROVAL_PENDING:
            await self.apply_decision(fresh)

    # -- ending -----------------------------------------------------------------------

    async def finish(
        self, run: RunRecord, state: str, *, output: Any = None, error: str | None = None
    ) -> bool:
        fields = {"output": output, "error": error, "finished_at": time.time()}
        won = await self.store.move_run(
            run.id, from_states=(c.RUNNING,), to_state=state, fields=fields
        )
        if won:
            if state != c.COMPLETED:  # every step succeeded: nothing to close
                # a fresh read: a step claimed since ``run`` was read is closed too
                run = await self.store.get_run(run.id) or run
            run.state, run.output, run.error = state, output, error
            await self.close_open_steps(run)
            await self.fire(state, run, None)
            await self.record_starts(run)
        return won

    async def record_starts(self, run: RunRecord) -> None:
        """Copy each finished step's start time from its job (the job system records
        it; reading it on every step would cost a round trip on the path of each step).
        Best effort, once the run ended, while the jobs are still kept."""
        todo = [
            r for r in run.steps.values()
            if r.job_id and r.started_at is None and r.state in (c.SUCCEEDED, c.STEP_FAILED)
        ]  # fmt: skip
        if not todo:
            return
        try:
            jobs = await asyncio.gather(*(self.jobs.get(str(r.job_id), r.queue) for r in todo))
            moves = [
                StepMove(r.name, (r.state,), r.state, {"started_at": job.started_at})
                for r, job in zip(todo, jobs, strict=True)
                if job is not None and job.started_at is not None
            ]
            if moves:
                await self.store.move_steps(run.id, moves)
        except Exception as exc:  # a missing start time is not worth failing anything for
            log.info("run %s: step start times not recorded (%s)", run.id, exc)

    async def close_open_steps(self, run: RunRecord) -> None:
        """After the run ended: skip pending steps, cancel queued jobs and open approvals."""
        for rec in run.steps.values():
            was = rec.state
            to_state = {c.PENDING: c.SKIPPED, c.QUEUED: c.STEP_CANCELLED}.get(was)
            if was == c.WAITING:
                to_state = c.STEP_CANCELLED
            if to_state is None or not await self.store.move_step(
                run.id, rec.name, from_states=(was,), to_state=to_state, fields={},
                run_states=None,
            ):  # fmt: skip
                continue
            rec.state = to_state
            if was == c.QUEUED and rec.job_id:
                await self._cancel_job(rec)
            if was == c.WAITING and rec.approval_id:
                await self.store.decide_approval(
                    rec.approval_id, to_state=c.APPROVAL_CANCELLED, by=None, at=time.time(),
                    comment=f"run {run.state}", unexpired=False,
                )  # fmt: skip

    async def _cancel_job(self, rec: StepRecord) -> None:
        """Queued: it never runs. Running: cancelled if the job system can (else it ends
        and its outcome is ignored: the step is no longer queued)."""
        try:
            await self.jobs.cancel(str(rec.job_id), queue=rec.queue)
        except (JobError, BackendUnavailableError) as exc:
            log.info("step %s: job %s not cancelled (%s)", rec.name, rec.job_id, exc)

    # -- repair -----------------------------------------------------------------------

    async def repair(self, run: RunRecord, min_age: float = 0.0) -> None:
        """Finish what an interrupted advance left (a lost hook, a crash between moves).
        Steps queued less than ``min_age`` seconds ago are left alone (in flight)."""
        recent = time.time() - min_age
        for rec in list(run.steps.values()):
            if rec.state == c.QUEUED and rec.job_id and (rec.queued_at or 0) <= recent:
                await self._repair_queued(run, rec)
            elif rec.state == c.WAITING and rec.approval_id:
                await self._repair_waiting(run, rec)
        await self.advance(await self.store.get_run(run.id))

    async def _repair_queued(self, run: RunRecord, rec: StepRecord) -> None:
        job: Job | None = await self.jobs.get(str(rec.job_id), rec.queue)
        if job is None:
            st = spec_of(run).steps.get(rec.name)
            data = step_input(run, st) if st is not None else None
            await self.submit(run, rec.name, str(rec.task), data, str(rec.job_id), str(rec.queue))
        elif job.state == JOB_SUCCEEDED:
            await self.step_succeeded(run.id, rec.name, job.result, job.attempts, job.started_at)
        elif job.state in (JOB_FAILED, "cancelled"):
            error = job.error or f"job {job.state}"
            await self.step_failed(run.id, rec.name, error, job.attempts, job.started_at)

    async def _repair_waiting(self, run: RunRecord, rec: StepRecord) -> None:
        approval = await self.store.get_approval(str(rec.approval_id))
        if approval is None:
            st = spec_of(run).steps[rec.name]
            await self._record_approval(run, st, str(rec.approval_id), rec.queued_at or time.time())
        elif approval.state != c.APPROVAL_PENDING:
            await self.apply_decision(approval)
        elif approval.expires_at is not None and approval.expires_at <= time.time():
            await self.expire(approval)
