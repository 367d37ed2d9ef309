"""Reports of the reference service: a CSV export of a tenant's executions, made by a job.

``POST /api/v1/reports/executions`` answers 202; the ``demo.export_executions`` job (on the
``reports`` queue) streams the tenant's executions into CSV, stores the file with
``hw.storage`` under the tenant's ``reports`` category and hands the user a signed link
(``GET /api/v1/reports/{id}`` shows it once the job is done; a notification carries it
too when the notification capability is configured for the user).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse

from headway import Headway
from headway.demo.auth import CurrentPrincipal
from headway.demo.db import sessionmaker
from headway.demo.models import Execution
from headway.hub import from_request
from headway.jobs import Backoff, Task, current_job
from headway.web import HTTPError

REPORTS_QUEUE = "reports"
LINK_SECONDS = 24 * 3600
COLUMNS = (
    "id",
    "agent_id",
    "user_id",
    "status",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
    "error",
    "prompt",
)
ROWS_PER_CHUNK = 500
ReportId = Annotated[str, Path(pattern=r"^report-[0-9a-f]{32}$")]

router = APIRouter(prefix="/api/v1/reports")

#: ``(hub, tenant id, user id, report) -> None``: how a finished report reaches its user.
#: The service sets it when notifications are available (see ``app.py``).
ReportNotifier = Callable[[Headway, int, int | None, dict[str, Any]], Awaitable[None]]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ would be a formula in a spreadsheet: quote it (CSV
    # injection); the value stays readable.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(execution: Execution) -> list[object]:
    values: list[object] = [getattr(execution, column) for column in COLUMNS[:-1]]
    return [*values, (execution.input or {}).get("prompt")]


async def _csv_chunks(hub: Headway, tenant_id: int, counter: list[int]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    query = select(Execution).where(Execution.tenant_id == tenant_id).order_by(Execution.id)
    async with sessionmaker(hub.connections.engine())() as session:
        result = await session.stream_scalars(query.execution_options(yield_per=ROWS_PER_CHUNK))
        async for execution in result:
            writer.writerow([_cell(value) for value in _row(execution)])
            counter[0] += 1
            if counter[0] % ROWS_PER_CHUNK == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue().encode()


async def notify_user(
    hub: Headway, tenant_id: int, user_id: int | None, report: dict[str, Any]
) -> None:
    """Send the signed link to the user who asked (``report.ready``, their channels)."""
    if user_id is None:
        return
    context = {k: report[k] for k in ("rows", "url", "expires_in")}
    await hub.notify.send(user=user_id, tenant=tenant_id, event="report.ready", context=context)


def register_report_tasks(hub: Headway, notifier: ReportNotifier | None = notify_user) -> Task:
    """Declare ``demo.export_executions`` on ``hub.jobs``; returns the task."""

    async def export_executions(tenant_id: int, user_id: int | None = None) -> dict[str, Any]:
        ctx = current_job()
        await ctx.set_progress(5, "exporting executions")
        rows = [0]
        info = await hub.storage.upload(
            str(tenant_id),
            "reports",
            f"executions-{ctx.id}.csv",
            _csv_chunks(hub, tenant_id, rows),
            content_type="text/csv",
        )
        report = {
            "key": info["key"],
            "rows": rows[0],
            "size": info["size"],
            "url": await hub.storage.signed_url(info["key"], LINK_SECONDS, tenant=str(tenant_id)),
            "expires_in": LINK_SECONDS,
        }
        if notifier is not None:
            await notifier(hub, tenant_id, user_id, report)
        await ctx.set_progress(100, "done")
        return report

    task: Task = hub.jobs.task(
        export_executions,
        name="demo.export_executions",
        queue=REPORTS_QUEUE,
        retries=2,
        backoff=Backoff(base=1, factor=2, cap=30),
        timeout=600,
    )
    return task


def _report_out(job: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": job.id,
        "status": {"succeeded": "completed", "queued": "pending", "scheduled": "pending"}.get(
            job.state, job.state
        ),
        "progress": job.progress,
    }
    if job.state == "succeeded" and isinstance(job.result, dict):
        out.update({k: job.result.get(k) for k in ("rows", "size", "url", "expires_in")})
    if job.state == "failed":
        out["error"] = "the report could not be made; ask for a new one"
    return out


@router.post("/executions", status_code=202, summary="Export the tenant's executions (CSV)")
async def export(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    task: Task = request.app.state.export_executions
    report_id = f"report-{uuid.uuid4().hex}"
    await task.options(
        job_id=report_id,
        tenant=str(principal.tenant_id),
        user_id=None if principal.user_id is None else str(principal.user_id),
    ).enqueue(principal.tenant_id, principal.user_id)
    return JSONResponse(
        {"report_id": report_id, "status": "pending"},
        status_code=202,
        headers={"Location": f"/api/v1/reports/{report_id}"},
    )


@router.get("/{report_id}", summary="A report's status and, when done, its signed link")
async def get_report(
    report_id: ReportId, request: Request, principal: CurrentPrincipal
) -> dict[str, Any]:
    job = await from_request(request).jobs.get(report_id, REPORTS_QUEUE)
    if job is None or job.tenant != str(principal.tenant_id):
        raise HTTPError(404, "not_found", "report not found")
    return _report_out(job)
