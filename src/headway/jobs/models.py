"""The records that cross the backend contract, and the job system's exceptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from headway.errors import HeadwayError


class NewJob(NamedTuple):
    """A job to store. ``data`` is the encoded JSON payload (task, args, kwargs, meta...).

    NewJob, Claimed and Outcome are named tuples: one of each is built per job on the hot
    paths, and a tuple is several times cheaper to build than a frozen dataclass."""

    id: str
    task: str
    data: bytes
    priority: int = 0
    max_attempts: int = 1
    delay: float = 0.0  # seconds from the backend's now; > 0 makes the job "scheduled"
    tenant: str | None = None  # claims take turns between tenants
    unique_key: str | None = None  # not stored while another job of the queue holds it
    unique_ttl: float = 0.0  # ... and for this many seconds after it was enqueued


class Claimed(NamedTuple):
    """A job a worker holds a lease on. ``attempt`` (1-based) doubles as the lease token."""

    id: str
    queue: str
    data: bytes
    attempt: int
    max_attempts: int


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``starts`` job starts per ``period`` seconds in a queue, across every
    worker, and at most ``per_tenant`` per tenant (jobs without one share the key "")."""

    starts: int | None = None
    period: float = 1.0
    per_tenant: int | None = None


class Beat(NamedTuple):
    """What a heartbeat learnt: the leases lost, and the held jobs asked to cancel."""

    lost: list[str]
    cancel: list[str]


class Outcome(NamedTuple):
    """How one run ended: "succeeded", "failed", "cancelled" (on request) or "retry"
    (after ``delay`` s; a job asked to cancel meanwhile ends "cancelled" instead)."""

    id: str
    attempt: int
    state: str
    result: bytes | None = None  # JSON of the return value
    error: str | None = None
    traceback: str | None = None
    delay: float = 0.0


@dataclass(slots=True)
class JobRecord:
    """What a backend stores about a job (``data`` still encoded)."""

    id: str
    queue: str
    task: str
    state: str
    data: bytes
    priority: int = 0
    attempts: int = 0
    max_attempts: int = 1
    enqueued_at: float | None = None
    run_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    progress: int = 0
    progress_message: str | None = None
    result: bytes | None = None
    error: str | None = None
    traceback: str | None = None
    cancel_requested: bool = False
    tenant: str = ""  # "" = none (claims take turns between tenants)


@dataclass(slots=True)
class Job:
    """A job as the public read API shows it (payload and result decoded)."""

    id: str
    queue: str
    task: str
    state: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    user_id: str | None = None
    priority: int = 0
    attempts: int = 0
    max_attempts: int = 1
    enqueued_at: float | None = None
    run_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    progress: int = 0
    progress_message: str | None = None
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    cancel_requested: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class JobError(HeadwayError):
    """Base class of the job system's errors."""


class JobFailed(JobError):
    """``handle.result()`` of a job that ended in the failed store."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} ({job.task}) failed: {job.error}")
        self.job = job


class JobCancelled(JobError):
    """``handle.result()`` of a cancelled job."""


class JobNotFound(JobError, LookupError):
    """No job with that id (it never existed or retention removed it)."""


class UnknownTask(JobError, LookupError):
    """``submit`` or a worker met a task name that no ``@task`` registered."""
