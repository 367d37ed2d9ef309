"""One Redis pub/sub listening loop, shared by every capability that listens.

redis-py can swallow a cancellation that arrives while it reads a reply (the task stays
"cancelling" but carries on). The loop therefore waits at most ``poll`` seconds per read
and stops when its task is being cancelled, so a hub stops in about ``poll`` seconds
whatever moment the cancellation hit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the redis backends call this: the extra is installed then
    from redis.asyncio import Redis


async def listen(
    client: Redis,
    channel: str,
    on_message: Callable[[bytes], None],
    *,
    on_subscribed: Callable[[], None] | None = None,
    poll: float = 1.0,
) -> None:
    """Call ``on_message(data)`` for every message on ``channel`` until cancelled.

    ``on_subscribed()`` runs once the subscription is live (messages sent before it were
    missed: the caller resynchronises there).
    """
    task = asyncio.current_task()
    if hasattr(client, "nodes_manager"):  # a Redis Cluster client must know its slots first
        await client.initialize()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)
        if on_subscribed is not None:
            on_subscribed()
        while task is None or not task.cancelling():
            message = await pubsub.get_message(timeout=poll)
            if message is not None and message.get("type") == "message":
                on_message(message["data"])
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    raise asyncio.CancelledError  # the cancellation redis-py swallowed
