"""Breakers shared across processes on Redis, and local protection while Redis is away."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
from tests.resilience.conftest import MakeBreakers

from headway.resilience import CircuitOpenError

CHILD = """
import asyncio, sys, time
from headway import Headway
from headway.resilience import Breakers, BreakersSettings, CircuitOpenError

async def main(url, prefix):
    hw = Headway()
    breakers = hw.add(Breakers(hw, BreakersSettings(prefix=prefix), url=url))
    b = breakers.breaker("payments")
    async with hw:
        while not breakers.listening:
            await asyncio.sleep(0.005)
        print("ready", flush=True)
        while b.state != "open":
            await asyncio.sleep(0.001)
        print("open", repr(time.time()), flush=True)
        async def never():
            raise AssertionError("called while open")
        try:
            await b.call(never)
        except CircuitOpenError:
            print("rejected", flush=True)
        while b.state != "closed":
            await asyncio.sleep(0.001)
        print("closed", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


class Boom(Exception):
    pass


async def fail() -> None:
    raise Boom


@pytest.mark.redis
async def test_two_processes_see_the_breaker_open_together(
    make_breakers: MakeBreakers, redis_url: str, redis_prefix: str
) -> None:
    breakers = await make_breakers(redis_url)
    b = breakers.breaker("payments")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, redis_url, redis_prefix, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    try:
        assert (await asyncio.wait_for(child.stdout.readline(), 20)).strip() == b"ready"
        for _ in range(5):
            with pytest.raises(Boom):
                await b.call(fail)
        tripped = time.time()
        assert b.state == "open"
        line = (await asyncio.wait_for(child.stdout.readline(), 5)).split()
        assert line[0] == b"open"
        delay = float(line[1]) - tripped
        assert (await asyncio.wait_for(child.stdout.readline(), 5)).strip() == b"rejected"
        await breakers.reset("payments")
        assert (await asyncio.wait_for(child.stdout.readline(), 5)).strip() == b"closed"
        assert await asyncio.wait_for(child.wait(), 10) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    print(f"\nbreaker opening seen by the other process after {delay * 1000:.2f} ms")
    assert delay < 1.0


@pytest.mark.redis
async def test_one_round_trip_free_happy_path(make_breakers: MakeBreakers, redis_url: str) -> None:
    breakers = await make_breakers(redis_url, flush_interval=10)
    b = breakers.breaker("hot")
    calls = 0
    real = breakers.backend.record

    async def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await real(*args, **kwargs)

    breakers.backend.record = counting  # type: ignore[method-assign]

    async def ok() -> int:
        return 1

    for _ in range(1000):
        await b.call(ok)
    assert calls == 0 and 100 <= len(b.pending) <= 200  # buffered, bounded by the window
    await b.flush()
    assert calls == 1
    assert (await breakers.describe("hot"))["window"]["calls"] == 100


async def test_redis_down_falls_back_to_local_state(make_breakers: MakeBreakers) -> None:
    # Nothing listens on port 1: every shared operation fails at once.
    breakers = await make_breakers("redis://127.0.0.1:1/0", retry_after=30)
    b = breakers.breaker("db", failure_threshold=3)
    for _ in range(3):
        with pytest.raises(Boom):
            await b.call(fail)
    assert b.state == "open" and b.local, (b.snap, breakers.local._machines)
    with pytest.raises(CircuitOpenError):
        await b.call(fail)
    assert "ConnectionError" in breakers.last_error or breakers.last_error
