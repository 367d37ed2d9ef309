"""Across real processes: L1 coherence delay, and Redis going away and coming back.

The Redis fault test runs its own ``redis-server`` on a free 127.0.0.1 port and stops it
by PID; the shared Redis is never touched by it.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis
from tests.cache.conftest import MakeCache

CHILD = """
import asyncio, sys, time
from headway import Headway
from headway.cache import Cache, CacheSettings

async def main(url, prefix, rounds):
    hw = Headway()
    cache = hw.add(Cache(hw, CacheSettings(prefix=prefix, l1_ttl=60), url=url))
    async with hw:
        while not cache.stats()["coherence"]["listening"]:
            await asyncio.sleep(0.005)
        for i in range(rounds):
            key = f"probe:{i}"
            await cache.get(key)
            full = cache.keys.entry(key)
            assert full in cache.l1, "value not in L1"
            print("ready", i, flush=True)
            while full in cache.l1:
                await asyncio.sleep(0)
            print("gone", i, repr(time.time()), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_l1_invalidation_reaches_another_process(
    make_cache: MakeCache, redis_url: str, redis_prefix: str
) -> None:
    cache = await make_cache(redis_url)
    rounds = 20
    for i in range(rounds):
        await cache.set(f"probe:{i}", i, ttl=60)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        redis_url,
        redis_prefix,
        str(rounds),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    delays: list[float] = []
    try:
        for i in range(rounds):
            line = await asyncio.wait_for(child.stdout.readline(), 20)
            assert line.split() == [b"ready", str(i).encode()], line
            started = time.time()
            await cache.delete(f"probe:{i}")
            line = await asyncio.wait_for(child.stdout.readline(), 5)
            delays.append(float(line.split()[2]) - started)
        assert await asyncio.wait_for(child.wait(), 10) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    median, worst = statistics.median(delays), max(delays)
    print(
        f"\nL1 invalidation delay across processes: median {median * 1000:.2f} ms, "
        f"max {worst * 1000:.2f} ms over {rounds}"
    )
    assert median < 0.1 and worst < 1.0


# -- Redis down and back ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway redis-server on 127.0.0.1, started and stopped by PID."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def spare_redis() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(_free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_redis_down_falls_back_and_recovers(
    make_cache: MakeCache, spare_redis: RedisServer
) -> None:
    url = f"redis://127.0.0.1:{spare_redis.port}/0"
    cache = await make_cache(url, retry_after=0.2, l1_ttl=60)
    calls = 0

    async def loader() -> int:
        nonlocal calls
        calls += 1
        return calls

    assert await cache.get_or_set("a", loader) == 1
    spare_redis.stop()

    assert await cache.get_or_set("a", loader) == 1  # from L1
    assert await cache.get_or_set("b", loader) == 2  # loader, nothing raised
    await cache.set("c", 3)
    assert await cache.get("c") == 3  # L1
    assert await cache.get("missing") is None
    assert await cache.delete("a") == 0
    assert await cache.invalidate_tags("t") == 0
    assert await cache.invalidate_tenant(1) == 0
    assert await cache.incr("n") == 1
    assert await cache.get_many(["c", "zz"]) == [3, None]
    stats = cache.stats()
    assert stats["l2_errors"] >= 1 and stats["l2_available"] is False
    assert stats["last_error"]

    spare_redis.start()
    raw = Redis.from_url(url)
    try:
        deadline = time.monotonic() + 5
        while True:
            await cache.set("back", 42)
            if await raw.exists(cache.keys.entry("back")):
                break
            assert time.monotonic() < deadline, "cache did not use Redis again"
            await asyncio.sleep(0.05)
        cache.l1.clear()
        assert await cache.get("back") == 42
        assert await cache.get_or_set("d", loader) == 3
        assert await raw.exists(cache.keys.entry("d"))
    finally:
        await raw.aclose()
