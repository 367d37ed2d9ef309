"""Background jobs: tasks, queues, workers, retries, the failed store, delayed and cron jobs.

::

    hw = Headway()
    jobs = hw.add(Jobs(hw))          # backend from HEADWAY_JOBS_URL / REDIS_URL / DATABASE_URL

    @jobs.task(queue="email", retries=3)
    async def send_welcome(user_id: int) -> None: ...

    async with hw:
        handle = await send_welcome.enqueue(42)
        await jobs.worker(["email"]).run()      # or `headway worker app:hw --queues email`

Per call (``task.options(...)``): ``delay`` / ``run_at``, ``priority``, ``job_id``,
``tenant`` (claims take turns between tenants), ``unique_key`` / ``unique_ttl`` (one job
per key at a time: the existing handle comes back), ``session`` (SQL stores: enqueue in
the caller's SQLAlchemy transaction). ``handle.cancel()`` cancels a queued job or stops a
running one; ``jobs.rate_limit(queue, starts, per=, per_tenant=)`` caps job starts across
workers. Backends: ``memory://``, ``sqlite:///``, ``redis://``, ``postgresql://``.
"""

from __future__ import annotations

from headway import registry
from headway.jobs.base import JobBackend
from headway.jobs.constants import (
    CANCELLED,
    DEFAULT_QUEUES,
    FAILED,
    QUEUED,
    RUNNING,
    SCHEDULED,
    STATES,
    SUCCEEDED,
)
from headway.jobs.core import CronEntry, Jobs
from headway.jobs.cron import Cron, CronError
from headway.jobs.models import (
    Job,
    JobCancelled,
    JobError,
    JobFailed,
    JobNotFound,
    RateLimit,
    UnknownTask,
)
from headway.jobs.retry import Backoff, Retry
from headway.jobs.scheduler import Scheduler
from headway.jobs.task import (
    EnqueueCall,
    JobContext,
    JobHandle,
    Task,
    current_job,
    job_context,
)
from headway.jobs.worker import Worker

registry.register("jobs", "memory", "headway.jobs.backends.memory:MemoryJobBackend")
registry.register("jobs", "sqlite", "headway.jobs.backends.sqlite:SQLiteJobBackend")
for _scheme in ("postgresql", "postgres"):
    registry.register(
        "jobs", _scheme, "headway.jobs.backends.postgres:PostgresJobBackend", extra="postgres"
    )
for _scheme in ("redis", "rediss", "unix"):
    registry.register("jobs", _scheme, "headway.jobs.backends.redis:RedisJobBackend", extra="redis")

__all__ = [
    "CANCELLED",
    "DEFAULT_QUEUES",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "SCHEDULED",
    "STATES",
    "SUCCEEDED",
    "Backoff",
    "Cron",
    "CronEntry",
    "CronError",
    "EnqueueCall",
    "Job",
    "JobBackend",
    "JobCancelled",
    "JobContext",
    "JobError",
    "JobFailed",
    "JobHandle",
    "JobNotFound",
    "Jobs",
    "RateLimit",
    "Retry",
    "Scheduler",
    "Task",
    "UnknownTask",
    "Worker",
    "current_job",
    "job_context",
]
