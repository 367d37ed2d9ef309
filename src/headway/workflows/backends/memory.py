"""In-process workflow store (tests, single-process apps): dicts behind the contract.

Every method runs without an ``await`` between its check and its write, which makes the
compare-and-set transitions atomic within the event loop.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

from headway.workflows import constants as c
from headway.workflows.base import WorkflowBackend
from headway.workflows.models import ApprovalRecord, RunRecord


class MemoryWorkflowBackend(WorkflowBackend):
    def __init__(self, url: str = "memory://", connections: Any = None) -> None:
        super().__init__(url, connections)
        self._runs: dict[str, RunRecord] = {}
        self._approvals: dict[str, ApprovalRecord] = {}

    async def create_run(self, run: RunRecord) -> None:
        if run.id in self._runs:
            raise ValueError(f"run {run.id!r} exists")
        self._runs[run.id] = copy.deepcopy(run)

    async def get_run(self, run_id: str) -> RunRecord | None:
        run = self._runs.get(run_id)
        return None if run is None else copy.deepcopy(run)

    async def list_runs(
        self, *, tenant: str | None, state: str | None, limit: int, offset: int
    ) -> list[RunRecord]:
        found = [
            r for r in reversed(self._runs.values())
            if (tenant is None or r.tenant == tenant) and (state is None or r.state == state)
        ]  # fmt: skip
        return [copy.deepcopy(r) for r in found[offset : offset + limit]]

    async def active_runs(self, limit: int) -> list[str]:
        return [r.id for r in self._runs.values() if r.state == c.RUNNING][:limit]

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
        run = self._runs.get(run_id)
        if run is None or (run_states is not None and run.state not in run_states):
            return False
        rec = run.steps.get(step)
        if rec is None or rec.state not in from_states:
            return False
        for other, states in (requires or {}).items():
            dep = run.steps.get(other)
            if dep is None or dep.state not in states:
                return False
        rec.state = to_state
        for name, value in fields.items():
            setattr(rec, name, copy.deepcopy(value))
        return True

    async def move_run(
        self, run_id: str, *, from_states: Collection[str], to_state: str,
        fields: Mapping[str, Any],
    ) -> bool:  # fmt: skip
        run = self._runs.get(run_id)
        if run is None or run.state not in from_states:
            return False
        run.state = to_state
        for name, value in fields.items():
            setattr(run, name, copy.deepcopy(value))
        return True

    async def delete_runs(self, finished_before: float, limit: int) -> int:
        old = [
            r.id for r in self._runs.values()
            if r.state in c.FINAL_RUN and (r.finished_at or 0) < finished_before
        ][:limit]  # fmt: skip
        for run_id in old:
            del self._runs[run_id]
        gone = set(old)
        for approval_id in [a.id for a in self._approvals.values() if a.run_id in gone]:
            del self._approvals[approval_id]
        return len(old)

    async def create_approval(self, approval: ApprovalRecord) -> None:
        self._approvals[approval.id] = copy.deepcopy(approval)

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        found = self._approvals.get(approval_id)
        return None if found is None else copy.deepcopy(found)

    async def decide_approval(
        self, approval_id: str, *, to_state: str, by: str | None, at: float,
        comment: str | None, unexpired: bool,
    ) -> bool:  # fmt: skip
        rec = self._approvals.get(approval_id)
        if rec is None or rec.state != c.APPROVAL_PENDING:
            return False
        if unexpired and rec.expires_at is not None and rec.expires_at <= at:
            return False
        rec.state, rec.decided_by, rec.decided_at, rec.comment = to_state, by, at, comment
        return True

    async def list_approvals(
        self, *, tenant: str | None, state: str | None, limit: int, offset: int
    ) -> list[ApprovalRecord]:
        found = [
            a for a in reversed(self._approvals.values())
            if (tenant is None or a.tenant == tenant) and (state is None or a.state == state)
        ]  # fmt: skip
        return [copy.deepcopy(a) for a in found[offset : offset + limit]]

    async def pending_approvals(self) -> int:
        return sum(a.state == c.APPROVAL_PENDING for a in self._approvals.values())
