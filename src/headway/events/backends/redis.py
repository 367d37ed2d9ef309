"""``redis://host:port/db``: pub/sub for the live feed, a capped list for history.

Why pub/sub + a list rather than Streams: every process needs every message at once,
which one pub/sub subscription per process gives without a blocking read per channel;
history is only read when a client reconnects, so a list trimmed on each publish (by
count, then by age) is enough. One Lua script (``lua/publish-2.lua``) assigns the offset,
appends, trims and publishes, so history order is publication order on every machine.

Keys, per channel, share a hash tag so the script touches one slot (Redis Cluster):
``<prefix>:ev:{<channel>}:s`` (epoch, seq) and ``<prefix>:ev:{<channel>}:h`` (history).
The feed is the pub/sub channel ``<prefix>:ev:feed``. The prefix is the URL's
``?prefix=`` or ``HEADWAY_EVENTS_REDIS_PREFIX``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from headway.connections.pubsub import listen as pubsub_listen
from headway.events.base import EventBackend, Message, Offset, Replay, missed_since

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from headway.connections import Connections
    from headway.events.settings import EventsSettings

log = logging.getLogger("headway.events")
_LUA = Path(__file__).parent / "lua"
_PUBLISH = (_LUA / "publish-2.lua").read_text()
_REPLAY = (_LUA / "replay-2.lua").read_text()
STATE_TTL_MS = 86_400_000  # a channel's epoch/seq outlive its history: idle clients resume


def split_prefix(url: str, default: str) -> tuple[str, str]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    prefix = next((v for k, v in query if k == "prefix"), default)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def parse_feed(raw: bytes) -> Message:
    header, _, data = raw.partition(b"\n")
    channel, epoch, seq, ms, event = header.decode().split("|", 4)
    return Message(channel, Offset(epoch, int(seq)), event, data, int(ms) / 1000)


class RedisEventBackend(EventBackend):
    def __init__(self, url: str, connections: Connections | None, settings: EventsSettings) -> None:
        super().__init__(url, connections, settings)
        self.redis_url, self.prefix = split_prefix(url, settings.redis_prefix)
        self.feed = f"{self.prefix}:ev:feed"
        self._own: Redis | None = None
        self._script: Any = None
        self._replay: Any = None

    @property
    def client(self) -> Redis:
        if self.connections is not None:
            return self.connections.redis(self.redis_url)
        if self._own is None:
            from redis.asyncio import Redis

            self._own = Redis.from_url(self.redis_url)
        return self._own

    async def open(self) -> None:
        self._script = self.client.register_script(_PUBLISH)
        self._replay = self.client.register_script(_REPLAY)

    async def close(self) -> None:
        own, self._own = self._own, None
        if own is not None:
            await own.aclose()

    def _keys(self, channel: str) -> tuple[str, str]:
        base = f"{self.prefix}:ev:{{{channel}}}"
        return f"{base}:s", f"{base}:h"

    async def publish(self, channel: str, event: str, data: bytes) -> Message:
        if self._script is None:
            await self.open()
        ttl_ms = max(1, round(self.history_ttl * 1000))
        args = [channel, event, data, os.urandom(4).hex(), self.history_size, ttl_ms]
        args += [max(STATE_TTL_MS, ttl_ms), self.feed]
        epoch, seq, ms = await self._script(keys=self._keys(channel), args=args)
        epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
        return Message(channel, Offset(epoch, int(seq)), event, data, int(ms) / 1000)

    async def listen(
        self, on_message: Callable[[Message], None], on_ready: Callable[[], None]
    ) -> None:
        def deliver(raw: bytes) -> None:
            try:
                msg = parse_feed(raw)
            except (ValueError, UnicodeDecodeError):
                log.warning("ignored a malformed message on %s", self.feed)
                return
            on_message(msg)

        pause = 0.1

        def ready() -> None:
            nonlocal pause
            pause = 0.1
            on_ready()

        while True:
            try:
                await pubsub_listen(self.client, self.feed, deliver, on_subscribed=ready)
            except (OSError, ConnectionError, TimeoutError) as exc:
                log.warning("events feed lost (%s); reconnecting in %.1f s", exc, pause)
            except Exception as exc:
                if "Connection" not in type(exc).__name__:
                    raise
                log.warning("events feed lost (%s); reconnecting in %.1f s", exc, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def replay(self, channel: str, after: Offset | None) -> Replay:
        if self._replay is None:
            await self.open()
        ttl_ms = max(1, round(self.history_ttl * 1000))
        epoch, seq, entries = await self._replay(keys=self._keys(channel), args=[ttl_ms])
        head = None if not epoch else Offset(epoch.decode(), int(seq or 0))
        if after is None:
            return Replay(head)
        kept = self._decode(channel, head, entries)
        oldest = kept[0].offset.seq if kept else None
        if missed_since(after, head, oldest):
            return Replay(head, lost=True)
        return Replay(head, tuple(m for m in kept if m.offset.seq > after.seq))

    @staticmethod
    def _decode(channel: str, head: Offset | None, entries: list[bytes]) -> list[Message]:
        if head is None:
            return []
        out = []
        for raw in entries:  # oldest first (replay-2.lua)
            header, _, data = raw.partition(b"\n")
            seq, ms, event = header.decode().split("|", 2)
            out.append(Message(channel, Offset(head.epoch, int(seq)), event, data, int(ms) / 1000))
        return out

    async def ping(self) -> None:
        await self.client.ping()
