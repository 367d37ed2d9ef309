"""Coalescing and local leases: fewer round trips, same counts (lease: within its bound)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from headway.errors import BackendUnavailableError
from headway.ratelimit import Algorithm, Check, LimitBackend, Outcome
from headway.ratelimit.backends.memory import MemoryLimitBackend
from headway.ratelimit.backends.redis import RedisLimitBackend
from headway.ratelimit.coalesce import Coalescer
from headway.ratelimit.lease import LeaseCache, lease_size

from .conftest import BACKENDS


class CountingMemory(MemoryLimitBackend):
    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.calls = 0

    async def hit(self, checks: Sequence[Check]) -> list[Outcome]:
        self.calls += 1
        return await super().hit(checks)


class Broken(MemoryLimitBackend):
    async def hit(self, checks: Sequence[Check]) -> list[Outcome]:
        raise BackendUnavailableError("down")


@pytest.mark.redis
async def test_coalescing_shares_round_trips(redis_url: str, redis_prefix: str) -> None:
    backend = RedisLimitBackend(redis_url, prefix=redis_prefix)
    coalescer = Coalescer(backend)
    check = Check(Algorithm.SLIDING_LOG, "k", 30, 60_000)
    outcomes = await asyncio.gather(*(coalescer.run([check]) for _ in range(200)))
    assert sum(o[0].allowed for o in outcomes) == 30
    assert backend.round_trips <= 8 and coalescer.checks == 200
    await backend.close()


async def test_coalescer_passes_errors_to_every_waiter() -> None:
    coalescer = Coalescer(Broken())
    check = Check(Algorithm.GCRA, "k", 5, 1000)
    results = await asyncio.gather(
        *(coalescer.run([check]) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, BackendUnavailableError) for r in results)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_lease_two_processes_within_bound(store: LimitBackend) -> None:
    processes = [LeaseCache(Coalescer(store), size=16, ttl=5.0) for _ in range(2)]
    check = Check(Algorithm.FIXED_WINDOW, "k", 100, 60_000)
    runs = [p.run([check]) for p in processes for _ in range(500)]
    admitted = sum(o[0].allowed for o in await asyncio.gather(*runs))
    size = lease_size(check, 16, -1)
    assert 100 - 2 * (size - 1) <= admitted <= 100
    refills = sum(p.refills for p in processes)
    assert refills < 60  # ~100 units in shares of up to 10, not 1,000 round trips


class Mono:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_lease_expires_and_never_outlives_the_window() -> None:
    backend = CountingMemory()
    clock = Mono()
    cache = LeaseCache(backend_checker(backend), size=16, ttl=1.0, clock=clock)
    check = Check(Algorithm.FIXED_WINDOW, "k", 100, 60_000)
    assert (await cache.run([check]))[0].allowed
    assert backend.calls == 1
    for _ in range(9):  # served from the share of 10
        assert (await cache.run([check]))[0].allowed
    assert backend.calls == 1
    assert (await cache.run([check]))[0].allowed
    assert backend.calls == 2  # share used up: one more lease
    clock.now += 1.01  # past lease_ttl: the unused units are dropped, not used late
    assert (await cache.run([check]))[0].allowed
    assert backend.calls == 3
    short = Check(Algorithm.FIXED_WINDOW, "w", 100, 200)  # window shorter than ttl
    await cache.run([short])
    share = cache._shares["w"]
    assert share.expires - clock.now <= 0.2 + 1e-6


async def test_lease_answers_denials_locally_until_retry_after() -> None:
    backend = CountingMemory()
    clock = Mono()
    cache = LeaseCache(backend_checker(backend), size=16, ttl=1.0, clock=clock)
    check = Check(Algorithm.FIXED_WINDOW, "k", 2, 60_000)
    results = [(await cache.run([check]))[0] for _ in range(5)]
    assert [o.allowed for o in results] == [True, True, False, False, False]
    calls = backend.calls
    for _ in range(20):
        denied = (await cache.run([check]))[0]
        assert not denied.allowed and denied.retry_after_ms > 0
    assert backend.calls == calls


def backend_checker(backend: LimitBackend) -> Coalescer:
    return Coalescer(backend)


class UnitCounting(MemoryLimitBackend):
    """Counts the units every allowed check took (leases included)."""

    def __init__(self) -> None:
        super().__init__()
        self.units = 0
        self.calls = 0

    async def hit(self, checks: Sequence[Check]) -> list[Outcome]:
        self.calls += 1
        outcomes = await super().hit(checks)
        self.units += sum(c.cost for c, o in zip(checks, outcomes, strict=True) if o.allowed)
        return outcomes


async def test_waiters_for_a_refill_never_go_to_the_backend_alone() -> None:
    backend = UnitCounting()
    cache = LeaseCache(backend_checker(backend), size=8, ttl=5.0)
    check = Check(Algorithm.FIXED_WINDOW, "k", 1_000, 60_000)  # shares of 8
    outcomes = await asyncio.gather(*(cache.run([check]) for _ in range(200)))
    await cache.drain()  # a background top-up may still be on the wire
    assert all(o[0].allowed for o in outcomes)
    # every check came from a share: the backend saw leases only, and never held more
    # than the share left over (L - 1 = 7 units) beyond what was admitted
    assert backend.calls == cache.refills <= 200 // 4
    assert 200 <= backend.units <= 200 + 7


async def test_a_share_is_topped_up_before_it_runs_out() -> None:
    backend = UnitCounting()
    cache = LeaseCache(backend_checker(backend), size=64, ttl=5.0)
    check = Check(Algorithm.FIXED_WINDOW, "k", 100_000, 60_000)  # shares of 64
    await cache.run([check])
    waits = 0
    for _ in range(1_000):  # one request per loop turn: the top-up arrives in time
        if cache.take(check, cache.clock()) is None:
            waits += 1
            await cache.run([check])
        await asyncio.sleep(0)
    await cache.drain()
    assert waits == 0
    assert cache.refills == backend.calls > 1
    share = cache._shares["k"]
    assert share.units <= 63  # never more held than a refill leaves: the bound holds


async def test_lease_refill_errors_reach_every_waiter() -> None:
    cache = LeaseCache(backend_checker(Broken()), size=8, ttl=5.0)
    check = Check(Algorithm.FIXED_WINDOW, "k", 1_000, 60_000)
    results = await asyncio.gather(*(cache.run([check]) for _ in range(10)), return_exceptions=True)
    assert all(isinstance(r, BackendUnavailableError) for r in results)


class OnTheWire(CountingMemory):
    """A round trip takes a turn of the loop, as a network one does."""

    async def hit(self, checks: Sequence[Check]) -> list[Outcome]:
        await asyncio.sleep(0)
        return await super().hit(checks)


@pytest.mark.parametrize("limit", [100, 10])
async def test_equal_coalesced_checks_travel_as_one_and_count_down(limit: int) -> None:
    backend = OnTheWire()
    coalescer = Coalescer(backend)
    check = Check(Algorithm.FIXED_WINDOW, "k", limit, 60_000)
    outcomes = [o[0] for o in await asyncio.gather(*(coalescer.run([check]) for _ in range(15)))]
    allowed = [o for o in outcomes if o.allowed]
    assert len(allowed) == min(limit, 15)
    # what 15 checks sent one by one answer: remaining counts down, one value each
    assert sorted(o.remaining for o in allowed) == list(range(limit - len(allowed), limit))
    assert all(o.retry_after_ms > 0 for o in outcomes if not o.allowed)
    assert backend.calls <= 3  # the first alone, then one summed check (+ one retry)
