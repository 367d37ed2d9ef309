"""Redis topologies: one server, a Redis Cluster (``redis+cluster://``) and Sentinel."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import IN_CI, REDIS_HOST, REDIS_PORT, require_server

from headway import Headway, Settings
from headway.connections.redis import is_cluster, plain_url
from headway.errors import ConfigError


def test_cluster_and_sentinel_urls_are_accepted() -> None:
    for url in (
        "redis+cluster://127.0.0.1:7000",
        "rediss+cluster://h:7000",
        "redis://h:7000?cluster=true",
        "redis+sentinel://h1:26379,h2:26379/mymaster/0",
    ):
        assert Settings(redis_url=url).redis_url == url
    assert is_cluster("redis+cluster://h:1") and is_cluster("redis://h:1?cluster=true")
    assert not is_cluster("redis://h:1/0")
    assert plain_url("redis+cluster://:pw@h:1/0?cluster=true&x=1") == "redis://:pw@h:1/0?x=1"


def test_bad_topology_urls_are_clear_errors() -> None:
    with pytest.raises((ConfigError, ValueError), match="accepted forms"):
        Settings(redis_url="redis+mesh://h:1")
    hw = Headway(redis_url="redis+cluster://127.0.0.1:1/3")
    with pytest.raises(ValueError, match="only database 0"):
        hw.connections.redis()
    hw = Headway(redis_url="redis+sentinel://127.0.0.1:26379")
    with pytest.raises(ValueError, match="names the service"):
        hw.connections.redis()


async def test_capabilities_share_state_on_a_cluster(redis_cluster_url: str) -> None:
    """Two hubs on one cluster: cache entries of many tenants, breakers and limits agree."""
    a, b = Headway(redis_url=redis_cluster_url), Headway(redis_url=redis_cluster_url)
    for hw in (a, b):
        hw.cache
        hw.breakers
    async with a, b:
        for tenant in range(20):  # tenants hash to slots on every master
            await a.cache.set("k", {"t": tenant}, tenant=tenant, tags=["t"])
        assert [await b.cache.get("k", tenant=t) for t in range(20)] == [
            {"t": t} for t in range(20)
        ]
        await b.cache.invalidate_tags("t", tenant=3)
        assert await a.cache.get("k", tenant=3) is None
        assert await a.cache.get("k", tenant=4) == {"t": 4}
        a.breakers.breaker("payments")  # declared here only: b finds it in Redis
        await a.breakers.force_open("payments")
        assert (await b.breakers.describe("payments"))["state"] == "open"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sentinel_url(tmp_path: Path) -> Iterator[str]:
    """A Sentinel watching the local Redis (read-only for it) as ``mymaster``."""
    require_server("Redis", REDIS_HOST, REDIS_PORT)
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is needed for the Sentinel test")
        pytest.skip("redis-server not installed")
    port = _free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster {REDIS_HOST} {REDIS_PORT} 1\n"
    )
    proc = subprocess.Popen(
        ["redis-server", str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "sentinel did not start"
                time.sleep(0.1)
        yield f"redis+sentinel://127.0.0.1:{port}/mymaster/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_sentinel_url_finds_the_master(sentinel_url: str, redis_prefix: str) -> None:
    hw = Headway(redis_url=sentinel_url)
    client = hw.connections.redis()
    try:
        key = f"{redis_prefix}:sentinel"
        await client.set(key, b"v", px=10_000)
        assert await client.get(key) == b"v"
        await client.delete(key)
    finally:
        await hw.connections.close()
    await asyncio.sleep(0)
