"""A lean, pipelined RESP2 connection for the hot paths of the Redis job store and limiter.

Why not redis-py for every call: profiling ``await task.enqueue()`` showed most of each
call inside redis-py's asyncio client (pool checkout, argument encoding in Python, a
StreamReader per reply); a PING loop ran ~4,900/s through it and ~8,900/s through an
``asyncio.Protocol`` fed to hiredis' C parser on the same machine. This module is that
protocol: commands are packed by ``hiredis.pack_command`` and written at once, replies are
matched to callers in order, so concurrent callers share one connection and are pipelined
for free. It runs the job scripts (EVALSHA) and the blocking wake-up (BLPOP); the read API
keeps using the hub's shared redis-py client.

A lost connection fails every pending call with ``ConnectionError`` (which the jobs
capability reports as BackendUnavailableError) and the next call connects again.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

import hiredis


class ReplyError(Exception):
    """An error reply from Redis (``NOSCRIPT ...``, ``WRONGTYPE ...``)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect (taken from a redis-py pool's connection kwargs)."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None  # unix socket
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None
    connect_timeout: float = 5.0

    @classmethod
    def from_redis_py(cls, kwargs: dict[str, Any], tls: bool) -> Endpoint:
        context: ssl.SSLContext | None = None
        if tls:
            context = ssl.create_default_context(cafile=kwargs.get("ssl_ca_certs"))
            if kwargs.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return cls(
            host=str(kwargs.get("host") or "127.0.0.1"),
            port=int(kwargs.get("port") or 6379),
            path=kwargs.get("path"),
            db=int(kwargs.get("db") or 0),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            tls=context,
            connect_timeout=float(kwargs.get("socket_connect_timeout") or 5.0),
        )


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=ReplyError)
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: trust the interface.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                waiter = self.waiters.popleft()
                if waiter.done():  # its caller was cancelled: drop the reply
                    continue
                if isinstance(reply, ReplyError):
                    waiter.set_exception(reply)
                else:
                    waiter.set_result(reply)
        except hiredis.ProtocolError as exc:
            self._fail(ConnectionError(f"Redis protocol error: {exc}"))
            if self.transport is not None:
                self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(ConnectionError(f"connection to Redis lost ({exc or 'closed by server'})"))

    def _fail(self, error: Exception) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()  # mark retrieved: an abandoned call logs nothing

    def send1(self, payload: bytes) -> asyncio.Future[Any]:
        if self.transport is None:
            raise ConnectionError("connection to Redis lost")
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        self.transport.write(payload)
        return future

    def send(self, payload: bytes, replies: int) -> list[asyncio.Future[Any]]:
        if self.transport is None:
            raise ConnectionError("connection to Redis lost")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(replies)]
        self.waiters.extend(futures)
        self.transport.write(payload)
        return futures


class Connection:
    """One Redis connection; reconnects on the call after a failure."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.generation = 0  # +1 per (re)connect: the server may have lost its state
        self._proto: _Protocol | None = None
        self._lock = asyncio.Lock()

    async def call(self, *args: Any) -> Any:
        """Send one command and return its reply (ReplyError for an error reply)."""
        proto = self._proto
        if proto is None or proto.transport is None:
            proto = await self._connect()
        return await proto.send1(hiredis.pack_command(args))

    async def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send several commands in one write; their replies, errors as exceptions."""
        proto = self._proto
        if proto is None or proto.transport is None:
            proto = await self._connect()
        payload = b"".join(hiredis.pack_command(cmd) for cmd in commands)
        futures = proto.send(payload, len(commands))
        return list(await asyncio.gather(*futures, return_exceptions=True))

    async def _connect(self) -> _Protocol:
        async with self._lock:
            if self._proto is not None and self._proto.transport is not None:
                return self._proto
            ep = self.endpoint
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(ep.connect_timeout):
                if ep.path:
                    _, proto = await loop.create_unix_connection(_Protocol, ep.path)
                else:
                    _, proto = await loop.create_connection(_Protocol, ep.host, ep.port, ssl=ep.tls)
                setup: list[tuple[Any, ...]] = []
                if ep.password is not None:
                    user = (ep.username,) if ep.username else ()
                    setup.append(("AUTH", *user, ep.password))
                if ep.db:
                    setup.append(("SELECT", ep.db))
                if setup:
                    payload = b"".join(hiredis.pack_command(cmd) for cmd in setup)
                    try:
                        await asyncio.gather(*proto.send(payload, len(setup)))
                    except BaseException:
                        if proto.transport is not None:
                            proto.transport.close()
                        raise
            self._proto = proto
            self.generation += 1
            return proto

    def close(self) -> None:
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()


class ClientCalls:
    """:class:`Connection`'s interface over a redis-py client that routes each command
    itself (a Redis Cluster, or Sentinel's current master).

    Slower than the lean connection (redis-py's per-command work, pipelines sent one
    command at a time, in order) but correct on every topology: each EVALSHA goes to the
    node owning its keys' slot.
    """

    generation = 1  # redis-py reconnects by itself; scripts are reloaded on NOSCRIPT

    def __init__(self, client: Any) -> None:
        self.client = client

    async def call(self, *args: Any) -> Any:
        from redis.exceptions import NoScriptError, ResponseError

        name = args[0].decode() if isinstance(args[0], bytes) else args[0]
        try:
            return await self.client.execute_command(name, *args[1:])
        except NoScriptError as exc:
            raise ReplyError(f"NOSCRIPT {exc}") from None
        except ResponseError as exc:
            raise ReplyError(str(exc)) from None

    async def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        replies: list[Any] = []
        for command in commands:  # in order: one queue's commands share one slot
            try:
                replies.append(await self.call(*command))
            except Exception as exc:  # errors as values, as Connection.pipeline does
                replies.append(exc)
        return replies

    def close(self) -> None:
        """The client belongs to whoever made it."""


def lean_or_routed(client: Any) -> Connection | ClientCalls:
    """A lean connection to ``client``'s one server, or :class:`ClientCalls` when the
    client routes commands itself (Cluster, Sentinel)."""
    from redis.asyncio import BlockingConnectionPool, ConnectionPool, SSLConnection

    pool = getattr(client, "connection_pool", None)
    if type(pool) not in (ConnectionPool, BlockingConnectionPool):
        return ClientCalls(client)
    assert pool is not None
    tls = issubclass(pool.connection_class, SSLConnection)
    return Connection(Endpoint.from_redis_py(dict(pool.connection_kwargs), tls))
