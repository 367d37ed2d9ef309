"""Admin endpoints on the hub's admin router (``/admin/workflows/...``): every tenant."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Query

from headway.web.errors import HTTPError
from headway.workflows import constants as c
from headway.workflows.models import RunNotFound

if TYPE_CHECKING:
    from headway.workflows.core import Workflows

Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]
TenantQ = Annotated[str | None, Query(max_length=200)]
StateQ = Annotated[str | None, Query(max_length=20)]


def _bad(exc: ValueError) -> HTTPError:
    return HTTPError(400, "bad_request", str(exc))


def add_routes(flows: Workflows) -> None:
    router = flows.hw.admin_router

    @router.get("/workflows", summary="Workflow definitions")
    async def definitions() -> dict[str, Any]:
        return {"workflows": [wf.to_spec() for wf in flows.definitions.values()]}

    @router.get("/workflows/runs", summary="Workflow runs, newest first")
    async def runs(
        tenant: TenantQ = None, state: StateQ = None, limit: Limit = 50, offset: Offset = 0
    ) -> dict[str, Any]:
        try:
            found = await flows.runs(tenant=tenant, state=state, limit=limit, offset=offset)
        except ValueError as exc:
            raise _bad(exc) from None
        return {"runs": [r.to_dict() for r in found]}

    @router.get("/workflows/runs/{run_id}", summary="A run with its steps")
    async def run(run_id: str) -> dict[str, Any]:
        try:
            return (await flows.get(run_id)).to_dict(with_spec=True)
        except RunNotFound:
            raise HTTPError(404, "not_found", "workflow run not found") from None

    @router.post("/workflows/runs/{run_id}/cancel", summary="Cancel a running run")
    async def cancel(run_id: str) -> dict[str, Any]:
        try:
            cancelled = await flows.cancel(run_id)
        except RunNotFound:
            raise HTTPError(404, "not_found", "workflow run not found") from None
        return {"cancelled": cancelled}

    @router.get("/workflows/approvals", summary="Approval requests")
    async def approvals(
        tenant: TenantQ = None, state: StateQ = c.APPROVAL_PENDING, limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:  # fmt: skip
        try:
            found = await flows.approvals(tenant=tenant, state=state, limit=limit, offset=offset)
        except ValueError as exc:
            raise _bad(exc) from None
        return {"approvals": [a.to_dict() for a in found]}

    @router.post("/workflows/sweep", summary="Repair running runs, expire overdue approvals")
    async def sweep() -> dict[str, Any]:
        return {"runs_checked": await flows.sweep()}
