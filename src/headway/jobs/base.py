"""The job backend contract: what memory, SQLite, Redis (and later PostgreSQL) implement.

Semantics every backend keeps (``tests/jobs/test_contract.py`` checks them all):

- A job is identified by ``(queue, id)``. Enqueueing an id that already exists in the
  queue, in any state, stores nothing and reports ``False`` for it.
- ``claim`` is atomic: it first makes due scheduled jobs ready and puts back jobs whose
  lease expired (or fails them when they have used every attempt), then, unless the queue
  is paused, takes up to ``limit`` ready jobs (highest priority first, then oldest due
  time; tenants take turns: each tenant with ready jobs gives up to
  ``ceil(limit / tenants)`` before the rest of ``limit`` is filled, and claim after claim
  the turn starts after the tenant served last) and marks them running with
  ``attempts + 1``, ``worker`` and a lease of ``lease`` seconds. Two claims never return
  the same job while its lease is alive.
- ``(id, attempt)`` is the lease token: ``heartbeat``, ``finish``, ``release`` and
  ``set_progress`` act only on a job that is still running under that token, so a worker
  that lost its lease cannot overwrite the new owner's run.
- A cancel request on a running job is recorded (``cancel_requested``) and reported by
  ``heartbeat``; ``retry`` of a cancelled job clears it.
- Times come from the backend's own clock (Redis ``TIME``; the machine's clock for SQLite,
  which is shared by every process on it), as float seconds since the epoch.
"""

from __future__ import annotations

import asyncio
import builtins
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from headway.jobs import constants as c
from headway.jobs.models import Beat, Claimed, JobRecord, NewJob, Outcome, RateLimit

if TYPE_CHECKING:
    from headway.connections import Connections

Lease = tuple[str, int]  # (job id, attempt)


class JobBackend(ABC):
    """One job store. Constructed with its URL and (optionally) the hub's connections."""

    #: The most jobs :meth:`enqueue` is given at once (its one round trip).
    enqueue_batch: ClassVar[int] = c.MAX_BATCH
    #: Whether :meth:`enqueue_in` (``session=``, transactional enqueue) is supported.
    transactional: ClassVar[bool] = False

    def __init__(self, url: str, connections: Connections | None = None) -> None:
        self.url = url
        self.connections = connections

    async def open(self) -> None:  # noqa: B027  (optional hook)
        """Connect and create what the store needs (tables, scripts). Idempotent."""

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Release what :meth:`open` acquired (never a connection shared by the hub)."""

    async def wait(self, queues: Sequence[str], max_wait: float) -> None:
        """Return when a job may have arrived in ``queues``, or after ``max_wait`` seconds."""
        await asyncio.sleep(max_wait)

    # -- producer ---------------------------------------------------------------------

    @abstractmethod
    async def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[bool | str]:
        """Store ``jobs`` in one round trip. Per job: True when stored, False when its id
        already existed, or the id of the job holding its unique key (see the module doc).
        """

    async def enqueue_in(
        self, session: Any, queue: str, jobs: Sequence[NewJob]
    ) -> list[bool | str]:
        """Like :meth:`enqueue`, written through ``session`` (a SQLAlchemy AsyncSession)
        in its transaction: the jobs exist only if it commits. SQL backends only."""
        raise TypeError(
            f"session= (transactional enqueue) needs a SQL job store "
            f"(PostgreSQL, or SQLite in the session's own database file); "
            f"this one is {type(self).__name__}"
        )

    # -- worker -----------------------------------------------------------------------

    @abstractmethod
    async def claim(
        self, queue: str, worker: str, limit: int, lease: float, rate: RateLimit | None = None
    ) -> list[Claimed]:
        """Atomically take up to ``limit`` ready jobs (see the module docstring), within
        ``rate``: the starts counted over the last ``rate.period`` seconds (by every
        worker) leave room for the claimed ones, in the queue and per tenant."""

    @abstractmethod
    async def heartbeat(
        self, queue: str, worker: str, leases: Sequence[Lease], lease: float
    ) -> Beat:
        """Extend the leases still held; return the ids whose lease this worker lost, and
        those of the held jobs whose cancellation was requested."""

    @abstractmethod
    async def finish(self, queue: str, worker: str, outcomes: Sequence[Outcome]) -> list[bool]:
        """Record how runs ended (one round trip); False for a run whose lease was lost.

        "succeeded" stores the result; "failed" moves the job to the failed store with its
        error and traceback; "cancelled" ends it as cancelled; "retry" schedules it again
        ``delay`` seconds from now (or cancels it when a cancel was requested meanwhile).
        """

    @abstractmethod
    async def release(self, queue: str, worker: str, leases: Sequence[Lease]) -> int:
        """Put running jobs back as queued, giving their attempt back (graceful stop)."""

    @abstractmethod
    async def set_progress(
        self, queue: str, lease: Lease, progress: int, message: str | None
    ) -> bool:
        """Record the progress of a running job; False when the lease is gone."""

    # -- read API ---------------------------------------------------------------------

    @abstractmethod
    async def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """One job (searching every known queue when ``queue`` is None)."""

    @abstractmethod
    async def list(
        self, queue: str, state: str, *, limit: int = 50, offset: int = 0
    ) -> list[JobRecord]:
        """Jobs of a queue in a state: ready ones in claim order, final ones newest first."""

    @abstractmethod
    async def counts(self) -> dict[str, dict[str, int]]:
        """``{queue: {state: count}}`` for every known queue (every state present)."""

    @abstractmethod
    async def queues(self) -> builtins.list[str]:
        """Every queue that ever received a job or was paused, sorted."""

    # -- management -------------------------------------------------------------------

    @abstractmethod
    async def retry(self, queue: str, ids: Sequence[str] | None) -> int:
        """Requeue the given failed or cancelled jobs, or every failed job when ``ids`` is
        None, with their attempts reset; return how many."""

    @abstractmethod
    async def cancel(self, queue: str, job_id: str) -> bool:
        """Cancel a queued or scheduled job (state "cancelled" at once), or request the
        cancellation of a running one (its worker learns it at its next heartbeat and
        acks "cancelled"; should the lease expire or the job be released or end in
        "retry" first, it becomes cancelled then). False when absent or finished."""

    @abstractmethod
    async def delete(self, queue: str, job_id: str) -> bool:
        """Remove a job that is not running; False when absent or running."""

    @abstractmethod
    async def pause(self, queue: str) -> None:
        """Stop claims from ``queue`` (enqueueing still works)."""

    @abstractmethod
    async def resume(self, queue: str) -> None:
        """Undo :meth:`pause`."""

    @abstractmethod
    async def paused(self) -> set[str]:
        """The paused queues."""

    @abstractmethod
    async def clean(
        self, queue: str, state: str, *, keep: int | None = None, older_than: float | None = None
    ) -> int:
        """Delete jobs in a final ``state``: those beyond the newest ``keep`` and those
        finished more than ``older_than`` seconds ago (all of them when both are None)."""
