"""Tasks (``@jobs.task``), per-call options, job handles and the running job's context."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from headway.jobs import constants as c
from headway.jobs.models import Job, JobCancelled, JobFailed, JobNotFound
from headway.jobs.retry import DEFAULT_BACKOFF, Backoff

if TYPE_CHECKING:
    from headway.jobs.core import Jobs

Hook = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Options of one enqueue; ``None`` means "the task's default"."""

    queue: str | None = None
    priority: int | None = None
    delay: float | None = None
    run_at: datetime | float | None = None
    job_id: str | None = None
    tenant: str | None = None
    user_id: str | None = None
    meta: dict[str, Any] | None = None
    unique_key: str | None = None
    unique_ttl: float | None = None
    session: Any = None  # a SQLAlchemy AsyncSession: enqueue in its transaction

    def delay_seconds(self) -> float:
        if self.delay is not None and self.run_at is not None:
            raise ValueError("give delay= or run_at=, not both")
        if self.run_at is not None:
            at = self.run_at.timestamp() if isinstance(self.run_at, datetime) else self.run_at
            return max(at - time.time(), 0.0)
        if self.delay is not None and self.delay < 0:
            raise ValueError("delay must be >= 0")
        return self.delay or 0.0


@dataclass(frozen=True, slots=True)
class EnqueueCall:
    """One job to enqueue (``task.call(...)``), for :meth:`Jobs.enqueue_many`."""

    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: CallOptions = CallOptions()  # frozen: one shared default is safe


@dataclass(slots=True)
class Task:
    """An async (or sync, run in a thread) function that workers run as jobs."""

    jobs: Jobs
    fn: Callable[..., Any]
    name: str
    queue: str = c.DEFAULT_QUEUE
    retries: int = c.DEFAULT_RETRIES
    backoff: Backoff = DEFAULT_BACKOFF
    timeout: float | None = None
    priority: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    no_retry_on: tuple[type[BaseException], ...] = ()
    on_success: list[Hook] = field(default_factory=list)
    on_failure: list[Hook] = field(default_factory=list)
    on_retry: list[Hook] = field(default_factory=list)
    is_async: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.is_async = inspect.iscoroutinefunction(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly (no job)."""
        return self.fn(*args, **kwargs)

    def call(self, *args: Any, **kwargs: Any) -> EnqueueCall:
        return EnqueueCall(self.name, args, kwargs)

    def options(self, **options: Any) -> BoundTask:
        """``await task.options(delay=5, job_id="x").enqueue(...)``."""
        return BoundTask(self, CallOptions(**options))

    async def enqueue(self, *args: Any, **kwargs: Any) -> JobHandle:
        return await self.jobs.enqueue_one(self.name, args, kwargs)

    def should_retry(self, exc: BaseException) -> bool:
        return isinstance(exc, self.retry_on) and not isinstance(exc, self.no_retry_on)


@dataclass(frozen=True, slots=True)
class BoundTask:
    task: Task
    opts: CallOptions

    def options(self, **options: Any) -> BoundTask:
        return BoundTask(self.task, replace(self.opts, **options))

    def call(self, *args: Any, **kwargs: Any) -> EnqueueCall:
        return EnqueueCall(self.task.name, args, kwargs, self.opts)

    async def enqueue(self, *args: Any, **kwargs: Any) -> JobHandle:
        return await self.task.jobs.enqueue_one(self.task.name, args, kwargs, self.opts)


@dataclass(frozen=True, slots=True)
class JobHandle:
    """A reference to an enqueued job. ``created`` is False when the id already existed."""

    jobs: Jobs
    id: str
    queue: str
    task: str
    created: bool = True

    async def info(self) -> Job:
        job = await self.jobs.get(self.id, queue=self.queue)
        if job is None:
            raise JobNotFound(f"no job {self.id!r} in queue {self.queue!r}")
        return job

    async def status(self) -> str:
        return (await self.info()).state

    async def progress(self) -> tuple[int, str | None]:
        job = await self.info()
        return job.progress, job.progress_message

    async def cancel(self) -> bool:
        return await self.jobs.cancel(self.id, queue=self.queue)

    async def result(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Wait for the job to end: its result, or JobFailed / JobCancelled / TimeoutError."""
        async with asyncio.timeout(timeout):
            pause = 0.005
            while True:
                job = await self.info()
                if job.state == c.SUCCEEDED:
                    return job.result
                if job.state == c.FAILED:
                    raise JobFailed(job)
                if job.state == c.CANCELLED:
                    raise JobCancelled(f"job {self.id} was cancelled")
                await asyncio.sleep(pause)
                pause = min(pause * 1.5, 0.25)


@dataclass(slots=True)
class JobContext:
    """The running job, as seen from inside its task (:func:`current_job`)."""

    id: str
    queue: str
    task: str
    attempt: int
    max_attempts: int
    meta: dict[str, Any]
    tenant: str | None
    user_id: str | None
    _progress: Callable[[int, str | None], Awaitable[bool]]

    async def set_progress(self, progress: int, message: str | None = None) -> bool:
        """Record 0-100 progress (and a message); False if the job lost its lease."""
        if not 0 <= progress <= 100:
            raise ValueError("progress must be between 0 and 100")
        return await self._progress(progress, message)


_current: ContextVar[JobContext | None] = ContextVar("headway_job", default=None)


def job_context() -> JobContext | None:
    """The job the calling code runs in, or None outside a job (a cheap contextvar read)."""
    return _current.get()


def current_job() -> JobContext:
    """The job the calling code runs in; RuntimeError outside a job."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("current_job() called outside a running job")
    return ctx


async def call_hooks(hooks: Sequence[Hook], *args: Any) -> None:
    """Run hooks in order; one that raises is logged and does not stop the others."""
    import logging

    for hook in hooks:
        try:
            out = hook(*args)
            if inspect.isawaitable(out):
                await out
        except Exception:
            logging.getLogger("headway.jobs").exception("job hook %r raised", hook)
