"""Local leases: each process takes small shares of a key's quota at a time.

A lease is an ordinary check whose cost is the share (``n`` units): the backend deducts
the units *before* any of them is handed out, and the process then admits requests from
its share without a round trip until the share is used up or ``lease_ttl`` passes
(never past the end of the key's current window). A key that was denied is answered
locally until its ``Retry-After`` time.

Exactness bound (tested in ``tests/ratelimit/test_exactness.py`` and ``test_hotpath.py``):

- Never more than the limit: every admitted unit was counted by the backend first, so
  a fixed window admits at most ``limit`` per window whatever the number of processes.
  For the sliding and bucket algorithms a unit may be spent up to ``lease_ttl`` seconds
  after it was counted, so any window-long interval admits at most
  ``limit + P * (L - 1)`` (P processes, L the lease size).
- At most ``P * (L - 1)`` units fewer than the limit: a denial can only happen while the
  other processes still hold unused shares. Shares shrink as the quota runs out
  (``n <= remaining / 4``), so near the limit the loss is a few units, not P * L.

``L = min(lease_size, capacity // 10)``, at least 1: small limits lease little.

While a share is being refilled, the checks that find it empty wait for that refill and
take their units from it (or, if others took them first, refill it in turn): a check is
never sent to the backend on its own, and a refill's error reaches every waiter.

A share is topped up in the background when it falls to three quarters of its lease
(one round trip, while it keeps serving), so that a steady stream rarely finds it
empty. A top-up leases at most what brings the share back to ``L - 1`` units: a process
never holds more than a refill leaves it, so the bound above is unchanged. The default
``lease_size`` is 256 (``HEADWAY_RATELIMIT_LEASE_SIZE``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from headway.ratelimit.base import Check, Outcome

SWEEP_AT = 10_000


class Checker(Protocol):
    async def run(self, checks: Sequence[Check]) -> list[Outcome]: ...

    async def one(self, check: Check) -> Outcome: ...


class _Share:
    __slots__ = ("denied_until", "expires", "low", "pending", "remaining", "reset_at", "units")

    def __init__(self) -> None:
        self.units = 0
        self.low = -1  # top up in the background when units fall to this (-1: never)
        self.expires = 0.0
        self.remaining = -1  # unknown
        self.reset_at = 0.0
        self.denied_until = 0.0
        self.pending: asyncio.Future[None] | None = None

    def left(self) -> int:
        """What the key can still admit: the backend's remaining plus the local units."""
        return max(0, self.remaining) + self.units

    def reset_ms(self, now: float) -> int:
        return max(0, math.ceil((self.reset_at - now) * 1000))


def lease_size(check: Check, size: int, remaining: int) -> int:
    """How many units to lease for ``check``: small near the limit, never below its cost."""
    n = min(size, max(1, check.capacity // 10))
    if remaining >= 0:
        n = min(n, max(1, remaining // 4))
    return min(max(n, check.cost), check.capacity)


class LeaseCache:
    """Serves checks from local shares; refills them through ``inner``."""

    def __init__(
        self,
        inner: Checker,
        size: int = 64,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.size = size
        self.ttl = ttl
        self.clock = clock
        self._shares: dict[str, _Share] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.local = 0
        self.refills = 0

    async def run(self, checks: Sequence[Check]) -> list[Outcome]:
        if len(checks) == 1:
            return [await self.one(checks[0])]
        return list(await asyncio.gather(*(self._one(c) for c in checks)))

    async def one(self, check: Check) -> Outcome:
        now = self.clock()
        share = self.take(check, now)
        if share is not None:  # the hot path: a unit of the local share, no await
            return self.outcome(share, now)
        return await self._one(check)

    def take_answer(self, check: Check) -> tuple[int, int] | None:
        """:meth:`take` for the middleware: ``(remaining, reset seconds)`` of ``check``
        served from the local share, or None."""
        share = self._shares.get(check.key)
        if share is None:
            return None
        now = self.clock()
        if share.expires <= now or share.units < check.cost:
            return None
        share.units -= check.cost
        self.local += 1
        if share.units <= share.low and share.pending is None:
            self._top_up(share, check)
        left, reset = share.remaining, share.reset_at - now
        return (left if left > 0 else 0) + share.units, math.ceil(reset) if reset > 0 else 0

    def take(self, check: Check, now: float) -> _Share | None:
        """Take ``check.cost`` units of the local share, if it holds them (no await, no
        allocation); then ``outcome`` or the share's fields give the answer."""
        share = self._shares.get(check.key)
        if share is None or share.expires <= now or share.units < check.cost:
            return None
        share.units -= check.cost
        self.local += 1
        if share.units <= share.low and share.pending is None:
            self._top_up(share, check)
        return share

    def _top_up(self, share: _Share, check: Check) -> None:
        """Lease the next units in the background while the share still serves, so
        that requests rarely find it empty. Never more held than a refill holds
        (``L - 1``): the exactness bound stays the same."""
        n = lease_size(check, self.size, share.remaining) - 1 - share.units
        if n < check.cost:
            return
        loop = asyncio.get_running_loop()
        pending = share.pending = loop.create_future()
        task = loop.create_task(self._topping(share, replace(check, cost=n), pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _topping(self, share: _Share, lease: Check, pending: asyncio.Future[None]) -> None:
        self.refills += 1
        try:
            outcome = await self.inner.one(lease)
            now = self.clock()
            share.remaining = outcome.remaining
            if outcome.allowed:
                kept = share.units if share.expires > now else 0
                share.units = kept + lease.cost
                share.expires = now + min(self.ttl, outcome.reset_ms / 1000)
                share.reset_at = now + outcome.reset_ms / 1000
            else:  # near the limit: the foreground refills take over, unit by unit
                share.low = -1
        except Exception:  # noqa: S110 - the next refill in the foreground reports it
            pass
        finally:
            share.pending = None
            if not pending.done():  # the waiters look again
                pending.set_result(None)

    async def drain(self) -> None:
        """Wait for the top-ups on the wire (on shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    def outcome(share: _Share, now: float) -> Outcome:
        """The answer to a check just served from ``share`` at ``now``."""
        return Outcome(True, share.left(), share.reset_ms(now), 0)

    async def _one(self, check: Check) -> Outcome:
        """A check the local share could not serve: wait for the refill in flight (and
        take from it), else refill. Never a check sent past the share: each waiter is
        served from the refilled share or becomes the next refiller."""
        while True:
            share = self._shares.get(check.key)
            if share is None:
                share = self._shares[check.key] = _Share()
                if len(self._shares) > SWEEP_AT:
                    self._sweep()
            local = self._take(share, check, self.clock())
            if local is not None:
                self.local += 1
                return local
            pending = share.pending
            if pending is None:
                return await self._refill(share, check)
            await asyncio.shield(pending)  # raises the refill's error, as a check would

    def _take(self, share: _Share, check: Check, now: float) -> Outcome | None:
        if share.expires > now and share.units >= check.cost:
            share.units -= check.cost
            return self.outcome(share, now)
        if share.denied_until > now:
            wait = math.ceil((share.denied_until - now) * 1000)
            return Outcome(False, 0, max(1, wait), max(1, wait))
        return None

    async def _refill(self, share: _Share, check: Check) -> Outcome:
        pending = share.pending = asyncio.get_running_loop().create_future()
        try:
            outcome = await self._lease(share, check)
        except Exception as exc:  # the waiters' checks would have failed the same way
            pending.set_exception(exc)
            pending.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            share.pending = None
            if not pending.done():  # done, or cancelled: the waiters look again
                pending.set_result(None)
        return outcome

    async def _lease(self, share: _Share, check: Check) -> Outcome:
        now = self.clock()
        n = lease_size(check, self.size, share.remaining)
        self.refills += 1
        outcome = (await self.inner.run([replace(check, cost=n)]))[0]
        if not outcome.allowed and n > check.cost:
            n = check.cost
            outcome = (await self.inner.run([check]))[0]
        if not outcome.allowed:
            share.remaining = outcome.remaining
            share.denied_until = now + outcome.retry_after_ms / 1000
            return outcome
        kept = share.units if share.expires > now else 0
        share.units = kept + n - check.cost
        share.low = n * 3 // 4 if n >= 4 else -1
        share.expires = now + min(self.ttl, outcome.reset_ms / 1000)
        share.reset_at = now + outcome.reset_ms / 1000
        share.remaining = outcome.remaining
        share.denied_until = 0.0
        return outcome._replace(remaining=outcome.remaining + share.units)

    def _sweep(self) -> None:
        now = self.clock()
        for key in [
            k
            for k, s in self._shares.items()
            if s.pending is None and s.expires <= now and s.denied_until <= now
        ]:
            del self._shares[key]


__all__ = ["Checker", "LeaseCache", "lease_size"]
