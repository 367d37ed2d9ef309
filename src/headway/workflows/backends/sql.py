"""SQLite and PostgreSQL: workflow state in the application's database (shared engine).

Three tables, created idempotently on open: ``headway_wf_runs``, ``headway_wf_steps``
(one row per run and step) and ``headway_wf_approvals``. Each transition is ONE
``UPDATE ... WHERE state IN (...)``: the database serialises concurrent updates of a
row and re-checks the condition, so exactly one of several racing callers sees a row
count of 1. JSON values are stored as text (orjson), so they round-trip exactly.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncEngine

from headway.connections.sql import create_tables
from headway.workflows import constants as c
from headway.workflows.base import WorkflowBackend
from headway.workflows.codec import dumps, loads
from headway.workflows.models import STEP_FIELDS, ApprovalRecord, RunRecord, StepRecord

if TYPE_CHECKING:
    from headway.connections import Connections

metadata = MetaData()
runs = Table(
    "headway_wf_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workflow", String(100), nullable=False),
    Column("tenant", String(200)),
    Column("user_id", String(200)),
    Column("state", String(16), nullable=False),
    Column("spec", Text, nullable=False),
    Column("input", Text),
    Column("output", Text),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Index("headway_wf_runs_tenant", "tenant", "created_at"),
    Index("headway_wf_runs_state", "state", "created_at"),
)
steps = Table(
    "headway_wf_steps",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("task", String(300)),
    Column("position", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("job_id", String(300)),
    Column("queue", String(100)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("result", Text),
    Column("error", Text),
    Column("approval_id", String(64)),
    Column("queued_at", Float),
    Column("started_at", Float),
    Column("finished_at", Float),
)
approvals = Table(
    "headway_wf_approvals",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("step", String(200), nullable=False),
    Column("workflow", String(100), nullable=False),
    Column("tenant", String(200)),
    Column("approvers", Text, nullable=False),
    Column("role", String(200)),
    Column("state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("decided_by", String(200)),
    Column("decided_at", Float),
    Column("comment", Text),
    Index("headway_wf_approvals_tenant", "tenant", "state", "created_at"),
    Index("headway_wf_approvals_state", "state", "created_at"),
    Index("headway_wf_approvals_run", "run_id"),
)


def _text(value: Any) -> str:
    return dumps(value).decode()


def _run(row: Row[Any]) -> RunRecord:
    return RunRecord(
        row.id, row.workflow, loads(row.spec), loads(row.input), row.tenant, row.user_id,
        row.state, loads(row.output), row.error, row.created_at, row.finished_at,
    )  # fmt: skip


def _step(row: Row[Any]) -> StepRecord:
    return StepRecord(
        row.name, row.kind, row.task, row.position, row.state, row.job_id, row.queue,
        row.attempts, loads(row.result), row.error, row.approval_id, row.queued_at,
        row.started_at, row.finished_at,
    )  # fmt: skip


def _approval(row: Row[Any]) -> ApprovalRecord:
    return ApprovalRecord(
        row.id, row.run_id, row.step, row.tenant, list(loads(row.approvers)), row.role,
        row.state, row.created_at, row.expires_at, row.decided_by, row.decided_at,
        row.comment, row.workflow,
    )  # fmt: skip


def _step_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(STEP_FIELDS)
    if unknown:
        raise ValueError(f"unknown step fields {sorted(unknown)}")
    return {k: _text(v) if k == "result" else v for k, v in fields.items()}


def _step_row(run_id: str, s: StepRecord) -> dict[str, Any]:
    base: dict[str, Any] = {"run_id": run_id, "name": s.name, "kind": s.kind, "task": s.task}
    base.update(position=s.position, state=s.state)
    return {**base, **_step_values({k: getattr(s, k) for k in STEP_FIELDS})}


def _count(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class SqlWorkflowBackend(WorkflowBackend):
    def __init__(self, url: str, connections: Connections | None = None) -> None:
        super().__init__(url, connections)
        if connections is None:
            raise ValueError("the SQL workflow store needs the hub's connections")
        self.engine: AsyncEngine = connections.engine(url)

    async def open(self) -> None:
        await create_tables(self.engine, metadata)

    # -- runs -------------------------------------------------------------------------

    async def create_run(self, run: RunRecord) -> None:
        row = {
            "id": run.id, "workflow": run.workflow, "tenant": run.tenant,
            "user_id": run.user_id, "state": run.state, "spec": _text(run.spec),
            "input": _text(run.input), "output": _text(run.output), "error": run.error,
            "created_at": run.created_at, "finished_at": run.finished_at,
        }  # fmt: skip
        rows = [_step_row(run.id, s) for s in run.steps.values()]
        async with self.engine.begin() as conn:
            await conn.execute(insert(runs).values(row))
            await conn.execute(insert(steps), rows)

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(runs).where(runs.c.id == run_id))).first()
            if row is None:
                return None
            found = await conn.execute(select(steps).where(steps.c.run_id == run_id))
            run = _run(row)
        run.steps = {s.name: s for s in map(_step, found)}
        return run

    async def list_runs(
        self, *, tenant: str | None, state: str | None, limit: int, offset: int
    ) -> list[RunRecord]:
        query = select(runs).order_by(runs.c.created_at.desc(), runs.c.id.desc())
        if tenant is not None:
            query = query.where(runs.c.tenant == tenant)
        if state is not None:
            query = query.where(runs.c.state == state)
        async with self.engine.connect() as conn:
            found = [_run(r) for r in await conn.execute(query.limit(limit).offset(offset))]
            if found:
                ids = [r.id for r in found]
                rows = await conn.execute(select(steps).where(steps.c.run_id.in_(ids)))
                by_id = {r.id: r for r in found}
                for row in rows:
                    by_id[row.run_id].steps[row.name] = _step(row)
        return found

    async def active_runs(self, limit: int) -> list[str]:
        query = select(runs.c.id).where(runs.c.state == c.RUNNING).order_by(runs.c.created_at)
        async with self.engine.connect() as conn:
            return [str(r.id) for r in await conn.execute(query.limit(limit))]

    async def move_step(
        self,
        run_id: str,
        step: str,
        *,
        from_states: Collection[str],
        to_state: str,
        fields: Mapping[str, Any],
        run_states: Collection[str] | None,
        requires: Mapping[str, Collection[str]] | None = None,
    ) -> bool:
        stmt = update(steps).where(
            steps.c.run_id == run_id, steps.c.name == step, steps.c.state.in_(list(from_states))
        )
        if run_states is not None:
            alive = exists().where(runs.c.id == run_id, runs.c.state.in_(list(run_states)))
            stmt = stmt.where(alive)
        for other, states in (requires or {}).items():
            dep = steps.alias("dep")
            stmt = stmt.where(
                exists().where(
                    dep.c.run_id == run_id, dep.c.name == other, dep.c.state.in_(list(states))
                )
            )
        stmt = stmt.values(state=to_state, **_step_values(fields))
        async with self.engine.begin() as conn:
            return _count(await conn.execute(stmt)) == 1

    async def move_run(
        self, run_id: str, *, from_states: Collection[str], to_state: str,
        fields: Mapping[str, Any],
    ) -> bool:  # fmt: skip
        values = {k: _text(v) if k == "output" else v for k, v in fields.items()}
        stmt = (
            update(runs)
            .where(runs.c.id == run_id, runs.c.state.in_(list(from_states)))
            .values(state=to_state, **values)
        )
        async with self.engine.begin() as conn:
            return _count(await conn.execute(stmt)) == 1

    async def delete_runs(self, finished_before: float, limit: int) -> int:
        query = (
            select(runs.c.id)
            .where(runs.c.state.in_(list(c.FINAL_RUN)), runs.c.finished_at < finished_before)
            .order_by(runs.c.finished_at)
            .limit(limit)
        )
        async with self.engine.begin() as conn:
            ids = [str(r.id) for r in await conn.execute(query)]
            if ids:
                await conn.execute(delete(approvals).where(approvals.c.run_id.in_(ids)))
                await conn.execute(delete(steps).where(steps.c.run_id.in_(ids)))
                await conn.execute(delete(runs).where(runs.c.id.in_(ids)))
        return len(ids)

    # -- approvals --------------------------------------------------------------------

    async def create_approval(self, approval: ApprovalRecord) -> None:
        row = approval.to_dict()
        row["approvers"] = _text(approval.approvers)
        async with self.engine.begin() as conn:
            await conn.execute(insert(approvals).values(row))

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        query = select(approvals).where(approvals.c.id == approval_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _approval(row)

    async def decide_approval(
        self, approval_id: str, *, to_state: str, by: str | None, at: float,
        comment: str | None, unexpired: bool,
    ) -> bool:  # fmt: skip
        stmt = update(approvals).where(
            approvals.c.id == approval_id, approvals.c.state == c.APPROVAL_PENDING
        )
        if unexpired:
            stmt = stmt.where(approvals.c.expires_at.is_(None) | (approvals.c.expires_at > at))
        stmt = stmt.values(state=to_state, decided_by=by, decided_at=at, comment=comment)
        async with self.engine.begin() as conn:
            return _count(await conn.execute(stmt)) == 1

    async def list_approvals(
        self, *, tenant: str | None, state: str | None, limit: int, offset: int
    ) -> list[ApprovalRecord]:
        query = select(approvals).order_by(approvals.c.created_at.desc(), approvals.c.id.desc())
        if tenant is not None:
            query = query.where(approvals.c.tenant == tenant)
        if state is not None:
            query = query.where(approvals.c.state == state)
        async with self.engine.connect() as conn:
            return [_approval(r) for r in await conn.execute(query.limit(limit).offset(offset))]

    async def pending_approvals(self) -> int:
        query = select(func.count()).where(approvals.c.state == c.APPROVAL_PENDING)
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())


__all__: Sequence[str] = ["SqlWorkflowBackend"]
