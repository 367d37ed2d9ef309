"""Records that cross the backend contract, the public views and the typed errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from headway.errors import HeadwayError
from headway.workflows import constants as c

# The step fields a backend stores besides ``state`` (every one may be updated).
STEP_FIELDS = (
    "job_id", "queue", "attempts", "result", "error", "approval_id",
    "queued_at", "started_at", "finished_at",
)  # fmt: skip
RUN_FIELDS = ("output", "error", "finished_at")


@dataclass(slots=True)
class StepRecord:
    """One step of one run, as stored. ``result`` is any JSON value."""

    name: str
    kind: str = c.TASK
    task: str | None = None
    position: int = 0
    state: str = c.PENDING
    job_id: str | None = None
    queue: str | None = None
    attempts: int = 0
    result: Any = None
    error: str | None = None
    approval_id: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class RunRecord:
    """A run: its definition (``spec``, JSON) travels with it, so any process can advance it."""

    id: str
    workflow: str
    spec: dict[str, Any]
    input: Any = None
    tenant: str | None = None
    user_id: str | None = None
    state: str = c.RUNNING
    output: Any = None
    error: str | None = None
    created_at: float = 0.0
    finished_at: float | None = None
    steps: dict[str, StepRecord] = field(default_factory=dict)

    @property
    def display_state(self) -> str:
        """``waiting`` while a running run has a step waiting for approval."""
        if self.state == c.RUNNING and any(s.state == c.WAITING for s in self.steps.values()):
            return c.WAITING
        return self.state

    def to_dict(self, *, with_spec: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "workflow": self.workflow, "state": self.display_state,
            "tenant": self.tenant, "user_id": self.user_id, "input": self.input,
            "output": self.output, "error": self.error, "created_at": self.created_at,
            "finished_at": self.finished_at,
            "steps": [s.to_dict() for s in sorted(self.steps.values(), key=_pos)],
        }  # fmt: skip
        if with_spec:
            out["spec"] = self.spec
        return out


def _pos(step: StepRecord) -> int:
    return step.position


@dataclass(slots=True)
class ApprovalRecord:
    """A request for a human decision on one approval step."""

    id: str
    run_id: str
    step: str
    tenant: str | None
    approvers: list[str] = field(default_factory=list)  # user ids; empty = anyone in role
    role: str | None = None
    state: str = c.APPROVAL_PENDING
    created_at: float = 0.0
    expires_at: float | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    comment: str | None = None
    workflow: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def may_decide(self, user: str, roles: tuple[str, ...] | list[str] | set[str]) -> bool:
        """No approvers and no role: anyone of the tenant. Otherwise a listed user or role."""
        if not self.approvers and self.role is None:
            return True
        return user in self.approvers or (self.role is not None and self.role in roles)


class WorkflowError(HeadwayError):
    """Base class of the workflow errors."""


class DefinitionError(WorkflowError, ValueError):
    """A workflow definition is invalid (cycle, missing step, unknown task, bad name)."""


class RunNotFound(WorkflowError, LookupError):
    """No run with that id for this tenant (HTTP 404)."""


class ApprovalNotFound(WorkflowError, LookupError):
    """No approval with that id for this tenant (HTTP 404)."""


class ApprovalConflict(WorkflowError):
    """The approval cannot be decided now (HTTP 409); see the subclasses."""


class ApprovalExpired(ApprovalConflict):
    """The approval's expiry passed: the run was stopped."""


class ApprovalAlreadyDecided(ApprovalConflict):
    """Someone approved or rejected it already (or the run ended)."""


class ApprovalForbidden(WorkflowError, PermissionError):
    """The user is not one of the approvers and lacks the role (HTTP 403)."""
