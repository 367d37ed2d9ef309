"""``memory://``: the job store in one process's memory (tests, single-process apps).

Ready and scheduled jobs sit in heaps with lazy deletion: an entry is live only while
its job is still in that state with the same sequence number.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextlib
import heapq
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from headway.jobs import constants as c
from headway.jobs.base import JobBackend, Lease
from headway.jobs.models import Beat, Claimed, JobRecord, NewJob, Outcome, RateLimit


@dataclass
class _Queue:
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    # tenant ("" = none) -> heap of its ready jobs
    ready: dict[str, list[tuple[int, float, int, str]]] = field(default_factory=dict)
    scheduled: list[tuple[float, int, str]] = field(default_factory=list)
    seq: dict[str, int] = field(default_factory=dict)  # id -> seq of its live heap entry
    lease: dict[str, float] = field(default_factory=dict)  # running id -> lease end
    unique: dict[str, tuple[str, float]] = field(default_factory=dict)  # key -> (id, until)
    starts: collections.deque[tuple[float, str]] = field(default_factory=collections.deque)


class MemoryJobBackend(JobBackend):
    def __init__(self, url: str = "memory://", connections: object | None = None) -> None:
        super().__init__(url, None)
        self._queues: dict[str, _Queue] = {}
        self._paused: set[str] = set()
        self._counter = itertools.count()
        self._after: dict[str, str] = {}  # queue -> the tenant served last
        self._arrived = asyncio.Event()

    def _q(self, queue: str) -> _Queue:
        return self._queues.setdefault(queue, _Queue())

    def _notify(self) -> None:
        self._arrived.set()
        self._arrived = asyncio.Event()

    async def wait(self, queues: Sequence[str], max_wait: float) -> None:
        event = self._arrived
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max_wait)

    # -- state moves ------------------------------------------------------------------

    def _make_ready(self, q: _Queue, rec: JobRecord, now: float) -> None:
        rec.state, rec.run_at, rec.worker = c.QUEUED, now, None
        seq = next(self._counter)
        q.seq[rec.id] = seq
        heapq.heappush(q.ready.setdefault(rec.tenant, []), (-rec.priority, now, seq, rec.id))

    def _schedule(self, q: _Queue, rec: JobRecord, at: float) -> None:
        rec.state, rec.run_at, rec.worker = c.SCHEDULED, at, None
        seq = next(self._counter)
        q.seq[rec.id] = seq
        heapq.heappush(q.scheduled, (at, seq, rec.id))

    def _finalize(self, q: _Queue, rec: JobRecord, state: str, now: float) -> None:
        rec.state, rec.finished_at = state, now
        q.lease.pop(rec.id, None)
        q.seq.pop(rec.id, None)

    def _live(self, q: _Queue, job_id: str, seq: int, state: str) -> JobRecord | None:
        rec = q.jobs.get(job_id)
        if rec is None or rec.state != state or q.seq.get(job_id) != seq:
            return None
        return rec

    def _promote_and_reap(self, q: _Queue, now: float) -> None:
        while q.scheduled and q.scheduled[0][0] <= now:
            _, seq, job_id = heapq.heappop(q.scheduled)
            rec = self._live(q, job_id, seq, c.SCHEDULED)
            if rec is not None:
                self._make_ready(q, rec, rec.run_at or now)
        for job_id, until in list(q.lease.items()):
            if until < now:
                rec = q.jobs[job_id]
                q.lease.pop(job_id)
                if rec.cancel_requested:
                    self._finalize(q, rec, c.CANCELLED, now)
                elif rec.attempts >= rec.max_attempts:
                    rec.error = "lease expired (worker lost) after the last attempt"
                    self._finalize(q, rec, c.FAILED, now)
                else:
                    self._make_ready(q, rec, now)

    def _running(self, q: _Queue, worker: str | None, lease: Lease) -> JobRecord | None:
        rec = q.jobs.get(lease[0])
        if rec is None or rec.state != c.RUNNING or rec.attempts != lease[1]:
            return None
        if worker is not None and rec.worker != worker:
            return None
        return rec

    def _holder(self, q: _Queue, key: str | None, now: float) -> str | None:
        """The id of the job holding unique ``key``: unfinished, or within its TTL."""
        if key is None or key not in q.unique:
            return None
        job_id, until = q.unique[key]
        rec = q.jobs.get(job_id)
        if rec is not None and (rec.state not in c.FINAL_STATES or until > now):
            return job_id
        del q.unique[key]
        return None

    # -- contract ---------------------------------------------------------------------

    async def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[bool | str]:
        q, now = self._q(queue), time.time()
        created: list[bool | str] = []
        for new in jobs:
            holder = self._holder(q, new.unique_key, now)
            if holder is not None:
                created.append(holder)
                continue
            if new.id in q.jobs:
                created.append(False)
                continue
            if new.unique_key is not None:
                q.unique[new.unique_key] = (new.id, now + new.unique_ttl)
            rec = JobRecord(
                id=new.id,
                queue=queue,
                task=new.task,
                state=c.QUEUED,
                data=new.data,
                priority=new.priority,
                max_attempts=new.max_attempts,
                enqueued_at=now,
                tenant=new.tenant or "",
            )
            q.jobs[new.id] = rec
            if new.delay > 0:
                self._schedule(q, rec, now + new.delay)
            else:
                self._make_ready(q, rec, now)
            created.append(True)
        self._notify()
        return created

    async def claim(
        self, queue: str, worker: str, limit: int, lease: float, rate: RateLimit | None = None
    ) -> list[Claimed]:
        q, now = self._q(queue), time.time()
        self._promote_and_reap(q, now)
        out: list[Claimed] = []
        if queue in self._paused:
            return out
        room = _Room(q, rate, now)
        limit = min(limit, room.total)
        # Tenants take turns, starting after the one served last: one job each per round.
        after = self._after.get(queue, "")
        tenants = sorted(t for t, heap in q.ready.items() if heap)
        turn = [t for t in tenants if t > after] + [t for t in tenants if t <= after]
        while turn and len(out) < limit:
            served = []
            for tenant in turn:
                if len(out) >= limit:
                    break
                rec = self._pop_ready(q, tenant) if room.left(tenant) > 0 else None
                if rec is None:
                    continue
                room.take(tenant, now)
                served.append(tenant)
                self._after[queue] = tenant
                rec.state, rec.worker, rec.started_at = c.RUNNING, worker, now
                rec.attempts += 1
                q.lease[rec.id] = now + lease
                out.append(Claimed(rec.id, queue, rec.data, rec.attempts, rec.max_attempts))
            turn = served
        return out

    def _pop_ready(self, q: _Queue, tenant: str) -> JobRecord | None:
        """The tenant's best ready job, taken off its heap (None when it has none)."""
        heap = q.ready[tenant]
        while heap:
            _, _, seq, job_id = heapq.heappop(heap)
            rec = self._live(q, job_id, seq, c.QUEUED)
            if rec is not None:
                q.seq.pop(job_id)
                return rec
        del q.ready[tenant]
        return None

    async def heartbeat(
        self, queue: str, worker: str, leases: Sequence[Lease], lease: float
    ) -> Beat:
        q, now, beat = self._q(queue), time.time(), Beat([], [])
        for token in leases:
            rec = self._running(q, worker, token)
            if rec is None:
                beat.lost.append(token[0])
                continue
            q.lease[token[0]] = now + lease
            if rec.cancel_requested:
                beat.cancel.append(token[0])
        return beat

    async def finish(self, queue: str, worker: str, outcomes: Sequence[Outcome]) -> list[bool]:
        q, now, done = self._q(queue), time.time(), []
        for o in outcomes:
            rec = self._running(q, worker, (o.id, o.attempt))
            done.append(rec is not None)
            if rec is None:
                continue
            q.lease.pop(o.id, None)
            if o.state == c.SUCCEEDED:
                rec.result, rec.progress = o.result, 100
                self._finalize(q, rec, c.SUCCEEDED, now)
                continue
            rec.error, rec.traceback = o.error, o.traceback
            if o.state == "retry" and not rec.cancel_requested:
                self._schedule(q, rec, now + o.delay)
            else:
                failed = o.state == c.FAILED
                self._finalize(q, rec, c.FAILED if failed else c.CANCELLED, now)
        return done

    async def release(self, queue: str, worker: str, leases: Sequence[Lease]) -> int:
        q, now, n = self._q(queue), time.time(), 0
        for token in leases:
            rec = self._running(q, worker, token)
            if rec is not None:
                q.lease.pop(rec.id, None)
                rec.attempts -= 1
                if rec.cancel_requested:
                    self._finalize(q, rec, c.CANCELLED, now)
                else:
                    self._make_ready(q, rec, now)
                n += 1
        self._notify()
        return n

    async def set_progress(
        self, queue: str, lease: Lease, progress: int, message: str | None
    ) -> bool:
        rec = self._running(self._q(queue), None, lease)
        if rec is None:
            return False
        rec.progress, rec.progress_message = progress, message
        return True

    async def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        names = [queue] if queue is not None else sorted(self._queues)
        for name in names:
            rec = self._queues.get(name, _Queue()).jobs.get(job_id)
            if rec is not None:
                return _copy(rec)
        return None

    async def list(
        self, queue: str, state: str, *, limit: int = 50, offset: int = 0
    ) -> list[JobRecord]:
        recs = [r for r in self._q(queue).jobs.values() if r.state == state]
        if state in c.FINAL_STATES:
            recs.sort(key=lambda r: -(r.finished_at or 0))
        elif state == c.QUEUED:
            recs.sort(key=lambda r: (-r.priority, r.run_at or 0))
        else:
            recs.sort(key=lambda r: r.run_at or 0)
        return [_copy(r) for r in recs[offset : offset + limit]]

    async def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for name in await self.queues():
            counts = dict.fromkeys(c.STATES, 0)
            for rec in self._q(name).jobs.values():
                counts[rec.state] += 1
            out[name] = counts
        return out

    async def queues(self) -> builtins.list[str]:
        return sorted(set(self._queues) | self._paused)

    async def retry(self, queue: str, ids: Sequence[str] | None) -> int:
        q, now, n = self._q(queue), time.time(), 0
        targets = list(q.jobs) if ids is None else list(ids)
        states = (c.FAILED,) if ids is None else (c.FAILED, c.CANCELLED)
        for job_id in targets:
            rec = q.jobs.get(job_id)
            if rec is not None and rec.state in states:
                rec.attempts, rec.finished_at, rec.cancel_requested = 0, None, False
                self._make_ready(q, rec, now)
                n += 1
        self._notify()
        return n

    async def cancel(self, queue: str, job_id: str) -> bool:
        q = self._q(queue)
        rec = q.jobs.get(job_id)
        if rec is not None and rec.state == c.RUNNING:
            rec.cancel_requested = True
            return True
        if rec is None or rec.state not in (c.QUEUED, c.SCHEDULED):
            return False
        self._finalize(q, rec, c.CANCELLED, time.time())
        return True

    async def delete(self, queue: str, job_id: str) -> bool:
        q = self._q(queue)
        rec = q.jobs.get(job_id)
        if rec is None or rec.state == c.RUNNING:
            return False
        del q.jobs[job_id]
        q.seq.pop(job_id, None)
        return True

    async def pause(self, queue: str) -> None:
        self._paused.add(queue)

    async def resume(self, queue: str) -> None:
        self._paused.discard(queue)
        self._notify()

    async def paused(self) -> set[str]:
        return set(self._paused)

    async def clean(
        self, queue: str, state: str, *, keep: int | None = None, older_than: float | None = None
    ) -> int:
        q = self._q(queue)
        recs = sorted(
            (r for r in q.jobs.values() if r.state == state and state in c.FINAL_STATES),
            key=lambda r: -(r.finished_at or 0),
        )
        cutoff = None if older_than is None else time.time() - older_than
        doomed = [
            r.id
            for rank, r in enumerate(recs)
            if (keep is None and cutoff is None)
            or (keep is not None and rank >= keep)
            or (cutoff is not None and (r.finished_at or 0) < cutoff)
        ]
        for job_id in doomed:
            del q.jobs[job_id]
        return len(doomed)


class _Room:
    """What a queue's rate limit leaves for a claim (starts of the last period)."""

    def __init__(self, q: _Queue, rate: RateLimit | None, now: float) -> None:
        self.q, self.rate = q, rate
        self.total = 1 << 30
        self.used: collections.Counter[str] = collections.Counter()
        if rate is None:
            return
        while q.starts and q.starts[0][0] <= now - rate.period:
            q.starts.popleft()
        if rate.starts is not None:
            self.total = max(rate.starts - len(q.starts), 0)
        self.used.update(tenant for _, tenant in q.starts)

    def left(self, tenant: str) -> int:
        if self.rate is None or self.rate.per_tenant is None:
            return 1
        return self.rate.per_tenant - self.used[tenant]

    def take(self, tenant: str, now: float) -> None:
        if self.rate is not None:
            self.q.starts.append((now, tenant))
            self.used[tenant] += 1


def _copy(rec: JobRecord) -> JobRecord:
    return JobRecord(**{name: getattr(rec, name) for name in rec.__dataclass_fields__})
