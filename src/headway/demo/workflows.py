"""Workflows of agent executions with a human approval step, on ``hw.workflows``.

``POST /api/v1/workflows/{workflow}/run`` starts a run of a workflow DEFINED IN CODE
here, named by ``{workflow}`` (``GET /api/v1/workflows`` lists them). The one defined:

``agent-review``: ``draft`` (the agent answers the prompt: an Execution, like
``/agents/{id}/execute``) -> ``review`` (a tenant owner approves or rejects; 24 h) ->
``finalize`` (the agent refines its draft: a second Execution).

``GET /api/v1/workflows/runs/{run_id}`` shows every step's state (``GET
/api/v1/workflows/runs?state=`` lists the tenant's runs); approvals are listed
at ``GET /api/v1/approvals?state=pending`` and decided at
``POST /api/v1/approvals/{approval_id}/approve`` or ``/reject``: 404 for another
tenant's (or an unknown) approval, 409 when it expired or was decided already, 403 when
the caller's user lacks the role.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse

from headway import BackendUnavailableError, Headway
from headway.demo.auth import CurrentPrincipal, Principal, Session
from headway.demo.db import sessionmaker
from headway.demo.models import Agent, Execution, ExecutionStatus, User, utcnow
from headway.demo.schemas import Text, _Body
from headway.hub import from_request
from headway.jobs import Backoff, Task, current_job
from headway.web import HTTPError
from headway.workflows import (
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalForbidden,
    ApprovalNotFound,
    ApprovalRecord,
    DefinitionError,
    RunNotFound,
    RunRecord,
    Workflow,
    approval,
    step,
)
from headway.workflows import constants as wc

AGENT_REVIEW = "agent-review"
APPROVER_ROLE = "owner"
REVIEW_HOURS = 24
STEP_TASK = "demo.workflow_agent_step"

router = APIRouter(prefix="/api/v1", tags=["workflows"])
RunId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ApprovalId = RunId
WorkflowName = Annotated[str, Path(min_length=1, max_length=100)]
RunStateQ = Annotated[
    Literal["running", "waiting", "completed", "failed", "cancelled"] | None,
    Query(description="Runs in this state (`waiting`: paused for an approval)."),
]
ApprovalStateQ = Annotated[
    Literal["pending", "approved", "rejected", "expired", "cancelled", "all"],
    Query(description="Approvals in this state (`all`: every state)."),
]


class RunIn(_Body):
    agent_id: Annotated[int, Field(ge=1, le=2**63 - 1)]
    prompt: Annotated[Text, Field(min_length=1, max_length=10_000)]


class DecisionIn(_Body):
    comment: Annotated[Text, Field(max_length=2_000)] | None = None


# -- the step task and the workflow ---------------------------------------------------


async def _new_execution(hub: Headway, data: dict[str, Any], prompt: str) -> int:
    ref = current_job().meta.get(wc.META_KEY) or {}
    async with sessionmaker(hub.connections.engine())() as session:
        execution = Execution(
            tenant_id=data["tenant_id"],
            agent_id=data["agent_id"],
            user_id=data.get("user_id"),
            status=ExecutionStatus.pending.value,
            input={"prompt": prompt, "workflow_run": ref.get("run"), "step": ref.get("step")},
        )
        session.add(execution)
        await session.commit()
        return int(execution.id)


async def _mark_failed(hub: Headway, execution_id: int, error: BaseException) -> None:
    async with sessionmaker(hub.connections.engine())() as session:
        execution = await session.get(Execution, execution_id)
        if execution is not None and execution.status != ExecutionStatus.completed.value:
            execution.status = ExecutionStatus.failed.value
            execution.error = f"{type(error).__name__}: {error}"[:2000]
            execution.finished_at = utcnow()
            await session.commit()


def register_workflows(hub: Headway, *, review_seconds: float = REVIEW_HOURS * 3600) -> Workflow:
    """Declare the step task and the ``agent-review`` workflow (after ``register_tasks``);
    calling it again redefines the workflow (tests shorten the review's expiry)."""
    execute: Task = hub.jobs.tasks["demo.execute_agent"]

    async def agent_step(data: dict[str, Any]) -> dict[str, Any]:
        """One agent execution: the run's prompt, or a refinement of the previous draft."""
        prompt = str(data["prompt"]) if "prompt" in data else f"Refine: {data['text']}"
        execution_id = await _new_execution(hub, data, prompt)
        try:
            output = await execute.fn(execution_id)
        except Exception as exc:
            await _mark_failed(hub, execution_id, exc)
            raise
        keep = ("tenant_id", "agent_id", "user_id")
        return {**{k: data.get(k) for k in keep}, "execution_id": execution_id, **output}

    known = hub.jobs.tasks.get(STEP_TASK)
    task: Task = (
        known
        if known is not None
        else hub.jobs.task(
            agent_step,
            name=STEP_TASK,
            queue="workflows",
            retries=2,
            backoff=Backoff(base=0.2, factor=2, cap=5),
            timeout=60,
        )
    )
    review = approval("review", role=APPROVER_ROLE, expires_in=review_seconds)
    hub.workflows.definitions.pop(AGENT_REVIEW, None)  # called again: the new expiry wins
    return hub.workflows.chain(
        AGENT_REVIEW, step(task, name="draft"), review, step(task, name="finalize")
    )


# -- shapes ---------------------------------------------------------------------------


def run_out(run: RunRecord) -> dict[str, Any]:
    out = run.to_dict()
    out["links"] = {"self": f"/api/v1/workflows/runs/{run.id}"}
    for rec in out["steps"]:
        result = rec.get("result")
        rec["execution_id"] = result.get("execution_id") if isinstance(result, dict) else None
    return out


def approval_out(item: ApprovalRecord) -> dict[str, Any]:
    out = item.to_dict()
    base = f"/api/v1/approvals/{item.id}"
    out["links"] = {
        "approve": f"{base}/approve",
        "reject": f"{base}/reject",
        "run": f"/api/v1/workflows/runs/{item.run_id}",
    }
    return out


def _unavailable() -> HTTPError:
    return HTTPError(503, "unavailable", "workflow store unavailable, retry later",
                     headers={"Retry-After": "5"})  # fmt: skip


# -- routes ---------------------------------------------------------------------------


@router.get("/workflows", summary="The workflows this service defines")
async def list_workflows(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    flows = from_request(request).workflows.definitions
    return {"data": [wf.to_spec() for wf in flows.values()]}


@router.post("/workflows/{workflow}/run", status_code=202, summary="Start a workflow run")
async def start_run(
    workflow: WorkflowName,
    body: RunIn,
    request: Request,
    principal: CurrentPrincipal,
    session: Session,
) -> JSONResponse:
    flows = from_request(request).workflows
    try:
        definition = flows.definition(workflow)
    except DefinitionError:
        raise HTTPError(404, "not_found", f"no workflow named {workflow!r}") from None
    agent = await session.scalar(
        select(Agent.id).where(Agent.id == body.agent_id, Agent.tenant_id == principal.tenant_id)
    )
    if agent is None:
        raise HTTPError(404, "not_found", "agent not found")
    data = {
        "tenant_id": principal.tenant_id, "agent_id": body.agent_id,
        "user_id": principal.user_id, "prompt": body.prompt,
    }  # fmt: skip
    try:
        run = await flows.start(
            definition, data, tenant=principal.tenant_id, user_id=principal.user_id
        )
    except BackendUnavailableError:
        raise _unavailable() from None
    location = f"/api/v1/workflows/runs/{run.id}"
    return JSONResponse(run_out(run), status_code=202, headers={"Location": location})


@router.get("/workflows/runs", summary="The tenant's workflow runs, newest first")
async def list_runs(
    request: Request,
    principal: CurrentPrincipal,
    state: RunStateQ = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    found = await from_request(request).workflows.runs(
        tenant=principal.tenant_id, state=state, limit=limit, offset=offset
    )
    return {"data": [run_out(r) for r in found], "meta": {"limit": limit, "offset": offset}}


@router.get("/workflows/runs/{run_id}", summary="A run and the state of each step")
async def get_run(run_id: RunId, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    try:
        run = await from_request(request).workflows.get(run_id, tenant=principal.tenant_id)
    except RunNotFound:
        raise HTTPError(404, "not_found", "workflow run not found") from None
    return run_out(run)


@router.post("/workflows/runs/{run_id}/cancel", summary="Cancel a running run")
async def cancel_run(
    run_id: RunId, request: Request, principal: CurrentPrincipal
) -> dict[str, Any]:
    flows = from_request(request).workflows
    try:
        if not await flows.cancel(run_id, tenant=principal.tenant_id):
            raise HTTPError(409, "conflict", "the run has already ended")
        return run_out(await flows.get(run_id, tenant=principal.tenant_id))
    except RunNotFound:
        raise HTTPError(404, "not_found", "workflow run not found") from None


@router.get("/approvals", summary="Approval requests of the caller's tenant")
async def list_approvals(
    request: Request,
    principal: CurrentPrincipal,
    state: ApprovalStateQ = "pending",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    found = await from_request(request).workflows.approvals(
        tenant=principal.tenant_id, state=None if state == "all" else state, limit=limit,
        offset=offset,
    )  # fmt: skip
    return {"data": [approval_out(a) for a in found], "meta": {"limit": limit, "offset": offset}}


async def _roles(session: Session, principal: Principal) -> list[str]:
    if principal.user_id is None:
        return []
    role = await session.scalar(
        select(User.role).where(User.id == principal.user_id, User.tenant_id == principal.tenant_id)
    )
    return [] if role is None else [role]


async def _decide(
    action: str, approval_id: str, body: DecisionIn | None, request: Request,
    principal: Principal, session: Session,
) -> dict[str, Any]:  # fmt: skip
    flows = from_request(request).workflows
    decide = flows.approve if action == "approve" else flows.reject
    who = principal.user_id if principal.user_id is not None else f"key-{principal.key_id}"
    try:
        run = await decide(
            approval_id, by=who, tenant=principal.tenant_id,
            roles=await _roles(session, principal), comment=body.comment if body else None,
        )  # fmt: skip
    except ApprovalNotFound:
        raise HTTPError(404, "not_found", "approval not found") from None
    except ApprovalExpired:
        raise HTTPError(409, "approval_expired", "the approval expired; the run stopped") from None
    except ApprovalAlreadyDecided as exc:
        raise HTTPError(409, "approval_decided", str(exc)) from None
    except ApprovalForbidden:
        raise HTTPError(403, "forbidden", f"only a tenant {APPROVER_ROLE} may decide") from None
    except BackendUnavailableError:
        raise _unavailable() from None
    return run_out(run)


@router.post("/approvals/{approval_id}/approve", summary="Approve: the run goes on")
async def approve(
    approval_id: ApprovalId, request: Request, principal: CurrentPrincipal, session: Session,
    body: DecisionIn | None = None,
) -> dict[str, Any]:  # fmt: skip
    return await _decide("approve", approval_id, body, request, principal, session)


@router.post("/approvals/{approval_id}/reject", summary="Reject: the run stops")
async def reject(
    approval_id: ApprovalId, request: Request, principal: CurrentPrincipal, session: Session,
    body: DecisionIn | None = None,
) -> dict[str, Any]:  # fmt: skip
    return await _decide("reject", approval_id, body, request, principal, session)
