"""Who may join which realtime channel in the reference service.

A connection authenticates with the same API keys as the REST API: the
``Authorization: Bearer hw_...`` header, or ``?access_token=hw_...`` for browsers
(``EventSource`` and ``WebSocket`` cannot set headers). Then:

- ``tenant.{id}``: the key's own tenant only;
- ``user.{id}``: the key's own user only;
- ``agent.{id}``, ``execution.{id}``, ``post.{id}``: a row of the key's tenant;
- ``workflow.{run_id}``: a workflow run of the key's tenant.

Anything else is refused, so a client never joins another tenant's channel.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from starlette.requests import HTTPConnection

from headway import Headway
from headway.demo.auth import CurrentPrincipal, Principal, find_key
from headway.demo.db import sessionmaker
from headway.demo.events import ApprovalRequested, WorkflowCompleted, WorkflowFailed
from headway.demo.models import Agent, Execution, Post

router = APIRouter(prefix="/api/v1")
_ROWS: dict[str, Any] = {"agent": Agent, "execution": Execution, "post": Post}
_NO_ONE = object()


def install_realtime(hub: Headway) -> None:
    """Register the demo's channel authorizer on ``hub.events`` (before the hub starts)."""

    @hub.events.authorize
    async def authorize(conn: HTTPConnection, channel: str) -> bool:
        principal = await principal_of(hub, conn)
        if principal is None:
            return False
        conn.state.headway_tenant = str(principal.tenant_id)  # connection gauge label
        return await may_join(hub, principal, channel)


def install_workflow_events(hub: Headway) -> None:
    """Dispatch WorkflowCompleted / WorkflowFailed / ApprovalRequested from the
    ``hub.workflows`` hooks (runs whose tenant is a demo tenant id)."""
    workflows = hub.workflows

    async def completed(run: Any) -> None:
        if _tenant(run.tenant) is not None:
            await hub.events.dispatch(WorkflowCompleted(**_run_fields(run)))

    async def failed(run: Any) -> None:
        if _tenant(run.tenant) is not None:
            error = str(run.error or "")[:2000]
            await hub.events.dispatch(WorkflowFailed(**_run_fields(run), error=error))

    async def approval_requested(approval: Any, run: Any) -> None:
        tenant = _tenant(run.tenant)
        if tenant is None:
            return
        approvers = [int(a) for a in approval.approvers if str(a).isdigit()]
        event = ApprovalRequested(
            tenant_id=tenant, run_id=run.id, approval_id=approval.id, step=approval.step,
            role=approval.role, approver_ids=approvers,
        )  # fmt: skip
        await hub.events.dispatch(event)

    workflows.on_completed(completed)
    workflows.on_failed(failed)
    workflows.on_approval_requested(approval_requested)


def _tenant(value: Any) -> int | None:
    text = str(value) if value is not None else ""
    return int(text) if text.isdigit() and len(text) < 19 else None


def _run_fields(run: Any) -> dict[str, Any]:
    user = str(run.user_id) if run.user_id is not None else ""
    return {
        "tenant_id": _tenant(run.tenant),
        "run_id": run.id,
        "workflow": run.workflow,
        "user_id": int(user) if user.isdigit() and len(user) < 19 else None,
    }


async def principal_of(hub: Headway, conn: HTTPConnection) -> Principal | None:
    """The caller's API key, looked up once per connection."""
    cached = getattr(conn.state, "demo_principal", None)
    if cached is not None:
        return None if cached is _NO_ONE else cached
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    token = token or conn.query_params.get("access_token", "")
    principal = None
    if token:
        async with sessionmaker(hub.connections.engine())() as session:
            row = await find_key(session, token)
            if row is not None:
                principal = Principal(row.tenant_id, row.tenant.plan, row.user_id, row.id)
    conn.state.demo_principal = _NO_ONE if principal is None else principal
    return principal


async def may_join(hub: Headway, principal: Principal, channel: str) -> bool:
    kind, _, ident = channel.partition(".")
    if kind == "workflow":
        return await _own_run(hub, principal, ident)
    if not ident.isdigit() or len(ident) > 18:
        return False
    number = int(ident)
    if kind == "tenant":
        return number == principal.tenant_id
    if kind == "user":
        return principal.user_id is not None and number == principal.user_id
    model = _ROWS.get(kind)
    if model is None:
        return False
    stmt = select(model.id).where(model.id == number, model.tenant_id == principal.tenant_id)
    async with sessionmaker(hub.connections.engine())() as session:
        return (await session.scalar(stmt)) is not None


async def _own_run(hub: Headway, principal: Principal, run_id: str) -> bool:
    workflows = hub.capabilities.get("workflows")
    if workflows is None or not run_id:
        return False
    try:
        await workflows.get(run_id, tenant=principal.tenant_id)  # type: ignore[attr-defined]
    except Exception:  # not found, or another tenant's
        return False
    return True


@router.get("/realtime/channels", summary="The realtime channels the caller may join")
async def my_channels(principal: CurrentPrincipal) -> dict[str, Any]:
    """Where to connect and the caller's own channels (resource channels on request)."""
    own = [f"tenant.{principal.tenant_id}"]
    if principal.user_id is not None:
        own.append(f"user.{principal.user_id}")
    return {
        "channels": own,
        "resource_channels": ["agent.{id}", "execution.{id}", "post.{id}", "workflow.{run_id}"],
        "websocket": "/realtime/ws?channels=" + ",".join(own),
        "sse": "/realtime/sse?channels=" + ",".join(own),
    }
