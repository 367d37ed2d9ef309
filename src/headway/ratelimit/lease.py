"""Local leases: each process takes small shares of a key's quota at a time.

A lease is an ordinary check whose cost is the share (``n`` units): the backend deducts
the units *before* any of them is handed out, and the process then admits requests from
its share without a round trip until the share is used up or ``lease_ttl`` passes
(never past the end of the key's current window). A key that was denied is answered
locally until its ``Retry-After`` time.

Exactness bound (tested in ``tests/ratelimit/test_lease.py``):

- Never more than the limit: every admitted unit was counted by the backend first, so
  a fixed window admits at most ``limit`` per window whatever the number of processes.
  For the sliding and bucket algorithms a unit may be spent up to ``lease_ttl`` seconds
  after it was counted, so any window-long interval admits at most
  ``limit + P * (L - 1)`` (P processes, L the lease size).
- At most ``P * (L - 1)`` units fewer than the limit: a denial can only happen while the
  other processes still hold unused shares. Shares shrink as the quota runs out
  (``n <= remaining / 4``), so near the limit the loss is a few units, not P * L.

``L = min(lease_size, capacity // 10)``, at least 1: small limits lease little.

Read-ahead (shares of ``READ_AHEAD_MIN`` units or more, i.e. busy keys with large
limits): when a share is down to a quarter, the next one is leased in the background, so
that requests rarely wait for a round trip. The next share is leased for
``L - 1 - units left``, so that a process never holds more than ``L - 1`` unused units
and the bound above stands; it is used once the current share is spent, and each share
keeps its own expiry (a unit is never spent more than ``lease_ttl`` after it was
counted, nor past its window).
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
READ_AHEAD_MIN = 16  # smaller shares (small limits) are refilled on demand only


class Checker(Protocol):
    async def run(self, checks: Sequence[Check]) -> list[Outcome]: ...


class _Share:
    __slots__ = (
        "denied_until",
        "expires",
        "low",
        "next_expires",
        "next_reset_at",
        "next_units",
        "pending",
        "remaining",
        "reset_at",
        "units",
    )

    def __init__(self) -> None:
        self.units = 0
        self.expires = 0.0
        self.remaining = -1  # unknown
        self.reset_at = 0.0
        self.denied_until = 0.0
        self.pending: asyncio.Future[None] | None = None
        self.low = -1  # read ahead when ``units`` falls to this (-1: do not)
        self.next_units = 0  # the share read ahead, used once this one is spent
        self.next_expires = 0.0
        self.next_reset_at = 0.0

    def left(self) -> int:
        """What the key can still admit: the backend's remaining plus the local units."""
        return max(0, self.remaining) + self.units + self.next_units

    def swap(self, now: float) -> bool:
        """Move to the share read ahead (the current one is spent or expired)."""
        if self.next_expires <= now:
            self.next_units = 0
            return False
        self.units = (self.units if self.expires > now else 0) + self.next_units
        self.expires, self.reset_at = self.next_expires, self.next_reset_at
        self.low = self.next_units // 4
        self.next_units = 0
        return True

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
            check = checks[0]
            now = self.clock()
            share = self.take(check, now)
            if share is not None:  # the hot path: a unit of the local share, no await
                return [self.outcome(share, now)]
            return [await self._one(check)]
        return list(await asyncio.gather(*(self._one(c) for c in checks)))

    def take(self, check: Check, now: float) -> _Share | None:
        """Take ``check.cost`` units of the local share, if it holds them (no await, no
        allocation); then ``outcome`` or the share's fields give the answer."""
        share = self._shares.get(check.key)
        if share is None or not self._units(share, check, now):
            return None
        self.local += 1
        return share

    def _units(self, share: _Share, check: Check, now: float) -> bool:
        """Spend ``check.cost`` units of ``share`` (or of the one read ahead)."""
        if (share.expires <= now or share.units < check.cost) and (
            not share.next_units or not share.swap(now) or share.units < check.cost
        ):
            return False
        share.units -= check.cost
        if share.units <= share.low and share.pending is None:
            self._read_ahead(share, check)
        return True

    def _read_ahead(self, share: _Share, check: Check) -> None:
        share.low = -1  # once per share
        n = lease_size(check, self.size, share.remaining) - 1 - share.units
        if n < max(check.cost, READ_AHEAD_MIN // 2):
            return
        loop = asyncio.get_running_loop()
        pending = share.pending = loop.create_future()
        task = loop.create_task(self._fetch(share, replace(check, cost=n), pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, share: _Share, lease: Check, pending: asyncio.Future[None]) -> None:
        """Lease the next share in the background; a failure is left to the check that
        next needs a refill (it meets the same error)."""
        try:
            now = self.clock()
            self.refills += 1
            outcome = (await self.inner.run([lease]))[0]
            share.remaining = outcome.remaining
            if outcome.allowed:
                share.next_units = lease.cost
                share.next_expires = now + min(self.ttl, outcome.reset_ms / 1000)
                share.next_reset_at = now + outcome.reset_ms / 1000
        except Exception:  # noqa: S110  (see the docstring)
            pass
        finally:
            share.pending = None
            pending.set_result(None)

    async def drain(self) -> None:
        """Wait for the shares being read ahead (on shutdown)."""
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
        if self._units(share, check, now):
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
        share.low = n // 4 if n >= READ_AHEAD_MIN else -1
        share.expires = now + min(self.ttl, outcome.reset_ms / 1000)
        share.reset_at = now + outcome.reset_ms / 1000
        share.remaining = outcome.remaining
        share.denied_until = 0.0
        return replace(outcome, remaining=outcome.remaining + share.units)

    def _sweep(self) -> None:
        now = self.clock()
        for key in [
            k
            for k, s in self._shares.items()
            if s.pending is None
            and s.expires <= now
            and s.next_expires <= now
            and s.denied_until <= now
        ]:
            del self._shares[key]


__all__ = ["READ_AHEAD_MIN", "Checker", "LeaseCache", "lease_size"]
