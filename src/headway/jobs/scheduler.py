"""The cron scheduler: enqueues each tick of each ``@jobs.cron`` task exactly once.

Every scheduler (in a worker or ``headway scheduler``, on any machine) enqueues a tick
under the same job id, ``cron:<task>:<tick epoch seconds>``; the store keeps only the
first, so however many schedulers run, each tick runs once. A tick noticed more than
``misfire_grace`` seconds late is skipped rather than run late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from headway.jobs import constants as c
from headway.jobs.task import CallOptions, EnqueueCall

if TYPE_CHECKING:
    from headway.jobs.core import CronEntry, Jobs

log = logging.getLogger("headway.jobs")


def tick_id(name: str, tick: float) -> str:
    return f"cron:{name}:{int(tick)}"


class Scheduler:
    def __init__(
        self,
        jobs: Jobs,
        *,
        misfire_grace: float = c.CRON_MISFIRE_GRACE,
        max_sleep: float = 1.0,
    ) -> None:
        self.jobs = jobs
        self.misfire_grace, self.max_sleep = misfire_grace, max_sleep
        self.enqueued = 0  # ticks this scheduler was first to enqueue
        self._next: dict[str, float] = {}

    def _due(self, entry: CronEntry, now: float) -> list[float]:
        """Ticks of ``entry`` that fell due by ``now`` (and moves its next tick on)."""
        nxt = self._next.get(entry.name)
        if nxt is None:
            nxt = self._next[entry.name] = entry.cron.next_timestamp(now - 1e-6)
        due: list[float] = []
        while nxt <= now:
            if now - nxt <= self.misfire_grace:
                due.append(nxt)
            nxt = entry.cron.next_timestamp(nxt)
        self._next[entry.name] = nxt
        return due

    async def run_pending(self, now: float | None = None) -> int:
        """Enqueue the ticks due at ``now``; return how many this call created."""
        now = time.time() if now is None else now
        before = dict(self._next)
        calls = [
            EnqueueCall(
                entry.task,
                entry.args,
                dict(entry.kwargs or {}),
                CallOptions(job_id=tick_id(entry.name, tick), meta={"cron_tick": tick}),
            )
            for entry in self.jobs.crons.values()
            for tick in self._due(entry, now)
        ]
        if not calls:
            return 0
        try:
            handles = await self.jobs.enqueue_many(calls)
        except BaseException:
            self._next = before  # not enqueued: the same ticks are due next time
            raise
        created = sum(h.created for h in handles)
        self.enqueued += created
        return created

    def _sleep_time(self) -> float:
        soonest = min(self._next.values(), default=time.time() + self.max_sleep)
        return max(0.0, min(self.max_sleep, soonest - time.time()))

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Loop until ``stop`` is set (forever without one)."""
        stop = stop or asyncio.Event()
        failures = 0
        while not stop.is_set():
            try:
                await self.run_pending()
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("scheduler: enqueue failed (%s)", exc)
            pause = self._sleep_time() if not failures else min(0.1 * 2**failures, 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause + 0.001)
