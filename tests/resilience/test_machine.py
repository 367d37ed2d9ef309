"""The breaker state machine through the public API, with a controlled clock (memory://)."""

from __future__ import annotations

import asyncio

import pytest
from tests.resilience.conftest import FakeClock, MakeBreakers

from headway.resilience import CircuitOpenError


class Boom(Exception):
    pass


async def ok() -> str:
    return "ok"


async def fail() -> str:
    raise Boom("down")


async def fail_n(breaker, n: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(n):
        with pytest.raises(Boom):
            await breaker.call(fail)


async def test_full_cycle_with_controlled_clock(
    make_breakers: MakeBreakers, clock: FakeClock
) -> None:
    breakers = await make_breakers("memory://", clock)
    seen: list[tuple[str, str]] = []
    breakers.on_transition(lambda b, before, after: seen.append((before, after)))
    b = breakers.breaker("db")
    assert await b.call(ok) == "ok"
    await fail_n(b, 4)
    assert b.state == "closed"
    await fail_n(b, 1)  # 5 consecutive failures
    assert b.state == "open"

    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    with pytest.raises(CircuitOpenError) as info:
        await b.call(counted)
    assert calls == 0 and info.value.status == 503
    assert info.value.headers == {"Retry-After": "60"}

    clock.advance(59.9)
    with pytest.raises(CircuitOpenError):
        await b.call(counted)
    clock.advance(0.2)  # open_timeout (60 s) has passed: half-open, 2 trials at a time
    gate = asyncio.Event()

    async def slow_trial() -> str:
        await gate.wait()
        return "ok"

    t1 = asyncio.create_task(b.call(slow_trial))
    t2 = asyncio.create_task(b.call(slow_trial))
    await asyncio.sleep(0)
    assert b.state == "half_open"
    with pytest.raises(CircuitOpenError):  # a third trial is refused
        await b.call(counted)
    gate.set()
    assert await asyncio.gather(t1, t2) == ["ok", "ok"]
    assert b.state == "closed"  # 2 successes close it
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_half_open_failure_reopens(make_breakers: MakeBreakers, clock: FakeClock) -> None:
    b = (await make_breakers("memory://", clock)).breaker("api", open_timeout=10)
    await fail_n(b, 5)
    clock.advance(10)
    await fail_n(b, 1)
    assert b.state == "open"
    assert b.snap.opened_at == clock.now
    with pytest.raises(CircuitOpenError):
        await b.call(ok)


async def test_success_resets_consecutive_count(
    make_breakers: MakeBreakers, clock: FakeClock
) -> None:
    b = (await make_breakers("memory://", clock)).breaker("x", failure_rate=0)
    for _ in range(3):
        await fail_n(b, 4)
        await b.call(ok)
    assert b.state == "closed"


async def test_failure_rate_over_count_window(
    make_breakers: MakeBreakers, clock: FakeClock
) -> None:
    b = (await make_breakers("memory://", clock)).breaker(
        "rate", failure_threshold=0, window_size=10, minimum_calls=10, failure_rate=0.5
    )
    for _ in range(4):  # f s f s ... : 4 failures of 8
        await fail_n(b, 1)
        await b.call(ok)
    assert b.state == "closed"
    await fail_n(b, 1)  # 5 of 9: below minimum_calls
    assert b.state == "closed"
    await fail_n(b, 1)  # 6 of 10
    assert b.state == "open"


async def test_time_window_forgets_old_failures(
    make_breakers: MakeBreakers, clock: FakeClock
) -> None:
    b = (await make_breakers("memory://", clock)).breaker(
        "t", failure_threshold=0, window="time", window_size=10, minimum_calls=4
    )
    await fail_n(b, 3)
    clock.advance(11)
    await b.call(ok)
    await fail_n(b, 1)  # window: s f (the 3 old failures left it)
    assert b.state == "closed"
    await fail_n(b, 2)  # s f f f: 75 % of 4
    assert b.state == "open"


async def test_slow_call_rate(make_breakers: MakeBreakers) -> None:
    b = (await make_breakers("memory://")).breaker(
        "slow", slow_call_rate=0.5, slow_call_duration=0.01, minimum_calls=4, window_size=4
    )

    async def sluggish() -> str:
        await asyncio.sleep(0.02)
        return "late"

    for _ in range(2):
        await b.call(ok)
        await b.call(sluggish)
    await b.flush()  # successes are buffered; a flush (or any failure) applies them
    assert b.state == "open"


async def test_exceptions_ignore_timeout_and_fallback(make_breakers: MakeBreakers) -> None:
    breakers = await make_breakers("memory://")
    b = breakers.breaker("f", exceptions=(Boom,), ignore=(KeyError,), failure_threshold=2)

    async def key_error() -> None:
        raise KeyError("x")

    async def value_error() -> None:
        raise ValueError("x")

    for fn in (key_error, value_error, key_error):
        with pytest.raises((KeyError, ValueError)):
            await b.call(fn)
    assert b.stats["ignored"] == 2 and b.stats["failure"] == 0
    await fail_n(b, 2)
    assert b.state == "open"

    fb = breakers.breaker("fb", fallback="cached", failure_threshold=1, call_timeout=0.01)

    async def hang() -> str:
        await asyncio.sleep(1)
        return "never"

    assert await fb.call(hang) == "cached"  # timeout counts as a failure, fallback used
    assert fb.state == "open"
    assert await fb.call(ok) == "cached"  # open: fallback without calling

    async def from_exc(exc: BaseException) -> str:
        return type(exc).__name__

    fn_fb = breakers.breaker("fn", fallback=from_exc, failure_threshold=1)
    assert await fn_fb.call(fail) == "Boom"
    assert await fn_fb.call(ok) == "CircuitOpenError"


async def test_decorator_and_context_manager(make_breakers: MakeBreakers) -> None:
    breakers = await make_breakers("memory://")
    b = breakers.breaker("deco", failure_threshold=2)

    @b
    async def double(x: int) -> int:
        if x < 0:
            raise Boom
        return x * 2

    assert await double(2) == 4
    with pytest.raises(TypeError):
        b(lambda: None)  # type: ignore[arg-type, return-value]
    for _ in range(2):
        with pytest.raises(Boom):
            async with b:
                raise Boom
    assert b.state == "open"
    with pytest.raises(CircuitOpenError):
        async with b:
            pass
    with pytest.raises(CircuitOpenError):
        await double(1)

    t = breakers.breaker("ctx-timeout", call_timeout=0.01, failure_threshold=1)
    with pytest.raises(TimeoutError):
        async with t:
            await asyncio.sleep(1)
    assert t.state == "open"


async def test_forced_states(make_breakers: MakeBreakers, clock: FakeClock) -> None:
    breakers = await make_breakers("memory://", clock)
    b = breakers.breaker("svc")
    await breakers.force_open("svc")
    clock.advance(3600)
    with pytest.raises(CircuitOpenError):  # forced open never half-opens
        await b.call(ok)
    await breakers.force_close("svc")
    await fail_n(b, 20)
    assert b.state == "closed"  # forced closed never trips
    view = await breakers.reset("svc")
    assert view["state"] == "closed" and view["forced"] is False
    await fail_n(b, 5)
    assert b.state == "open"
    with pytest.raises(Exception) as info:
        await breakers.force_open("nope")
    assert getattr(info.value, "status", None) == 404


def test_invalid_policy_and_names() -> None:
    from headway.resilience import Policy

    with pytest.raises(ValueError, match="failure_rate"):
        Policy(failure_rate=2)
    with pytest.raises(TypeError, match="unknown breaker option"):
        from headway.resilience import BreakersSettings

        Policy.from_settings(BreakersSettings(), colour="red")
