"""The backend contract: every algorithm on every backend answers the same way."""

from __future__ import annotations

import asyncio

import pytest

from headway.ratelimit import Algorithm, Check, LimitBackend

from .conftest import BACKENDS

ALGORITHMS = list(Algorithm)
pytestmark = pytest.mark.parametrize("backend", BACKENDS)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_admits_the_limit_then_denies(store: LimitBackend, algorithm: Algorithm) -> None:
    check = Check(algorithm, "k", 5, 60_000)
    outcomes = await store.hit([check] * 7)
    assert [o.allowed for o in outcomes] == [True] * 5 + [False] * 2
    assert [o.remaining for o in outcomes] == [4, 3, 2, 1, 0, 0, 0]
    for o in outcomes[5:]:
        assert 0 < o.retry_after_ms <= 2 * 60_000
    for o in outcomes:
        assert 0 < o.reset_ms <= 60_000
        assert (o.retry_after_ms == 0) == o.allowed


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_cost_counts_units_and_denial_consumes_nothing(
    store: LimitBackend, algorithm: Algorithm
) -> None:
    base = Check(algorithm, "c", 10, 60_000)
    [first] = await store.hit([Check(algorithm, "c", 10, 60_000, cost=3)])
    assert first.allowed and first.remaining == 7
    [too_much] = await store.hit([Check(algorithm, "c", 10, 60_000, cost=8)])
    assert not too_much.allowed and too_much.remaining == 7
    [rest] = await store.hit([Check(algorithm, "c", 10, 60_000, cost=7)])
    assert rest.allowed and rest.remaining == 0
    [after] = await store.hit([base])
    assert not after.allowed


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_keys_are_independent_and_reset(store: LimitBackend, algorithm: Algorithm) -> None:
    a, b = Check(algorithm, "a", 2, 60_000), Check(algorithm, "b", 2, 60_000)
    outcomes = await store.hit([a, b, a, a, b])
    assert [o.allowed for o in outcomes] == [True, True, True, False, True]
    await store.reset(["a"])
    [again] = await store.hit([a])
    assert again.allowed and again.remaining == 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_recovers_after_retry_after(store: LimitBackend, algorithm: Algorithm) -> None:
    check = Check(algorithm, "r", 2, 400)
    outcomes = await store.hit([check] * 3)
    assert [o.allowed for o in outcomes] == [True, True, False]
    wait = outcomes[2].retry_after_ms
    assert 0 < wait <= 800
    [early] = await store.hit([check])
    assert not early.allowed  # not before the time it announced
    await asyncio.sleep(wait / 1000 + 0.03)
    [later] = await store.hit([check])
    assert later.allowed


@pytest.mark.parametrize("algorithm", [Algorithm.TOKEN_BUCKET, Algorithm.GCRA])
async def test_burst_is_the_bucket_size(store: LimitBackend, algorithm: Algorithm) -> None:
    check = Check(algorithm, "burst", 1, 60_000, burst=3)
    outcomes = await store.hit([check] * 4)
    assert [o.allowed for o in outcomes] == [True, True, True, False]
    assert outcomes[3].retry_after_ms <= 60_000


async def test_concurrent_batches_never_overadmit(store: LimitBackend) -> None:
    check = Check(Algorithm.SLIDING_LOG, "conc", 10, 60_000)
    batches = await asyncio.gather(*(store.hit([check] * 5) for _ in range(6)))
    assert sum(o.allowed for batch in batches for o in batch) == 10
