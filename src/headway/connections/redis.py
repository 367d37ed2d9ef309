"""The shared redis-py asyncio client (hiredis parser when installed)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from headway.settings import Settings


def make_client(url: str, settings: Settings) -> Redis:
    """One blocking pool of at most ``pool_max`` connections.

    A full pool makes callers wait up to ``connect_timeout`` for a free connection instead
    of failing at once. redis-py has no idle timeout; ``health_check_interval`` makes a
    connection that sat idle that long answer a PING before it is used again.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.pool_max,
        timeout=settings.connect_timeout,
        socket_connect_timeout=settings.connect_timeout,
        health_check_interval=max(1, round(settings.idle_timeout)),
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() disconnects it
