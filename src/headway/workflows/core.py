"""The ``hw.workflows`` capability: definitions, runs, approvals, hooks and the read API."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from headway import registry
from headway.capability import Capability, Readiness
from headway.jobs import RUNNING as JOB_RUNNING
from headway.jobs import JobContext
from headway.settings import load_section
from headway.workflows import constants as c
from headway.workflows import definition as d
from headway.workflows.engine import Engine
from headway.workflows.models import (
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalForbidden,
    ApprovalNotFound,
    ApprovalRecord,
    DefinitionError,
    RunNotFound,
    RunRecord,
    StepRecord,
)
from headway.workflows.settings import WorkflowsSettings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from starlette.applications import Starlette

    from headway.hub import Headway
    from headway.workflows.base import WorkflowBackend
    from headway.workflows.metrics import WorkflowMetrics

log = logging.getLogger("headway.workflows")
Hook = Callable[..., Any]
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_DECISIONS = {"approve": c.APPROVED, "reject": c.REJECTED}


class Workflows(Capability):
    """``hw.workflows``: run chains, groups and DAGs of job tasks, with approval steps.

    Define workflows at import time (``hw.workflows.define(...)``) in a module that the
    web processes and the workers both import: the hooks that advance runs are set on
    ``hw.jobs`` when ``hw.workflows`` is first used.
    """

    name = "workflows"

    def __init__(
        self, hw: Headway, url: str | None = None, *, settings: WorkflowsSettings | None = None
    ) -> None:
        super().__init__(hw)
        self.settings = s = settings or load_section(WorkflowsSettings)
        self.url = url or s.url or hw.settings.redis_url or hw.settings.sql_url
        self.jobs = hw.jobs  # added (and so started) before this capability
        self.definitions: dict[str, d.Workflow] = {}
        self.hooks: dict[str, list[Hook]] = {
            c.COMPLETED: [],
            c.FAILED: [],
            "approval_requested": [],
            c.CANCELLED: [],
        }
        self.metrics: WorkflowMetrics | None = None
        self._backend: WorkflowBackend | None = None
        self._engine: Engine | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._routes = False
        self.jobs.on_success(self._job_succeeded)
        self.jobs.on_failure(self._job_failed)
        self.jobs.on_retry(self._job_retrying)

    # -- lifecycle --------------------------------------------------------------------

    @property
    def backend(self) -> WorkflowBackend:
        if self._backend is None:
            raise RuntimeError("workflows are not started: use `async with hw:`")
        return self._backend

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("workflows are not started: use `async with hw:`")
        return self._engine

    async def _open(self) -> None:
        """The hub's lifecycle ``start()`` (the name is shared with starting a run)."""
        if self._backend is not None:
            return
        url = self._backend_url()
        backend: WorkflowBackend = registry.resolve("workflows", url)(url, self.hw.connections)
        await backend.open()
        self._backend = backend
        self._engine = Engine(backend, self.jobs, self.settings.queue, self._fire)
        self._engine.approval_expiry = self.settings.approval_expiry
        if self.settings.sweep_interval > 0:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="headway-workflows-sweep")

    def _backend_url(self) -> str:
        parts = urlsplit(self.url)
        redis = registry.scheme_of(self.url) in _REDIS_SCHEMES  # redis+cluster:// too
        if not redis or "prefix" in dict(parse_qsl(parts.query)):
            return self.url
        query = "&".join(q for q in (parts.query, f"prefix={self.settings.redis_prefix}") if q)
        return urlunsplit(parts._replace(query=query))

    async def stop(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        backend, self._backend, self._engine = self._backend, None, None
        if backend is not None:
            await backend.close()

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                await self.sweep(min_age=self.settings.sweep_interval)
                if self.settings.retention > 0:
                    await self.purge(self.settings.retention)
            except Exception as exc:
                log.warning("workflow sweep failed: %s", exc)

    def install(self, app: Starlette) -> None:
        """Admin endpoints (``/admin/workflows/...``, see :mod:`headway.workflows.api`)."""
        if not self._routes:
            from headway.workflows.api import add_routes

            add_routes(self)
            self._routes = True

    # -- observability ----------------------------------------------------------------

    def register_metrics(self, registry: CollectorRegistry) -> None:
        from headway.workflows.metrics import WorkflowMetrics

        self.metrics = WorkflowMetrics(registry)

    async def refresh_metrics(self) -> None:
        if self.metrics is not None and self._backend is not None:
            self.metrics.pending.set(await self._backend.pending_approvals())

    async def check_ready(self) -> Readiness | None:
        pending = await self.backend.pending_approvals()
        return Readiness(ok=True, detail={"approvals_pending": pending})

    # -- hooks ------------------------------------------------------------------------

    def on_completed(self, hook: Hook) -> Hook:
        """``hook(run)`` once per run that completed."""
        self.hooks[c.COMPLETED].append(hook)
        return hook

    def on_failed(self, hook: Hook) -> Hook:
        """``hook(run)`` once per run that failed (after compensation, if any)."""
        self.hooks[c.FAILED].append(hook)
        return hook

    def on_cancelled(self, hook: Hook) -> Hook:
        """``hook(run)`` once per cancelled run."""
        self.hooks[c.CANCELLED].append(hook)
        return hook

    def on_approval_requested(self, hook: Hook) -> Hook:
        """``hook(approval, run)`` once per approval request."""
        self.hooks["approval_requested"].append(hook)
        return hook

    async def _fire(self, event: str, run: RunRecord, approval: ApprovalRecord | None) -> None:
        from headway.jobs.task import call_hooks

        if self.metrics is not None:
            self.metrics.event(event, run.workflow)
        args = (run,) if approval is None else (approval, run)
        await call_hooks(self.hooks.get(event, []), *args)

    # -- definitions ------------------------------------------------------------------

    def define(self, workflow: d.Workflow) -> d.Workflow:
        """Register ``workflow`` by name (its tasks must be registered job tasks)."""
        unknown = sorted(t for t in workflow.tasks() if t not in self.jobs.tasks)
        if unknown:
            raise DefinitionError(f"workflow {workflow.name!r} uses unknown tasks: {unknown}")
        known = self.definitions.get(workflow.name)
        if known is not None and known.to_spec() != workflow.to_spec():
            raise DefinitionError(f"another workflow is already named {workflow.name!r}")
        self.definitions[workflow.name] = workflow
        return workflow

    def chain(self, name: str, *items: d.ChainItem) -> d.Workflow:
        """:func:`headway.workflows.chain`, registered."""
        return self.define(d.chain(name, *items))

    def group(
        self, name: str, members: Sequence[d.Step | d.TaskRef], *, then: d.Step | d.TaskRef
    ) -> d.Workflow:
        """:func:`headway.workflows.group`, registered."""
        return self.define(d.group(name, members, then=then))

    def dag(self, name: str, steps: Mapping[str, d.Step | d.TaskRef]) -> d.Workflow:
        """:func:`headway.workflows.dag`, registered."""
        return self.define(d.dag(name, steps))

    def definition(self, name: str) -> d.Workflow:
        try:
            return self.definitions[name]
        except KeyError:
            raise DefinitionError(
                f"no workflow named {name!r}; defined: {sorted(self.definitions)}"
            ) from None

    # -- runs -------------------------------------------------------------------------

    async def start(  # type: ignore[override]
        self,
        definition: d.Workflow | str | None = None,
        input: Any = None,
        *,
        tenant: str | int | None = None,
        user_id: str | int | None = None,
    ) -> RunRecord:
        """Start a run of ``definition`` (a Workflow or a defined name) on ``input``.

        Called without a definition (as the hub does), opens the store instead."""
        if definition is None:  # the hub's lifecycle call
            await self._open()
            return None  # type: ignore[return-value]
        wf = self.definition(definition) if isinstance(definition, str) else self.define(definition)
        run = self.engine.new_run(wf, input, _opt(tenant), _opt(user_id))
        await self.backend.create_run(run)
        await self._fire("started", run, None)
        await self.engine.advance(run)
        return _view(await self.backend.get_run(run.id) or run)

    async def get(self, run_id: str, *, tenant: str | int | None = None) -> RunRecord:
        """The run with its steps, as the read API shows it: ``state`` is ``waiting``
        while a step waits for approval, and a queued step whose job runs is ``running``."""
        run = await self._stored(run_id, tenant)
        for rec in run.steps.values():
            if rec.job_id and (rec.state == c.QUEUED or rec.started_at is None):
                await self._live_step(run, rec)
        return _view(run)

    async def _live_step(self, run: RunRecord, rec: StepRecord) -> None:
        """A step's job as the job system sees it: running, and when it started (the
        engine does not record starts: no round trip for it on the path of a step)."""
        if rec.state not in (c.QUEUED, c.SUCCEEDED, c.STEP_FAILED):
            return
        job = await self.jobs.get(str(rec.job_id), rec.queue)
        if job is None:
            return
        rec.started_at = rec.started_at or job.started_at
        if rec.state == c.QUEUED and run.state == c.RUNNING and job.state == JOB_RUNNING:
            rec.state = c.STEP_RUNNING
            rec.attempts = max(rec.attempts, job.attempts)

    async def _stored(self, run_id: str, tenant: str | int | None) -> RunRecord:
        run = await self.backend.get_run(run_id) if isinstance(run_id, str) else None
        if run is None or (tenant is not None and run.tenant != str(tenant)):
            raise RunNotFound(f"no workflow run {run_id!r}")
        return run

    async def runs(
        self, *, tenant: str | int | None = None, state: str | None = None, limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[RunRecord]:  # fmt: skip
        """Runs newest first; ``state`` one of RUN_STATES (``waiting``: has an open approval)."""
        if state is not None and state not in c.RUN_STATES:
            raise ValueError(f"unknown run state {state!r}; states: {', '.join(c.RUN_STATES)}")
        _check_page(limit, offset)
        stored = c.RUNNING if state == c.WAITING else state
        found = await self.backend.list_runs(
            tenant=_opt(tenant), state=stored, limit=limit, offset=offset
        )
        found = [_view(r) for r in found]
        return [r for r in found if state is None or r.state == state]

    async def cancel(self, run_id: str, *, tenant: str | int | None = None) -> bool:
        """Cancel a running run: queued steps never run, open approvals close. False if it
        had already ended."""
        run = await self._stored(run_id, tenant)
        return await self.engine.finish(run, c.CANCELLED, error="cancelled")

    async def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:  # noqa: ASYNC109
        """Poll until the run ends (completed, failed or cancelled); TimeoutError after."""
        async with asyncio.timeout(timeout):
            pause = 0.002
            while True:
                run = await self.get(run_id)
                if run.state in c.FINAL_RUN:
                    return run
                await asyncio.sleep(pause)
                pause = min(pause * 1.5, 0.2)

    async def sweep(self, limit: int = 1000, *, min_age: float = 0.0) -> int:
        """Repair running runs (lost job hooks, crashes between moves) and expire overdue
        approvals; returns how many runs it looked at. Safe to run anywhere, any time.
        The jobs of steps queued less than ``min_age`` seconds ago are not looked up."""
        ids = await self.backend.active_runs(limit)
        for run_id in ids:
            run = await self.backend.get_run(run_id)
            if run is None:
                continue
            try:
                await self.engine.repair(run, min_age)
            except Exception:
                log.exception("workflow sweep: run %s could not be repaired", run_id)
        return len(ids)

    async def purge(self, older_than: float, *, limit: int = 1000) -> int:
        """Delete ended runs that finished more than ``older_than`` seconds ago, with
        their approvals; returns how many (at most ``limit``)."""
        if older_than < 0:
            raise ValueError("older_than must be >= 0 seconds")
        return await self.backend.delete_runs(time.time() - older_than, limit)

    # -- approvals --------------------------------------------------------------------

    async def approvals(
        self, *, tenant: str | int | None = None, state: str | None = c.APPROVAL_PENDING,
        limit: int = 50, offset: int = 0,
    ) -> builtins.list[ApprovalRecord]:  # fmt: skip
        if state is not None and state not in c.APPROVAL_STATES:
            raise ValueError(f"unknown approval state {state!r}; states: {c.APPROVAL_STATES}")
        _check_page(limit, offset)
        return await self.backend.list_approvals(
            tenant=_opt(tenant), state=state, limit=limit, offset=offset
        )

    async def get_approval(
        self, approval_id: str, *, tenant: str | int | None = None
    ) -> ApprovalRecord:
        found = (
            await self.backend.get_approval(approval_id) if isinstance(approval_id, str) else None
        )
        if found is None or (tenant is not None and found.tenant != str(tenant)):
            raise ApprovalNotFound(f"no approval {approval_id!r}")
        return found

    async def approve(
        self, approval_id: str, *, by: str | int, tenant: str | int | None = None,
        roles: Iterable[str] = (), comment: str | None = None,
    ) -> RunRecord:  # fmt: skip
        """Approve: the run goes on. ApprovalNotFound (other tenant too), ApprovalExpired,
        ApprovalAlreadyDecided, ApprovalForbidden; of concurrent calls exactly one wins."""
        return await self._decide(approval_id, "approve", by, tenant, roles, comment)

    async def reject(
        self, approval_id: str, *, by: str | int, tenant: str | int | None = None,
        roles: Iterable[str] = (), comment: str | None = None,
    ) -> RunRecord:  # fmt: skip
        """Reject: the step fails, so the run fails (or runs the step's compensation)."""
        return await self._decide(approval_id, "reject", by, tenant, roles, comment)

    async def _decide(
        self, approval_id: str, action: str, by: str | int, tenant: str | int | None,
        roles: Iterable[str], comment: str | None,
    ) -> RunRecord:  # fmt: skip
        approval = await self.get_approval(approval_id, tenant=tenant)
        user = str(by)
        if approval.state != c.APPROVAL_PENDING:
            raise ApprovalAlreadyDecided(f"approval {approval_id} is already {approval.state}")
        if not approval.may_decide(user, set(roles)):
            raise ApprovalForbidden(f"user {user!r} may not decide approval {approval_id}")
        now = time.time()
        if approval.expires_at is not None and approval.expires_at <= now:
            await self.engine.expire(approval)
            raise ApprovalExpired(f"approval {approval_id} expired")
        won = await self.backend.decide_approval(
            approval_id, to_state=_DECISIONS[action], by=user, at=now, comment=comment,
            unexpired=True,
        )  # fmt: skip
        if not won:
            await self._lost_decision(approval)
        decided = await self.get_approval(approval_id)
        await self.engine.apply_decision(decided)
        return await self.get(approval.run_id)

    async def _lost_decision(self, approval: ApprovalRecord) -> None:
        fresh = await self.get_approval(approval.id)
        if fresh.state == c.APPROVAL_PENDING:  # still pending: it expired meanwhile
            await self.engine.expire(fresh)
            raise ApprovalExpired(f"approval {approval.id} expired")
        raise ApprovalAlreadyDecided(f"approval {approval.id} is already {fresh.state}")

    # -- job hooks (every job; a workflow step carries its run in the meta) -----------

    async def _job_succeeded(self, ctx: JobContext, value: Any) -> None:
        ref = ctx.meta.get(c.META_KEY) if ctx.meta else None
        if isinstance(ref, dict) and self._engine is not None:
            plan = ref.get("next")
            plan = [p for p in plan if isinstance(p, dict)] if isinstance(plan, list) else []
            await self._engine.step_succeeded(
                str(ref["run"]), str(ref["step"]), value, ctx.attempt, plan=plan
            )

    async def _job_failed(self, ctx: JobContext, error: BaseException) -> None:
        ref = ctx.meta.get(c.META_KEY) if ctx.meta else None
        if isinstance(ref, dict) and self._engine is not None:
            text = f"{type(error).__name__}: {error}"[:2000]
            await self._engine.step_failed(str(ref["run"]), str(ref["step"]), text, ctx.attempt)

    async def _job_retrying(self, ctx: JobContext, error: BaseException, delay: float) -> None:
        ref = ctx.meta.get(c.META_KEY) if ctx.meta else None
        if isinstance(ref, dict) and self._engine is not None:
            text = f"{type(error).__name__}: {error}"[:2000]
            await self._engine.step_retrying(str(ref["run"]), str(ref["step"]), text, ctx.attempt)


_CLOSED = {c.PENDING: c.SKIPPED, c.QUEUED: c.STEP_CANCELLED, c.WAITING: c.STEP_CANCELLED}


def _view(run: RunRecord) -> RunRecord:
    """The run as the read API shows it: ``waiting`` while a step waits for approval;
    once it ended, the steps it left open as the engine closes them (just after)."""
    run.state = run.display_state
    if run.state in c.FINAL_RUN:
        for rec in run.steps.values():
            rec.state = _CLOSED.get(rec.state, rec.state)
    return run


def _opt(value: str | int | None) -> str | None:
    return None if value is None else str(value)


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= 1000 or offset < 0:
        raise ValueError("limit must be 1..1000 and offset >= 0")
