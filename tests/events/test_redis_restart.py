"""Redis restarting under connected clients: the feed comes back, clients learn that the
history went with the server (reset) and get what is published afterwards.

Uses the private ``redis-server`` of the jobs suite (127.0.0.1, free port, no
persistence), stopped and started again by its PID.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis
from tests.events.realtime_helpers import next_frame, served, until_ready, ws_client
from tests.jobs.test_redis_restart import REDIS_SERVER, PrivateRedis, private_redis

from headway.events import Event

__all__ = ["private_redis"]  # the fixture, imported
pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]


class Tick(Event):
    n: int

    def channels(self) -> list[str]:
        return ["room.1"]


async def subscribers(port: int, feed: str) -> int:
    client = Redis(host="127.0.0.1", port=port)
    try:
        counts = await client.pubsub_numsub(feed)
        return int(counts[0][1])
    except OSError:
        return 0
    finally:
        await client.aclose()


async def test_clients_survive_a_redis_restart(private_redis: PrivateRedis, tmp_path: Path) -> None:
    port = private_redis.port
    url = f"redis://127.0.0.1:{port}/0"
    async with (
        served(url, tmp_path) as (hw, server),
        ws_client(server, "channels=room.1") as ws,
    ):
        await until_ready(ws)
        await hw.events.dispatch(Tick(n=1))
        assert (await next_frame(ws))["data"] == {"n": 1}
        feed = "hw:ev:feed"
        private_redis.stop()
        private_redis.start()
        count = 0
        for _ in range(200):  # until the feed subscribed again (10 s at most)
            count = await subscribers(port, feed)
            if count:
                break
            await asyncio.sleep(0.05)
        assert count == 1
        await hw.events.dispatch(Tick(n=2))
        # the history went with the server: the client is told to reload (n=2 may come
        # after the reset, or be covered by the reload) and gets what follows
        reset = await next_frame(ws)
        assert reset["type"] == "reset" and reset["channel"] == "room.1"
        await hw.events.dispatch(Tick(n=3))
        frame = await next_frame(ws)
        if frame["data"] == {"n": 2}:
            frame = await next_frame(ws)
        assert frame["type"] == "event" and frame["data"] == {"n": 3}
