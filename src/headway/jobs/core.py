"""The ``jobs`` capability: task registry, enqueue, the read API and management."""

from __future__ import annotations

import builtins
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from headway import registry
from headway.capability import Capability, Readiness
from headway.errors import BackendUnavailableError
from headway.jobs import constants as c
from headway.jobs.base import JobBackend
from headway.jobs.codec import encode_payload, to_job
from headway.jobs.cron import Cron
from headway.jobs.models import Job, JobNotFound, NewJob, RateLimit, UnknownTask
from headway.jobs.retry import DEFAULT_BACKOFF, Backoff
from headway.jobs.settings import JobsSettings
from headway.jobs.task import CallOptions, EnqueueCall, Hook, JobHandle, Task
from headway.settings import load_section

_NO_OPTIONS = CallOptions()
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_PG_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from headway.hub import Headway
    from headway.jobs.metrics import JobMetrics
    from headway.jobs.scheduler import Scheduler
    from headway.jobs.worker import Worker


@dataclass(frozen=True, slots=True)
class CronEntry:
    name: str
    cron: Cron
    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None


def _unavailable(exc: BaseException) -> bool:
    """A connection-level failure (server down, reset) rather than a bug."""
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    kind = type(exc)
    if kind.__module__.startswith("asyncpg"):
        names = {k.__name__ for k in kind.__mro__}
        return bool(names & {"PostgresConnectionError", "OperatorInterventionError"}) or (
            "InterfaceError" in names and "closed" in str(exc)
        )
    return kind.__module__.startswith("redis") and "Connection" in kind.__name__


class Jobs(Capability):
    """Background jobs. ``jobs = hw.add(Jobs(hw))``, then ``@jobs.task`` and ``jobs.worker()``."""

    name = "jobs"

    def __init__(
        self,
        hw: Headway,
        url: str | None = None,
        *,
        settings: JobsSettings | None = None,
        keep_succeeded: int | None = None,
        keep_failed: int | None = None,
        max_age: float | None = None,
    ) -> None:
        """``settings`` defaults to the ``HEADWAY_JOBS_*`` environment; the keyword
        arguments, when given, override it."""
        super().__init__(hw)
        self.settings = s = settings or load_section(JobsSettings)
        self.url = url or hw.settings.backend_url("jobs")
        self.keep_succeeded = s.keep_succeeded if keep_succeeded is None else keep_succeeded
        self.keep_failed = s.keep_failed if keep_failed is None else keep_failed
        self.max_age = s.max_age if max_age is None else max_age
        self.tasks: dict[str, Task] = {}
        self.crons: dict[str, CronEntry] = {}
        self.hooks: dict[str, list[Hook]] = {"success": [], "failure": [], "retry": []}
        self.rate_limits: dict[str, RateLimit] = {}
        self._backend: JobBackend | None = None
        self.metrics: JobMetrics | None = None  # set by register_metrics (headway.observe)

    # -- lifecycle --------------------------------------------------------------------

    @property
    def backend(self) -> JobBackend:
        if self._backend is None:
            raise RuntimeError("jobs are not started: use `async with hw:` or `await hw.start()`")
        return self._backend

    @property
    def transactional(self) -> bool:
        """Whether ``session=`` (enqueue in the caller's SQL transaction) is available: a
        PostgreSQL job store, or SQLite (for sessions on the jobs database file)."""
        return self.backend.transactional

    async def start(self) -> None:
        if self._backend is not None:
            return
        url = self._backend_url()
        cls = registry.resolve("jobs", url)
        backend: JobBackend = cls(url, self.hw.connections)
        await backend.open()
        self._backend = backend

    def _backend_url(self) -> str:
        """The URL with the settings as the backend's own options unless the URL sets them:
        ``HEADWAY_JOBS_REDIS_PREFIX`` as Redis ``?prefix=``; ``HEADWAY_JOBS_PG_SCHEMA`` and
        ``HEADWAY_JOBS_PG_NOTIFY`` as PostgreSQL ``?jobs_schema=`` and ``?notify=``."""
        parts = urlsplit(self.url)
        given = dict(parse_qsl(parts.query))
        extra: dict[str, str] = {}
        if parts.scheme in _REDIS_SCHEMES:
            extra["prefix"] = self.settings.redis_prefix
        elif parts.scheme in _PG_SCHEMES:
            schema = self.settings.pg_schema
            if "pg_schema" not in self.settings.model_fields_set and given.get("schema"):
                # the application lives in a schema of its own (?schema=): so do its jobs
                schema = f"{given['schema']}_jobs"[:63]
            extra["jobs_schema"] = schema
            extra["notify"] = "1" if self.settings.pg_notify else "0"
        added = [f"{k}={v}" for k, v in extra.items() if k not in given]
        if not added:
            return self.url
        query = "&".join(q for q in (parts.query, *added) if q)
        return urlunsplit(parts._replace(query=query))

    async def stop(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            await backend.close()

    # -- observability (headway.observe) ----------------------------------------------

    def register_metrics(self, registry: CollectorRegistry) -> None:
        from headway.jobs.metrics import JobMetrics

        self.metrics = JobMetrics(registry)

    async def refresh_metrics(self) -> None:
        if self.metrics is not None and self._backend is not None:
            self.metrics.counts(await self._call(self._backend.counts))

    async def check_ready(self) -> Readiness | None:
        counts = await self._call(self.backend.counts)
        pending = {q: s[c.QUEUED] + s[c.SCHEDULED] for q, s in counts.items()}
        return Readiness(ok=True, detail={"pending": pending})

    # -- declaring tasks --------------------------------------------------------------

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        queue: str = c.DEFAULT_QUEUE,
        retries: int = c.DEFAULT_RETRIES,
        backoff: Backoff = DEFAULT_BACKOFF,
        timeout: float | None = None,
        priority: int = 0,
        retry_on: Sequence[type[BaseException]] = (Exception,),
        no_retry_on: Sequence[type[BaseException]] = (),
        on_success: Hook | None = None,
        on_failure: Hook | None = None,
        on_retry: Hook | None = None,
    ) -> Any:
        """Register a task: ``@jobs.task`` or ``@jobs.task(queue="email", retries=5)``."""
        if retries < 0:
            raise ValueError("retries must be >= 0")
        _check_priority(priority)

        check_queue(queue)

        def register(func: Callable[..., Any]) -> Task:
            task_name = name or f"{func.__module__}.{func.__qualname__}"
            if task_name in self.tasks:
                raise ValueError(f"a task named {task_name!r} is already registered")
            task = Task(
                self, func, task_name, queue, retries, backoff, timeout, priority,
                tuple(retry_on), tuple(no_retry_on),
                [h for h in (on_success,) if h], [h for h in (on_failure,) if h],
                [h for h in (on_retry,) if h],
            )  # fmt: skip
            self.tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    def cron(
        self,
        expression: str,
        *,
        name: str | None = None,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        **task_options: Any,
    ) -> Callable[[Callable[..., Any]], Task]:
        """Register a task and run it on a cron schedule (UTC), once per tick."""
        schedule = Cron.parse(expression)

        def register(func: Callable[..., Any]) -> Task:
            task: Task = self.task(func, name=name, **task_options)
            self.crons[task.name] = CronEntry(task.name, schedule, task.name, tuple(args), kwargs)
            return task

        return register

    def rate_limit(
        self, queue: str, starts: int | None = None, per: float = 1.0, *,
        per_tenant: int | None = None,
    ) -> RateLimit:  # fmt: skip
        """Limit ``queue`` to ``starts`` job starts per ``per`` seconds across every worker
        (and/or ``per_tenant`` starts per tenant): jobs beyond it wait, they do not fail.
        Every process serving the queue must declare the same limit (it is code, like
        the tasks); the counting is in the job store."""
        check_queue(queue)
        for value in (starts, per_tenant):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError("starts and per_tenant must be ints >= 1 (or None)")
        if starts is None and per_tenant is None:
            raise ValueError("give starts= and/or per_tenant=")
        if not isinstance(per, int | float) or not 0.001 <= per <= 86_400:
            raise ValueError("per must be between 0.001 and 86400 seconds")
        limit = self.rate_limits[queue] = RateLimit(starts, float(per), per_tenant)
        return limit

    def on_success(self, hook: Hook) -> Hook:
        """Global hook ``hook(ctx, result)`` after every successful job."""
        self.hooks["success"].append(hook)
        return hook

    def on_failure(self, hook: Hook) -> Hook:
        """Global hook ``hook(ctx, error)`` when a job lands in the failed store."""
        self.hooks["failure"].append(hook)
        return hook

    def on_retry(self, hook: Hook) -> Hook:
        """Global hook ``hook(ctx, error, delay)`` when a job is scheduled for another try."""
        self.hooks["retry"].append(hook)
        return hook

    # -- enqueueing -------------------------------------------------------------------

    async def submit(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> JobHandle:
        """Enqueue by task name (for callers that do not import the task)."""
        opts = CallOptions(**options) if options else _NO_OPTIONS
        return await self.enqueue_one(name, tuple(args), dict(kwargs or {}), opts)

    def _new_job(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], opts: CallOptions
    ) -> tuple[str, NewJob]:
        task = self.tasks.get(name)
        if task is None:
            raise UnknownTask(f"no task named {name!r}; registered: {sorted(self.tasks)}")
        priority = task.priority
        if opts.priority is not None:
            priority = opts.priority
            _check_priority(priority)
        data = encode_payload(
            task.name, args, kwargs, meta=opts.meta, tenant=opts.tenant, user_id=opts.user_id
        )
        delay = 0.0 if opts is _NO_OPTIONS else opts.delay_seconds()
        job_id = opts.job_id or os.urandom(16).hex()
        if opts.unique_key is not None or opts.unique_ttl is not None:
            _check_unique(opts.unique_key, opts.unique_ttl)
        new = NewJob(
            job_id, task.name, data, priority, task.retries + 1, delay, opts.tenant,
            opts.unique_key, opts.unique_ttl or 0.0,
        )  # fmt: skip
        return (check_queue(opts.queue) if opts.queue else task.queue), new

    async def enqueue_one(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: CallOptions | None = None,
    ) -> JobHandle:
        """Enqueue one job (what ``task.enqueue()`` calls): one backend round trip."""
        opts = options or _NO_OPTIONS
        queue, new = self._new_job(name, args, kwargs, opts)
        try:
            if opts.session is not None:
                (created,) = await self.backend.enqueue_in(opts.session, queue, (new,))
            else:
                (created,) = await self.backend.enqueue(queue, (new,))
        except Exception as exc:
            if _unavailable(exc):
                raise BackendUnavailableError(f"job backend unavailable: {exc}") from exc
            raise
        return _handle(self, queue, new, created)

    async def enqueue_many(
        self, calls: Iterable[EnqueueCall], *, session: Any = None
    ) -> list[JobHandle]:
        """Enqueue jobs, one backend round trip per queue and batch (``enqueue_batch``);
        with ``session`` (SQL stores), in that SQLAlchemy session's transaction."""
        # Every TypeError before any write.
        prepared = [self._new_job(e.task, e.args, e.kwargs, e.options) for e in calls]
        if session is not None:
            return await self._enqueue_in(session, prepared)
        by_queue: dict[str, list[int]] = {}
        for index, (queue, _) in enumerate(prepared):
            by_queue.setdefault(queue, []).append(index)
        created: list[bool | str] = [True] * len(prepared)
        size = self.backend.enqueue_batch
        for queue, indexes in by_queue.items():
            for start in range(0, len(indexes), size):
                chunk = indexes[start : start + size]
                flags = await self._call(
                    self.backend.enqueue, queue, [prepared[i][1] for i in chunk]
                )
                for i, flag in zip(chunk, flags, strict=True):
                    created[i] = flag
        return [_handle(self, queue, new, created[i]) for i, (queue, new) in enumerate(prepared)]

    async def _enqueue_in(
        self, session: Any, prepared: list[tuple[str, NewJob]]
    ) -> list[JobHandle]:
        handles: list[JobHandle] = []
        for queue, new in prepared:  # in the caller's transaction: usually a job or two
            (created,) = await self._call(self.backend.enqueue_in, session, queue, [new])
            handles.append(_handle(self, queue, new, created))
        return handles

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the backend; a connection failure becomes BackendUnavailableError."""
        try:
            return await method(*args, **kwargs)
        except Exception as exc:
            if _unavailable(exc):
                raise BackendUnavailableError(f"job backend unavailable: {exc}") from exc
            raise

    # -- read API ---------------------------------------------------------------------

    async def get(self, job_id: str, queue: str | None = None) -> Job | None:
        rec = await self._call(self.backend.get, job_id, queue)
        return None if rec is None else to_job(rec)

    def handle(self, job_id: str, queue: str = c.DEFAULT_QUEUE, task: str = "") -> JobHandle:
        """A handle on a job known by id (e.g. stored by the caller after enqueue)."""
        return JobHandle(self, job_id, queue, task, created=False)

    async def _require(self, job_id: str, queue: str | None) -> Job:
        job = await self.get(job_id, queue)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job

    async def list(
        self, queue: str = c.DEFAULT_QUEUE, state: str = c.QUEUED, *, limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:  # fmt: skip
        if state not in c.STATES:
            raise ValueError(f"unknown state {state!r}; states: {', '.join(c.STATES)}")
        recs = await self._call(self.backend.list, queue, state, limit=limit, offset=offset)
        return [to_job(r) for r in recs]

    async def stats(self) -> dict[str, dict[str, Any]]:
        """``{queue: {state: count, ..., "paused": bool}}``."""
        counts = await self._call(self.backend.counts)
        paused = await self._call(self.backend.paused)
        out: dict[str, dict[str, Any]] = {}
        for queue in sorted(set(counts) | paused):
            row: dict[str, Any] = dict(counts.get(queue, dict.fromkeys(c.STATES, 0)))
            row["paused"] = queue in paused
            out[queue] = row
        return out

    async def queues(self) -> builtins.list[str]:
        return list(await self._call(self.backend.queues))

    async def failed(self, queue: str | None = None, *, limit: int = 50) -> builtins.list[Job]:
        """The failed store (every queue when ``queue`` is None), newest first."""
        names = [queue] if queue else await self.queues()
        out: builtins.list[Job] = []
        for name in names:
            out += await self.list(name, c.FAILED, limit=limit)
        out.sort(key=lambda j: -(j.finished_at or 0))
        return out[:limit]

    # -- management -------------------------------------------------------------------

    async def retry(self, job_id: str, queue: str | None = None) -> bool:
        """Requeue one failed or cancelled job (attempts reset)."""
        job = await self._require(job_id, queue)
        return bool(await self._call(self.backend.retry, job.queue, [job.id]))

    async def retry_all(self, queue: str | None = None) -> int:
        names = [queue] if queue else await self.queues()
        return sum([await self._call(self.backend.retry, name, None) for name in names])

    async def cancel(self, job_id: str, queue: str | None = None) -> bool:
        job = await self._require(job_id, queue)
        return bool(await self._call(self.backend.cancel, job.queue, job.id))

    async def delete(self, job_id: str, queue: str | None = None) -> bool:
        job = await self._require(job_id, queue)
        return bool(await self._call(self.backend.delete, job.queue, job.id))

    async def pause(self, queue: str) -> None:
        await self._call(self.backend.pause, check_queue(queue))

    async def resume(self, queue: str) -> None:
        await self._call(self.backend.resume, queue)

    async def clean(
        self, state: str, *, queue: str | None = None, older_than: float | None = None,
        keep: int | None = None,
    ) -> int:  # fmt: skip
        """Delete final-state jobs (see :meth:`JobBackend.clean`)."""
        if state not in c.FINAL_STATES:
            raise ValueError(f"clean takes a final state: {', '.join(sorted(c.FINAL_STATES))}")
        names = [queue] if queue else await self.queues()
        total = 0
        for name in names:
            total += await self._call(
                self.backend.clean, name, state, keep=keep, older_than=older_than
            )
        return total

    async def apply_retention(self, queues: Iterable[str]) -> int:
        """Keep the newest ``keep_succeeded`` / ``keep_failed`` per queue (and ``max_age``)."""
        removed = 0
        for queue in queues:
            for state, keep in ((c.SUCCEEDED, self.keep_succeeded), (c.FAILED, self.keep_failed)):
                removed += await self.backend.clean(
                    queue, state, keep=keep, older_than=self.max_age
                )
        return removed

    # -- running ----------------------------------------------------------------------

    def worker(self, queues: Sequence[str] | None = None, **options: Any) -> Worker:
        from headway.jobs.worker import Worker

        return Worker(self, queues, **options)

    def scheduler(self, **options: Any) -> Scheduler:
        from headway.jobs.scheduler import Scheduler

        return Scheduler(self, **options)


def _handle(jobs: Jobs, queue: str, new: NewJob, created: bool | str) -> JobHandle:
    """The handle of an enqueued job; of the job holding its unique key when that was taken."""
    if isinstance(created, str):
        return JobHandle(jobs, created, queue, new.task, False)
    return JobHandle(jobs, new.id, queue, new.task, created)


_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def check_queue(queue: str) -> str:
    """Queue names go into Redis hash tags: letters, digits and ``_.:-`` only."""
    if not isinstance(queue, str) or not _QUEUE_NAME.fullmatch(queue):
        raise ValueError(f"invalid queue name {queue!r}: use 1-100 of A-Z a-z 0-9 _ . : -")
    return queue


def _check_unique(key: str | None, ttl: float | None) -> None:
    if not isinstance(key, str) or not 1 <= len(key) <= 255:
        raise ValueError("unique_key must be a string of 1-255 characters")
    if ttl is not None and (not isinstance(ttl, int | float) or not 0 <= ttl <= 366 * 86400):
        raise ValueError("unique_ttl must be a number of seconds between 0 and a year")


def _check_priority(priority: int) -> None:
    if not isinstance(priority, int) or not c.MIN_PRIORITY <= priority <= c.MAX_PRIORITY:
        raise ValueError(f"priority must be an int in {c.MIN_PRIORITY}..{c.MAX_PRIORITY}")
