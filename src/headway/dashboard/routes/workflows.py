"""Workflows: runs with each step's state, pending approvals with approve / reject.

The dashboard decides an approval as ``dashboard:<login>`` holding the approval's role
(an operator holds every role); an approval limited to named users refuses it
(ApprovalForbidden, shown as an error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from headway.dashboard.core import PREFIX, safe_next
from headway.dashboard.routes import page
from headway.dashboard.security import Session
from headway.web.errors import HTTPError

if TYPE_CHECKING:
    from headway.dashboard.core import Dashboard

RUNS_SHOWN = 50


def add(d: Dashboard) -> None:
    if not d.has("workflows"):
        return
    from headway.workflows import RunNotFound
    from headway.workflows import constants as c

    @page(d, "/workflows")
    async def workflows(request: Request, session: Session) -> Response:
        state = request.query_params.get("state") or None
        tenant = request.query_params.get("tenant") or None
        if state is not None and state not in c.RUN_STATES:
            raise HTTPError(400, "bad_request", f"unknown run state {state!r}")
        return d.render(
            request, session, "workflows.html", state=state, tenant=tenant,
            states=c.RUN_STATES, **await _live(d, state, tenant),
        )  # fmt: skip

    @page(d, "/workflows/live")
    async def workflows_live(request: Request, session: Session) -> Response:
        state = request.query_params.get("state") or None
        tenant = request.query_params.get("tenant") or None
        ctx = await _live(d, state if state in c.RUN_STATES else None, tenant)
        return d.render(request, session, "_workflows.html", state=state, tenant=tenant, **ctx)

    async def run_page(request: Request, session: Session, template: str) -> Response:
        try:
            found = await d.hw.workflows.get(request.path_params["run_id"])
        except RunNotFound as exc:
            raise HTTPError(404, "not_found", str(exc)) from None
        steps = sorted(found.steps.values(), key=lambda s: s.position)
        return d.render(request, session, template, run=found, steps=steps)

    @page(d, "/workflows/runs/{run_id}")
    async def run(request: Request, session: Session) -> Response:
        return await run_page(request, session, "workflow_run.html")

    @page(d, "/workflows/runs/{run_id}/live")
    async def run_live(request: Request, session: Session) -> Response:
        return await run_page(request, session, "_workflow_run.html")

    add_actions(d)


async def _live(d: Dashboard, state: str | None, tenant: str | None) -> dict[str, Any]:
    wf = d.hw.workflows
    runs = await wf.runs(state=state, tenant=tenant, limit=RUNS_SHOWN)
    approvals = await wf.approvals(tenant=tenant, limit=RUNS_SHOWN)
    return {"runs": runs, "approvals": approvals}


def add_actions(d: Dashboard) -> None:
    async def decide(r: Request, s: Session, form: dict[str, str], verb: str) -> tuple[str, str]:
        approval_id = r.path_params["approval_id"]
        approval = await d.hw.workflows.get_approval(approval_id)
        roles = [approval.role] if approval.role else []
        comment = form.get("comment", "").strip()[:1000] or None
        act = d.hw.workflows.approve if verb == "approve" else d.hw.workflows.reject
        run = await act(approval_id, by=f"dashboard:{s.actor}", roles=roles, comment=comment)
        goto = safe_next(form.get("next"), f"{PREFIX}/workflows/runs/{quote(run.id)}")
        done = "approved" if verb == "approve" else "rejected"
        return f"Step {approval.step} of run {run.id} {done}.", goto

    async def approve(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        return await decide(r, s, form, "approve")

    async def reject(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        return await decide(r, s, form, "reject")

    async def cancel(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        run_id = r.path_params["run_id"]
        ok = await d.hw.workflows.cancel(run_id)
        text = "cancelled" if ok else "had already ended"
        return f"Run {run_id} {text}.", f"{PREFIX}/workflows/runs/{quote(run_id)}"

    d.action("approval_approve", "/workflows/approvals/{approval_id}/approve", approve)
    d.action("approval_reject", "/workflows/approvals/{approval_id}/reject", reject)
    d.action("workflow_cancel", "/workflows/runs/{run_id}/cancel", cancel)
