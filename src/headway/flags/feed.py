"""Change announcements: a process that writes a flag publishes the new version on Redis
(``P:flags:changed``); every subscribed process reloads at once. Polling the store's
version every ``poll_interval`` is the fallback that needs nothing but the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from headway.connections.pubsub import listen as pubsub_listen

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

        def on_message(data: bytes) -> None:
            try:
                version = int(data)
            except ValueError:
                return  # not a version: ignored
            callback(version)

        await pubsub_listen(
            self.client, self.channel, on_message, on_subscribed=lambda: callback(None)
        )
