"""The shared redis-py asyncio client (hiredis parser when installed).

``redis://``, ``rediss://`` and ``unix://`` give one server; ``redis+cluster://`` (or
``rediss+cluster://``, or any of them with ``?cluster=true``) a Redis Cluster client that
discovers the other nodes from the one named; ``redis+sentinel://host:26379/<service>/<db>``
asks the Sentinels for the current master of ``<service>``. Every headway key carries a
hash tag, so each script and pipeline of one operation stays on one slot of the cluster.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis

from headway.settings import Settings

CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})
SENTINEL_SCHEMES = frozenset({"redis+sentinel", "rediss+sentinel"})


def is_cluster(url: str) -> bool:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return parts.scheme in CLUSTER_SCHEMES or query.get("cluster", "").lower() in ("1", "true")


class ConcurrentCalls:
    """A stand-in for a non-transactional pipeline on a Redis Cluster.

    redis-py's cluster pipeline refuses some commands (EVALSHA among them); this records
    calls like a pipeline does and sends them concurrently, each to its slot's node.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> ConcurrentCalls:
            self._calls.append((name, args, kwargs))
            return self

        return record

    async def execute(self) -> list[Any]:
        calls, self._calls = self._calls, []
        return list(await asyncio.gather(*(getattr(self._client, n)(*a, **k) for n, a, k in calls)))


def make_client(url: str, settings: Settings) -> Redis:
    """One blocking pool of at most ``pool_max`` connections (per node for a cluster).

    A full pool makes callers wait up to ``connect_timeout`` for a free connection instead
    of failing at once. redis-py has no idle timeout; ``health_check_interval`` makes a
    connection that sat idle that long answer a PING before it is used again.
    """
    scheme = urlsplit(url).scheme
    if scheme in SENTINEL_SCHEMES:
        return _sentinel_client(url, settings)
    if is_cluster(url):
        return _cluster_client(url, settings)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.pool_max,
        timeout=settings.connect_timeout,
        socket_connect_timeout=settings.connect_timeout,
        health_check_interval=max(1, round(settings.idle_timeout)),
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() disconnects it


def own_client(url: str) -> Redis:
    """A client of its own for a backend built without the hub's connections (any URL
    form above), with the default pool settings."""
    return make_client(url, Settings())


def plain_url(url: str) -> str:
    """``redis+cluster://h:p/0?cluster=true&x=1`` -> ``redis://h:p/0?x=1``."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "cluster"])
    return urlunsplit((scheme, parts.netloc, parts.path, query, parts.fragment))


def _cluster_client(url: str, settings: Settings) -> Redis:
    from redis.asyncio.cluster import RedisCluster

    class WarmCluster(RedisCluster):
        """Every first command waits for one discovery of the cluster's slots.

        redis-py discovers the nodes on first use; commands racing that discovery can fail
        mid-flight and be retried, running a non-idempotent script twice (seen with
        concurrent EVALSHA on a fresh client). One shared discovery task prevents it.
        """

        _warming: asyncio.Future[Any] | None = None

        async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
            warming = self._warming
            if warming is None or (
                warming.done() and (warming.cancelled() or warming.exception() is not None)
            ):  # first use, or the last discovery failed: discover (again)
                self._warming = asyncio.ensure_future(self.initialize())
            await asyncio.shield(self._warming)  # type: ignore[arg-type]
            return await super().execute_command(*args, **kwargs)

    plain = plain_url(url)
    if urlsplit(plain).path not in ("", "/", "/0"):
        raise ValueError("a Redis Cluster has only database 0")
    client: Any = WarmCluster.from_url(
        plain,
        max_connections=settings.pool_max,
        socket_connect_timeout=settings.connect_timeout,
        health_check_interval=max(1, round(settings.idle_timeout)),
    )
    # RedisCluster offers the commands headway uses (EVALSHA, pipelines, pub/sub, SCAN)
    # under the same names; typed as the single-server client for the callers.
    return cast(Redis, client)


def _sentinel_client(url: str, settings: Settings) -> Redis:
    from redis.asyncio.sentinel import Sentinel

    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        raise ValueError("a Sentinel URL names the service: redis+sentinel://host:26379/mymaster/0")
    service, db = segments[0], int(segments[1]) if len(segments) > 1 else 0
    hosts = []
    for host in parts.netloc.rsplit("@", 1)[-1].split(","):
        name, _, port = host.partition(":")
        hosts.append((name, int(port or 26379)))
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        hosts,
        socket_timeout=settings.connect_timeout,
        sentinel_kwargs={"socket_connect_timeout": settings.connect_timeout},
        ssl=parts.scheme.startswith("rediss"),
    )
    client: Redis = sentinel.master_for(
        service,
        db=db,
        password=parts.password,
        username=parts.username,
        socket_connect_timeout=settings.connect_timeout,
        health_check_interval=max(1, round(settings.idle_timeout)),
    )
    return client
