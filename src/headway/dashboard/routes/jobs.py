"""Jobs: queues (counts, throughput, pause/resume), jobs by state with search, a job's
detail, retry / delete / cancel, retry all failed, clean by age, scheduled and cron jobs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from headway.dashboard.core import PREFIX, safe_next
from headway.dashboard.routes import page
from headway.dashboard.security import Session
from headway.jobs import constants as c
from headway.web.errors import HTTPError

if TYPE_CHECKING:
    from headway.dashboard.core import Dashboard
    from headway.jobs import Jobs
    from headway.jobs.models import Job

PAGE = 50
SEARCH_SCAN = 1000  # jobs of one queue and state read to search them
SCHEDULED_SHOWN = 25


def add(d: Dashboard) -> None:
    if not d.has("jobs"):
        return
    add_pages(d)
    add_actions(d)


def jobs_of(d: Dashboard) -> Jobs:
    return d.hw.jobs


def add_pages(d: Dashboard) -> None:
    @page(d, "/jobs")
    async def queues(request: Request, session: Session) -> Response:
        ctx = await _queues(d)
        ctx["crons"] = _crons(d)
        ctx["scheduled"] = await _scheduled(d, list(ctx["stats"]))
        return d.render(request, session, "jobs.html", **ctx)

    @page(d, "/jobs/live")
    async def queues_live(request: Request, session: Session) -> Response:
        return d.render(request, session, "_queues.html", **await _queues(d))

    @page(d, "/jobs/list")
    async def job_list(request: Request, session: Session) -> Response:
        return await _job_list(d, request, session)

    @page(d, "/jobs/job/{job_id}")
    async def job_detail(request: Request, session: Session) -> Response:
        job = await _job(d, request)
        return d.render(request, session, "job.html", job=job, now=time.time())

    @page(d, "/jobs/job/{job_id}/live")
    async def job_live(request: Request, session: Session) -> Response:
        job = await _job(d, request)
        return d.render(request, session, "_job_live.html", job=job, now=time.time())


async def _queues(d: Dashboard) -> dict[str, Any]:
    await d.sampler.sample()
    points = d.sampler.points()
    rates = points[-1].jobs_per_s_by_queue if points else {}
    stats = await jobs_of(d).stats()
    return {"stats": stats, "states": c.STATES, "rates": rates}


def _crons(d: Dashboard) -> list[dict[str, Any]]:
    now = time.time()
    rows = []
    for entry in jobs_of(d).crons.values():
        try:
            upcoming: float | None = entry.cron.next_timestamp(now)
        except ValueError:
            upcoming = None
        task = jobs_of(d).tasks.get(entry.task)
        rows.append(
            {
                "name": entry.name,
                "expression": entry.cron.expression,
                "task": entry.task,
                "queue": task.queue if task else "",
                "next": upcoming,
            }
        )
    return sorted(rows, key=lambda r: r["next"] or float("inf"))


async def _scheduled(d: Dashboard, queues: list[str]) -> list[Job]:
    found: list[Job] = []
    for queue in queues:
        found += await jobs_of(d).list(queue, c.SCHEDULED, limit=SCHEDULED_SHOWN)
    found.sort(key=lambda j: j.run_at or 0)
    return found[:SCHEDULED_SHOWN]


def _matches(job: Job, needle: str) -> bool:
    needle = needle.lower()
    return any(needle in (v or "").lower() for v in (job.id, job.task, job.tenant))


async def _job_list(d: Dashboard, request: Request, session: Session) -> Response:
    params = request.query_params
    queue = params.get("queue") or c.DEFAULT_QUEUE
    state = params.get("state") or c.QUEUED
    needle = (params.get("q") or "").strip()[:200]
    if state not in c.STATES:
        raise HTTPError(400, "bad_request", f"unknown state {state!r}")
    offset = max(_int(params.get("offset"), 0), 0)
    if needle:
        found = await jobs_of(d).get(needle)
        if found is not None:
            url = f"{PREFIX}/jobs/job/{quote(found.id)}?queue={quote(found.queue)}"
            return RedirectResponse(url, status_code=303)
        scanned = await jobs_of(d).list(queue, state, limit=SEARCH_SCAN)
        jobs = [j for j in scanned if _matches(j, needle)][:PAGE]
        more = False
    else:
        jobs = await jobs_of(d).list(queue, state, limit=PAGE + 1, offset=offset)
        more = len(jobs) > PAGE
        jobs = jobs[:PAGE]
    stats = await jobs_of(d).stats()
    base = {"queue": queue, "state": state}
    return d.render(
        request, session, "job_list.html", jobs=jobs, queue=queue, state=state, q=needle,
        offset=offset, more=more, page=PAGE, queues=sorted(stats), states=c.STATES,
        counts=stats.get(queue, {}), base=urlencode(base), now=time.time(),
    )  # fmt: skip


async def _job(d: Dashboard, request: Request) -> Job:
    job_id = request.path_params["job_id"]
    queue = request.query_params.get("queue") or None
    job = await jobs_of(d).get(job_id, queue)
    if job is None:
        raise HTTPError(404, "not_found", f"no job {job_id!r} (finished jobs are kept a while)")
    return job


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def add_actions(d: Dashboard) -> None:
    def job_url(job_id: str, queue: str | None) -> str:
        return f"{PREFIX}/jobs/job/{quote(job_id)}" + (f"?queue={quote(queue)}" if queue else "")

    async def retry(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        job_id, queue = request.path_params["job_id"], form.get("queue") or None
        ok = await jobs_of(d).retry(job_id, queue)
        text = "requeued" if ok else "not requeued (only failed or cancelled jobs are)"
        return f"Job {job_id} {text}.", job_url(job_id, queue)

    async def cancel(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        job_id, queue = request.path_params["job_id"], form.get("queue") or None
        ok = await jobs_of(d).cancel(job_id, queue)
        return f"Job {job_id} {'cancelled' if ok else 'not cancelled'}.", job_url(job_id, queue)

    async def delete(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        job_id, queue = request.path_params["job_id"], form.get("queue") or None
        ok = await jobs_of(d).delete(job_id, queue)
        back = f"{PREFIX}/jobs/list?queue={quote(queue or c.DEFAULT_QUEUE)}&state=failed"
        return f"Job {job_id} {'deleted' if ok else 'was already gone'}.", back

    async def retry_all(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        queue = form.get("queue") or None
        n = await jobs_of(d).retry_all(queue)
        where = f"queue {queue}" if queue else "every queue"
        return f"{n} failed job(s) of {where} requeued.", safe_next(form.get("next"), _jobs())

    async def clean(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        state = form.get("state", "")
        hours = float(form.get("older_than_hours") or 0)
        if hours < 0:
            raise ValueError("the age must be zero or more hours")
        queue = form.get("queue") or None
        n = await jobs_of(d).clean(state, queue=queue, older_than=hours * 3600 or None)
        return f"{n} {state} job(s) older than {hours:g} h deleted.", _jobs()

    async def pause(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        queue = request.path_params["queue"]
        await jobs_of(d).pause(queue)
        return f"Queue {queue} paused.", safe_next(form.get("next"), _jobs())

    async def resume(request: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        queue = request.path_params["queue"]
        await jobs_of(d).resume(queue)
        return f"Queue {queue} resumed.", safe_next(form.get("next"), _jobs())

    d.action("job_retry", "/jobs/job/{job_id}/retry", retry)
    d.action("job_cancel", "/jobs/job/{job_id}/cancel", cancel)
    d.action("job_delete", "/jobs/job/{job_id}/delete", delete)
    d.action("jobs_retry_all", "/jobs/retry-all", retry_all)
    d.action("jobs_clean", "/jobs/clean", clean)
    d.action("queue_pause", "/jobs/queues/{queue}/pause", pause)
    d.action("queue_resume", "/jobs/queues/{queue}/resume", resume)


def _jobs() -> str:
    return PREFIX + "/jobs"
