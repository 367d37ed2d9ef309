"""Coalescing: the checks of concurrent requests share one pipelined round trip.

A check that finds the coalescer idle goes out at once (no added latency). Checks that
arrive while a round trip is on the wire are queued, and leave together as one
:meth:`LimitBackend.hit` batch (one pipeline on Redis) when it comes back: with
``max_inflight`` (default 1) batches on the wire, the batch size grows with the load and
the number of round trips does not (a round trip costs more CPU than a request's own
work, so fewer and larger batches are what keeps the middleware cheap). Each check stays
atomic on its own key: coalescing changes how checks travel, not what they count.

Identical fixed-window checks of one batch (the same key, as when one client sends many
requests at once) travel as one check of their summed cost: if it passes, each caller
gets the answer it would have had in turn (``remaining`` counting down); if it does
not, they are sent again one by one, so that exactly the ones that fit pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from headway.ratelimit.base import Algorithm, Check, LimitBackend, Outcome

Pending = tuple[Check, "asyncio.Future[Outcome]"]
Group = tuple[Check, list["asyncio.Future[Outcome]"]]


class Coalescer:
    """Batches concurrent checks for one backend."""

    def __init__(self, backend: LimitBackend, max_inflight: int = 1, max_batch: int = 512) -> None:
        self.backend = backend
        self.max_inflight = max_inflight
        self.max_batch = max_batch
        self._queue: list[Pending] = []
        self._scheduled = False
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.checks = 0

    async def run(self, checks: Sequence[Check]) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        if self._inflight == 0 and not self._queue:  # idle: go now, no batching delay
            return await self._eager(checks, loop)
        futures = [loop.create_future() for _ in checks]
        self._queue.extend(zip(checks, futures, strict=True))
        self._schedule(loop)
        if len(futures) == 1:
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    async def one(self, check: Check) -> Outcome:
        """:meth:`run` of one check (the middleware's path: no list per call)."""
        loop = asyncio.get_running_loop()
        if self._inflight == 0 and not self._queue:
            return (await self._eager((check,), loop))[0]
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.append((check, future))
        if not self._scheduled:
            self._schedule(loop)
        return await future

    async def _eager(
        self, checks: Sequence[Check], loop: asyncio.AbstractEventLoop
    ) -> list[Outcome]:
        self._inflight += 1
        self.batches += 1
        self.checks += len(checks)
        try:
            return await self.backend.hit(checks)
        finally:
            self._inflight -= 1
            self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._scheduled or not self._queue or self._inflight >= self.max_inflight:
            return
        self._scheduled = True
        loop.call_soon(self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        batch = [p for p in batch if not p[1].done()]  # drop checks whose caller left
        if batch:
            self._inflight += 1
            task = loop.create_task(self._send(batch, loop))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._schedule(loop)

    async def _send(self, batch: list[Pending], loop: asyncio.AbstractEventLoop) -> None:
        self.batches += 1
        self.checks += len(batch)
        try:
            groups = _group(batch)
            outcomes = await self.backend.hit([_summed(c, len(fs)) for c, fs in groups])
            again: list[Pending] = []
            for (check, futures), outcome in zip(groups, outcomes, strict=True):
                if len(futures) == 1 or outcome.allowed:
                    _answer(futures, outcome, check.cost)
                else:  # the sum did not fit: find out which of them do
                    again.extend((check, f) for f in futures)
            if again:
                outcomes = await self.backend.hit([check for check, _ in again])
                for (_, future), outcome in zip(again, outcomes, strict=True):
                    _answer([future], outcome, 0)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        finally:
            self._inflight -= 1
            self._schedule(loop)

    async def drain(self) -> None:
        """Wait for the batches on the wire (on shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _group(batch: list[Pending]) -> list[Group]:
    """The batch as checks to send, each with its callers' futures, in order: equal
    fixed-window checks merge (up to the key's capacity), others travel alone."""
    groups: list[Group] = []
    index: dict[Check, Group] = {}
    for check, future in batch:
        if check.algorithm is Algorithm.FIXED_WINDOW:
            group = index.get(check)
            if group is not None and (len(group[1]) + 1) * check.cost <= check.capacity:
                group[1].append(future)
                continue
            group = index[check] = (check, [future])
        else:
            group = (check, [future])
        groups.append(group)
    return groups


def _summed(check: Check, n: int) -> Check:
    return check if n == 1 else replace(check, cost=check.cost * n)


def _answer(futures: list[asyncio.Future[Outcome]], outcome: Outcome, cost: int) -> None:
    """Each future its share of a summed check's answer: what the checks, sent one by one
    in this order, would have answered (the later ones had fewer units left)."""
    last = len(futures) - 1
    for i, future in enumerate(futures):
        if not future.done():
            left = outcome.remaining + (last - i) * cost
            future.set_result(
                outcome
                if left == outcome.remaining
                else Outcome(outcome.allowed, left, outcome.reset_ms, outcome.retry_after_ms)
            )


__all__ = ["Coalescer"]
