"""A change made in one process is seen by another: polling (SQLite) and Redis pub/sub."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

import pytest
from tests.conftest import backend_params
from tests.flags.conftest import MakeFlags

CHILD = """
import asyncio, sys, time
from headway import Headway
from headway.flags import Flags, FlagsSettings

async def main(url, redis_url, prefix, rounds):
    hw = Headway(redis_url=redis_url) if redis_url != "-" else Headway()
    flags = hw.add(Flags(hw, FlagsSettings(prefix=prefix), url=url))
    async with hw:
        while flags.feed is not None and not flags.listening:
            await asyncio.sleep(0.005)
        print("ready", flush=True)
        state = False
        for i in range(rounds):
            state = not state
            while await flags.is_enabled("probe") != state:
                await asyncio.sleep(0.001)
            print("seen", i, repr(time.time()), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


async def measure(flags, url: str, redis_url: str, prefix: str, rounds: int) -> list[float]:  # type: ignore[no-untyped-def]
    await flags.save({"key": "probe", "enabled": False})
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, url, redis_url, prefix, str(rounds),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    delays = []
    try:
        assert (await asyncio.wait_for(child.stdout.readline(), 20)).strip() == b"ready"
        state = False
        for i in range(rounds):
            state = not state
            started = time.time()
            await flags.update("probe", {"enabled": state}, actor="test")
            line = (await asyncio.wait_for(child.stdout.readline(), 5)).split()
            assert line[:2] == [b"seen", str(i).encode()]
            delays.append(float(line[2]) - started)
        assert await asyncio.wait_for(child.wait(), 10) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    return delays


async def test_polling_propagation_sqlite(
    make_flags: MakeFlags, sqlite_url: str, redis_prefix: str
) -> None:
    flags = await make_flags(sqlite_url)
    delays = await measure(flags, sqlite_url, "-", redis_prefix, 5)
    print(f"\nflag change via polling: median {statistics.median(delays) * 1000:.0f} ms, "
          f"max {max(delays) * 1000:.0f} ms")  # fmt: skip
    assert max(delays) < 1.0


@pytest.mark.parametrize("backend", backend_params("redis", "cluster"))
async def test_pubsub_propagation_redis(
    make_flags: MakeFlags, sqlite_url: str, backend: str, backend_url: str, redis_prefix: str
) -> None:
    redis_url = backend_url
    flags = await make_flags(sqlite_url, redis_url=redis_url)
    delays = await measure(flags, sqlite_url, redis_url, redis_prefix, 10)
    print(f"\nflag change via Redis pub/sub: median {statistics.median(delays) * 1000:.1f} ms, "
          f"max {max(delays) * 1000:.1f} ms")  # fmt: skip
    assert max(delays) < 1.0
