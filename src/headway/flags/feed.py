"""Change announcements: a process that writes a flag publishes the new version on Redis
(``P:flags:changed``); every subscribed process reloads at once. Polling the store's
version every ``poll_interval`` is the fallback that needs nothing but the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis


class RedisFeed:
    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.channel = f"{prefix}:flags:changed"

    async def publish(self, version: int) -> None:
        await self.client.publish(self.channel, str(version))

    async def listen(self, callback: Callable[[int | None], None]) -> None:
        """``callback(version)`` per announcement; ``callback(None)`` once subscribed."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            callback(None)
            while True:
                message = await pubsub.get_message(timeout=30.0)
                if message is not None and message.get("type") == "message":
                    try:
                        callback(int(message["data"]))
                    except ValueError:
                        continue
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
