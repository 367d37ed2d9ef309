"""Window boundaries on the memory backend, with a controlled clock (no sleeping)."""

from __future__ import annotations

import pytest

from headway.ratelimit import Algorithm, Check
from headway.ratelimit.backends.memory import MemoryLimitBackend


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryLimitBackend:
    return MemoryLimitBackend(clock=clock)


async def admitted(store: MemoryLimitBackend, check: Check, n: int) -> int:
    return sum(o.allowed for o in await store.hit([check] * n))


async def test_fixed_window_boundary(store: MemoryLimitBackend, clock: Clock) -> None:
    check = Check(Algorithm.FIXED_WINDOW, "k", 3, 1000)
    assert await admitted(store, check, 5) == 3
    clock.now += 999
    [o] = await store.hit([check])
    assert not o.allowed and o.retry_after_ms == 1 and o.reset_ms == 1
    clock.now += 1  # the window (anchored at the first hit) ends exactly here
    assert await admitted(store, check, 5) == 3


async def test_sliding_window_weights_the_previous_window(
    store: MemoryLimitBackend, clock: Clock
) -> None:
    check = Check(Algorithm.SLIDING_WINDOW, "k", 10, 1000)
    assert await admitted(store, check, 10) == 10
    clock.now += 1000  # next window: the previous one still weighs 10 * 1.0
    [o] = await store.hit([check])
    assert not o.allowed and o.retry_after_ms == 100  # 10 * 0.9 + 1 <= 10
    clock.now += 500  # half of it left: 5 units free
    assert await admitted(store, check, 10) == 5
    clock.now += 1500  # two windows later: all forgotten
    assert await admitted(store, check, 20) == 10


async def test_sliding_log_entries_leave_exactly_one_period_later(
    store: MemoryLimitBackend, clock: Clock
) -> None:
    check = Check(Algorithm.SLIDING_LOG, "k", 3, 1000)
    assert await admitted(store, check, 2) == 2
    clock.now += 400
    assert await admitted(store, check, 3) == 1
    [o] = await store.hit([check])
    assert o.retry_after_ms == 600
    clock.now += 599
    assert await admitted(store, check, 1) == 0
    clock.now += 1  # the first two entries leave
    assert await admitted(store, check, 3) == 2


async def test_token_bucket_refills_continuously(store: MemoryLimitBackend, clock: Clock) -> None:
    check = Check(Algorithm.TOKEN_BUCKET, "k", 10, 1000)  # one token per 100 ms
    assert await admitted(store, check, 12) == 10
    clock.now += 99
    assert await admitted(store, check, 1) == 0
    clock.now += 1
    assert await admitted(store, check, 2) == 1
    clock.now += 10_000
    assert await admitted(store, check, 12) == 10  # never more than the bucket


async def test_gcra_spaces_units_by_the_emission_interval(
    store: MemoryLimitBackend, clock: Clock
) -> None:
    check = Check(Algorithm.GCRA, "k", 10, 1000)
    assert await admitted(store, check, 12) == 10
    [o] = await store.hit([check])
    assert o.retry_after_ms == 100
    clock.now += 100
    assert await admitted(store, check, 2) == 1
    clock.now += 250
    assert await admitted(store, check, 5) == 2


async def test_expired_states_are_swept(store: MemoryLimitBackend, clock: Clock) -> None:
    for i in range(5000):
        await store.hit([Check(Algorithm.FIXED_WINDOW, f"k{i}", 1, 10)])
    clock.now += 20
    for i in range(5000):
        await store.hit([Check(Algorithm.FIXED_WINDOW, f"j{i}", 1, 10)])
    assert len(store) < 10_000
