"""The shared-state contract, on every breaker backend (memory, redis)."""

from __future__ import annotations

import asyncio

import pytest
from tests.conftest import backend_params

from headway import Headway
from headway.resilience import Breakers, BreakersSettings, Policy

pytestmark = pytest.mark.parametrize("backend", backend_params("memory", "redis", "cluster"))
FAIL, OK = 1, 0


@pytest.fixture
async def backend_obj(backend: str, backend_url: str, redis_prefix: str):  # type: ignore[no-untyped-def]
    hw = Headway()
    breakers = Breakers(hw, BreakersSettings(prefix=redis_prefix), url=backend_url)
    yield breakers.backend
    await hw.stop()


async def test_consecutive_failures_open(backend_obj) -> None:  # type: ignore[no-untyped-def]
    p = Policy(failure_threshold=3)
    snap = await backend_obj.record("a", p, [FAIL, FAIL, OK, FAIL, FAIL], 0)
    assert (snap.state, snap.consecutive, snap.generation) == ("closed", 2, 0)
    snap = await backend_obj.record("a", p, [FAIL], 0)
    assert (snap.state, snap.generation) == ("open", 1)
    assert snap.opened_at == pytest.approx(snap.now, abs=0.01)
    stale = await backend_obj.record("a", p, [OK, OK], 0)  # a generation ago: ignored
    assert (stale.state, stale.generation) == ("open", 1)


async def test_rate_rule_needs_minimum_calls(backend_obj) -> None:  # type: ignore[no-untyped-def]
    p = Policy(failure_threshold=0, window_size=4, minimum_calls=4, failure_rate=0.5)
    snap = await backend_obj.record("r", p, [FAIL, OK, FAIL], 0)
    assert snap.state == "closed" and (snap.calls, snap.failures) == (3, 2)
    snap = await backend_obj.record("r", p, [OK, OK, OK, OK, OK, FAIL], 0)
    assert snap.state == "closed" and (snap.calls, snap.failures) == (4, 1)
    snap = await backend_obj.record("r", p, [FAIL], 0)
    assert snap.state == "open"


async def test_slow_rate(backend_obj) -> None:  # type: ignore[no-untyped-def]
    p = Policy(failure_threshold=0, slow_call_rate=0.5, window_size=4, minimum_calls=4)
    snap = await backend_obj.record("s", p, [2, 0, 2, 0], 0)
    assert snap.state == "open" and snap.slow == 2


async def test_half_open_cycle(backend_obj) -> None:  # type: ignore[no-untyped-def]
    p = Policy(failure_threshold=1, open_timeout=0.15, half_open_calls=2, success_threshold=2)
    await backend_obj.record("h", p, [FAIL], 0)
    early = await backend_obj.acquire("h", p)
    assert (early.state, early.permitted) == ("open", False)
    await asyncio.sleep(0.2)
    grants = [await backend_obj.acquire("h", p) for _ in range(3)]
    assert [g.permitted for g in grants] == [True, True, False]
    assert {g.state for g in grants} == {"half_open"} and grants[0].generation == 2
    snap = await backend_obj.record("h", p, [OK], 2)
    assert snap.state == "half_open"
    snap = await backend_obj.record("h", p, [OK], 2)
    assert (snap.state, snap.generation, snap.calls) == ("closed", 3, 0)
    await backend_obj.record("h", p, [FAIL], 3)
    await asyncio.sleep(0.2)
    assert (await backend_obj.acquire("h", p)).permitted
    snap = await backend_obj.record("h", p, [FAIL], 5)
    assert (snap.state, snap.generation) == ("open", 6)


async def test_force_and_names(backend_obj) -> None:  # type: ignore[no-untyped-def]
    p = Policy(failure_threshold=1, open_timeout=0.05)
    await backend_obj.register(["f", "g"])
    assert set(await backend_obj.names()) >= {"f", "g"}
    snap = await backend_obj.force("f", p, "open")
    assert (snap.state, snap.forced) == ("open", True)
    await asyncio.sleep(0.1)
    assert not (await backend_obj.acquire("f", p)).permitted
    snap = await backend_obj.force("f", p, "closed")
    snap = await backend_obj.record("f", p, [FAIL, FAIL], snap.generation)
    assert (snap.state, snap.forced, snap.failures) == ("closed", True, 2)
    snap = await backend_obj.force("f", p, "reset")
    assert (snap.state, snap.forced, snap.calls) == ("closed", False, 0)
    read = await backend_obj.read("f", p)
    assert (read.state, read.generation) == ("closed", snap.generation)


async def test_time_window(backend_obj) -> None:  # type: ignore[no-untyped-def]
    p = Policy(failure_threshold=0, window="time", window_size=1, minimum_calls=3)
    await backend_obj.record("t", p, [FAIL, FAIL], 0)
    await asyncio.sleep(1.05)
    snap = await backend_obj.record("t", p, [OK, FAIL], 0)
    assert snap.state == "closed" and snap.calls == 2
