"""The worker: claims jobs in batches, runs them concurrently, acknowledges in batches.

One asyncio task per running job; three helpers beside the claim loop: the ack flusher
(one ``finish`` round trip for every outcome gathered meanwhile), the heartbeat (extends
the leases of the jobs it holds, cancels the ones it lost) and the retention sweep.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from headway.jobs import constants as c
from headway.jobs.codec import decode_payload, dumps
from headway.jobs.core import check_queue
from headway.jobs.models import Claimed, Outcome
from headway.jobs.retry import Retry
from headway.jobs.task import JobContext, Task, _current, call_hooks

if TYPE_CHECKING:
    from headway.jobs.core import Jobs

log = logging.getLogger("headway.jobs")


@dataclass(slots=True)
class _Run:
    claimed: Claimed
    task: asyncio.Task[None] | None = None
    lost: bool = False  # lease lost or worker stopping: no ack, the job is not ours
    cancelled: bool = False  # cancelled on request: ack "cancelled"


@dataclass(slots=True)
class WorkerStats:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    lost: int = 0
    released: int = 0
    started_at: float = field(default_factory=time.time)


class Worker:
    """Serves ``queues`` (in priority order, or weighted) with ``concurrency`` jobs at once."""

    def __init__(
        self,
        jobs: Jobs,
        queues: Sequence[str] | None = None,
        *,
        concurrency: int | None = None,
        queue_limits: Mapping[str, int] | None = None,
        weighted: bool | Mapping[str, int] = False,
        lease: float | None = None,
        poll_interval: float | None = None,
        grace: float | None = None,
        batch: int = c.MAX_BATCH,
        retention_interval: float = c.RETENTION_INTERVAL,
        scheduler: bool = False,
        worker_id: str | None = None,
    ) -> None:
        s = jobs.settings  # HEADWAY_JOBS_*: the defaults of what is not given
        concurrency = s.concurrency if concurrency is None else concurrency
        if concurrency < 1 or batch < 1:
            raise ValueError("concurrency and batch must be >= 1")
        self.jobs = jobs
        self.queues = [check_queue(q) for q in queues or [c.DEFAULT_QUEUE]]
        self.concurrency, self.batch = concurrency, batch
        limits = {**c.DEFAULT_QUEUE_LIMITS, **(queue_limits or {})}
        self.limits = {q: limits.get(q, concurrency) for q in self.queues}
        weights = c.DEFAULT_WEIGHTS if weighted is True else (weighted or {})
        self.weights = {q: max(weights.get(q, 1), 1) for q in self.queues} if weighted else None
        self.lease = s.lease if lease is None else lease
        self.poll_interval = s.poll_interval if poll_interval is None else poll_interval
        self.grace = s.grace if grace is None else grace
        self.retention_interval = retention_interval
        self.with_scheduler = scheduler
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = WorkerStats()
        self._runs: dict[tuple[str, str], _Run] = {}  # held leases, until acked
        self._active: dict[str, int] = dict.fromkeys(self.queues, 0)
        self._acks: dict[str, list[Outcome]] = {}
        self._ack_event = asyncio.Event()
        self._slot_event = asyncio.Event()
        self._stopping = asyncio.Event()

    # -- public -----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; :meth:`run` then drains running jobs within ``grace``."""
        self._stopping.set()

    @property
    def running(self) -> int:
        return sum(self._active.values())

    async def run(self, *, handle_signals: bool = False) -> None:
        """Run until :meth:`stop` (or SIGTERM/SIGINT with ``handle_signals``)."""
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        helpers = [
            asyncio.create_task(self._flush_loop()),
            asyncio.create_task(self._heartbeat_loop()),
            asyncio.create_task(self._retention_loop()),
        ]
        if self.with_scheduler:
            helpers.append(asyncio.create_task(self.jobs.scheduler().run(self._stopping)))
        log.info("worker %s serving %s", self.id, ",".join(self.queues))
        try:
            await self._claim_loop()
        finally:
            await self._drain()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._flush()

    # -- claiming ---------------------------------------------------------------------

    def _order(self) -> list[str]:
        if self.weights is None:
            return self.queues
        # Weighted random order (Efraimidis-Spirakis keys): low is first now and then.
        weights = self.weights
        return sorted(self.queues, key=lambda q: -(random.random() ** (1 / weights[q])))  # noqa: S311

    def _free(self, queue: str) -> int:
        total_free = self.concurrency - self.running
        return min(total_free, self.limits[queue] - self._active[queue], self.batch)

    async def _claim_round(self) -> tuple[int, bool]:
        """Claim from each queue in order: (jobs claimed, whether a queue may hold more)."""
        got, more = 0, False
        for queue in self._order():
            if self._stopping.is_set() or self.running >= self.concurrency:
                return got, True
            free = self._free(queue)
            if free <= 0:
                continue
            rate = self.jobs.rate_limits.get(queue)
            claimed = await self.jobs.backend.claim(queue, self.id, free, self.lease, rate)
            for job in claimed:
                self._start(job)
            got += len(claimed)
            more = more or len(claimed) == free  # fewer than asked: that queue is empty
        return got, more

    async def _claim_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if self.running >= self.concurrency:
                self._slot_event.clear()
                await _wait_any(self._slot_event, self._stopping, max_wait=1.0)
                continue
            try:
                _, more = await self._claim_round()
                failures = 0
            except Exception as exc:
                failures += 1
                pause = min(0.1 * 2**failures, 5.0)
                log.warning("worker %s: claim failed (%s), retrying in %.1fs", self.id, exc, pause)
                await _wait_any(self._stopping, max_wait=pause)
                continue
            if not more:  # every queue served is empty (or paused, or at its limit)
                await self._idle()

    async def _idle(self) -> None:
        """Wait for a job to arrive (the backend's wake-up), at most ``poll_interval``."""
        try:
            if self.poll_interval <= 0.1:
                await self.jobs.backend.wait(self.queues, self.poll_interval)
                return
            # A long wait: stop() must not have to sit it out.
            waiter = asyncio.ensure_future(self.jobs.backend.wait(self.queues, self.poll_interval))
            stopper = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait((waiter, stopper), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                stopper.cancel()
            if waiter.done() and not waiter.cancelled():
                waiter.result()  # raises what wait() raised
        except Exception as exc:  # a backend's wait should not raise; be safe
            log.warning("worker %s: wait failed (%s)", self.id, exc)
            await _wait_any(self._stopping, max_wait=self.poll_interval)

    def _start(self, claimed: Claimed) -> None:
        self.stats.claimed += 1
        run = _Run(claimed)
        self._runs[(claimed.queue, claimed.id)] = run
        self._active[claimed.queue] += 1
        run.task = asyncio.create_task(self._execute(run))

    # -- running one job --------------------------------------------------------------

    async def _execute(self, run: _Run) -> None:
        job = run.claimed
        outcome: Outcome | None = None
        metrics, began = self.jobs.metrics, time.perf_counter()
        try:
            outcome = await self._run(job)
        except asyncio.CancelledError:
            if not (run.lost or run.cancelled):
                raise
            if not run.lost:
                self.stats.cancelled += 1
                outcome = Outcome(job.id, job.attempt, c.CANCELLED, error="cancelled on request")
        finally:
            self._active[job.queue] -= 1
            self._slot_event.set()
        if outcome is not None and metrics is not None:
            metrics.finished(job.queue, outcome.state, time.perf_counter() - began)
        if outcome is not None and not run.lost:
            self._acks.setdefault(job.queue, []).append(outcome)
            self._ack_event.set()

    async def _run(self, job: Claimed) -> Outcome:
        try:
            payload = decode_payload(job.data)
        except ValueError as exc:
            return self._failed_outcome(job, str(exc), None)
        task = self.jobs.tasks.get(str(payload.get("task")))
        if task is None:
            known = ", ".join(sorted(self.jobs.tasks)) or "none"
            error = f"unknown task {payload.get('task')!r} (this worker knows: {known})"
            return self._failed_outcome(job, error, None)
        ctx = self._context(job, task, payload)
        token = _current.set(ctx)
        try:
            return await self._attempt(job, task, ctx, payload)
        finally:
            _current.reset(token)

    def _context(self, job: Claimed, task: Task, payload: dict[str, Any]) -> JobContext:
        return JobContext(
            job.id, job.queue, task.name, job.attempt, job.max_attempts,
            payload.get("meta") or {}, payload.get("tenant"), payload.get("user_id"),
            partial(self._set_progress, job),
        )  # fmt: skip

    async def _set_progress(self, job: Claimed, value: int, message: str | None) -> bool:
        return await self.jobs.backend.set_progress(
            job.queue, (job.id, job.attempt), value, message
        )

    async def _attempt(
        self, job: Claimed, task: Task, ctx: JobContext, payload: dict[str, Any]
    ) -> Outcome:
        deadline = None if task.timeout is None else asyncio.timeout(task.timeout)
        try:
            if deadline is None:
                value = await self._call(task, payload)
            else:
                async with deadline:
                    value = await self._call(task, payload)
        except Retry as exc:
            return await self._retry_or_fail(job, task, ctx, exc, exc.delay)
        except Exception as raised:
            error: Exception = raised
            if deadline is not None and deadline.expired():
                error = TimeoutError(f"timed out after {task.timeout}s")
            if not task.should_retry(error):
                return await self._fail(job, task, ctx, error)
            return await self._retry_or_fail(job, task, ctx, error, None)
        try:
            result = b"null" if value is None else dumps(value, f"the result of task {task.name!r}")
        except TypeError as bad:
            return await self._fail(job, task, ctx, bad)
        self.stats.succeeded += 1
        if task.on_success or self.jobs.hooks["success"]:
            await call_hooks(task.on_success + self.jobs.hooks["success"], ctx, value)
        return Outcome(job.id, job.attempt, c.SUCCEEDED, result=result)

    async def _call(self, task: Task, payload: dict[str, Any]) -> Any:
        args, kwargs = payload.get("args", ()), payload.get("kwargs", {})
        if task.is_async:
            return await task.fn(*args, **kwargs)
        return await asyncio.to_thread(task.fn, *args, **kwargs)

    async def _retry_or_fail(
        self, job: Claimed, task: Task, ctx: JobContext, exc: BaseException, delay: float | None
    ) -> Outcome:
        if job.attempt >= job.max_attempts:
            return await self._fail(job, task, ctx, exc)
        wait = task.backoff.delay(job.attempt) if delay is None else delay
        self.stats.retried += 1
        await call_hooks(task.on_retry + self.jobs.hooks["retry"], ctx, exc, wait)
        return Outcome(
            job.id, job.attempt, "retry", error=_describe(exc), traceback=_trace(exc), delay=wait
        )

    async def _fail(self, job: Claimed, task: Task, ctx: JobContext, exc: BaseException) -> Outcome:
        await call_hooks(task.on_failure + self.jobs.hooks["failure"], ctx, exc)
        return self._failed_outcome(job, _describe(exc), _trace(exc))

    def _failed_outcome(self, job: Claimed, error: str, trace: str | None) -> Outcome:
        self.stats.failed += 1
        log.warning("job %s (%s) failed: %s", job.id, job.queue, error)
        return Outcome(job.id, job.attempt, c.FAILED, error=error, traceback=trace)

    # -- acks, heartbeats, retention --------------------------------------------------

    async def _flush(self) -> None:
        pending, self._acks = self._acks, {}
        for queue, outcomes in pending.items():
            try:
                await self.jobs.backend.finish(queue, self.id, outcomes)
            except BaseException:
                self._acks.setdefault(queue, [])[:0] = outcomes  # keep them, try again
                raise
            for o in outcomes:
                self._runs.pop((queue, o.id), None)

    async def _flush_loop(self) -> None:
        failures = 0
        while True:
            await self._ack_event.wait()
            self._ack_event.clear()
            try:
                await self._flush()
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("worker %s: ack failed (%s), retrying", self.id, exc)
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
                self._ack_event.set()

    async def _heartbeat_loop(self) -> None:
        # Every third of the lease, and at least every CANCEL_CHECK s (cancel requests).
        while True:
            await asyncio.sleep(min(self.lease / 3, c.CANCEL_CHECK))
            try:
                await self._heartbeat()
            except Exception as exc:
                log.warning("worker %s: heartbeat failed (%s)", self.id, exc)

    async def _heartbeat(self) -> None:
        by_queue: dict[str, list[tuple[str, int]]] = {}
        for (queue, job_id), run in list(self._runs.items()):
            by_queue.setdefault(queue, []).append((job_id, run.claimed.attempt))
        for queue, leases in by_queue.items():
            beat = await self.jobs.backend.heartbeat(queue, self.id, leases, self.lease)
            for job_id in beat.lost:
                gone = self._runs.pop((queue, job_id), None)
                if gone is not None and gone.task is not None and not gone.task.done():
                    log.warning("worker %s lost the lease of job %s: cancelling", self.id, job_id)
                    gone.lost = True
                    gone.task.cancel()
                    self.stats.lost += 1
            for job_id in beat.cancel:
                asked = self._runs.get((queue, job_id))
                if asked is not None and asked.task is not None and not asked.task.done():
                    if not asked.cancelled:
                        log.info("worker %s: job %s cancelled on request", self.id, job_id)
                    asked.cancelled = True
                    asked.task.cancel()

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(self.retention_interval * random.uniform(0.5, 1.5))  # noqa: S311
            try:
                await self.jobs.apply_retention(self.queues)
            except Exception as exc:
                log.warning("worker %s: retention failed (%s)", self.id, exc)

    # -- stopping ---------------------------------------------------------------------

    async def _drain(self) -> None:
        """Let running jobs finish within ``grace``; put the others back in their queue."""
        tasks = [r.task for r in self._runs.values() if r.task is not None and not r.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=self.grace)
        late = [r for r in self._runs.values() if r.task is not None and not r.task.done()]
        for run in late:
            run.lost = True
            assert run.task is not None
            run.task.cancel()
        if late:
            await asyncio.gather(*(r.task for r in late if r.task), return_exceptions=True)
        by_queue: dict[str, list[tuple[str, int]]] = {}
        for run in late:
            by_queue.setdefault(run.claimed.queue, []).append((run.claimed.id, run.claimed.attempt))
            self._runs.pop((run.claimed.queue, run.claimed.id))
        for queue, leases in by_queue.items():
            self.stats.released += await self.jobs.backend.release(queue, self.id, leases)


async def _wait_any(*events: asyncio.Event, max_wait: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=max_wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))[-8000:]
