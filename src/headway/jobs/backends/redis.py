"""``redis://host:port/db?prefix=hw``: the job store for many workers on many machines.

Every state change that must be atomic is one Lua script from ``lua/`` (loaded once,
then called by SHA). Keys of a queue share the Redis Cluster hash tag ``{queue}``, so
each script touches one slot; the job hashes live under ``<prefix>:{queue}:job:<id>``.
The only key outside a queue's slot is ``<prefix>:queues``, the set of known queues.
Times are Redis ``TIME`` in milliseconds, so every machine agrees.

Two clients: the scripts (enqueue, claim, finish, heartbeat...) go through
:mod:`.resp`, a pipelined connection on hiredis (see there why); the read API and
management use the hub's shared redis-py client (``hw.connections.redis(url)``), or the
backend's own when built without connections. The ``prefix`` query option is the
backend's and is removed from the URL before connecting.

Wake-up instead of polling: the enqueue script pushes one token onto
``<prefix>:{queue}:notify`` when the list is empty, and an idle worker blocks on it
(``BLPOP`` with the poll interval as timeout, on a connection of its own), so a new job
starts within a round trip or two. A claim that leaves ready jobs behind pushes the token
again for the next idle worker. The list never holds more than one token; a lost or
stale token costs at most one poll interval or one empty claim, never a job.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis

from headway.connections.resp import (
    ClientCalls,
    Connection,
    Endpoint,
    ReplyError,
    lean_or_routed,
)
from headway.jobs import constants as c
from headway.jobs.base import JobBackend, Lease
from headway.jobs.models import Beat, Claimed, JobRecord, NewJob, Outcome, RateLimit

if TYPE_CHECKING:
    from headway.connections import Connections

_ZSETS = ("ready", "scheduled", "running", "succeeded", "failed", "cancelled")
_STATE_ZSET = {c.QUEUED: "ready", **{s: s for s in _ZSETS if s != "ready"}}
_LOST = "lease expired (worker lost) after the last attempt"
_CLEAN_LIMIT = 5000
ROUTED_POLL = 0.05  # seconds between wake-up checks on a Redis Cluster / Sentinel
_IDLE_WAITERS = 4  # blocking connections kept for wait() (one per concurrent waiter)


def split_prefix(url: str) -> tuple[str, str]:
    """``redis://h/0?prefix=x&...`` -> (``redis://h/0?...``, ``x``)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), c.REDIS_PREFIX)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _rate(rate: RateLimit | None) -> tuple[int, int, int]:
    """A rate limit as claim-9.lua's ARGV[7..9]: starts, period (ms), per tenant (-1 = none)."""
    if rate is None:
        return (-1, 1000, -1)
    starts = -1 if rate.starts is None else rate.starts
    per_tenant = -1 if rate.per_tenant is None else rate.per_tenant
    return (starts, max(int(rate.period * 1000), 1), per_tenant)


def _ms(value: Any) -> float | None:
    return None if value in (None, b"", "") else int(value) / 1000


class _Script:
    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text.encode()
        self.sha = hashlib.sha1(self.text, usedforsecurity=False).hexdigest().encode()


def _load_scripts() -> dict[str, _Script]:
    folder = resources.files("headway.jobs.backends").joinpath("lua")
    return {
        item.name.rsplit("-", 1)[0]: _Script(item.read_text())
        for item in folder.iterdir()
        if item.name.endswith(".lua")
    }


class RedisJobBackend(JobBackend):
    # enqueue() pipelines scripts of MAX_BATCH jobs: a bigger slice is still one round trip.
    enqueue_batch = 20 * c.MAX_BATCH

    def __init__(self, url: str, connections: Connections | None = None) -> None:
        super().__init__(url, connections)
        self.redis_url, self.prefix = split_prefix(url)
        self._client: Redis | None = None
        self._conn: Connection | ClientCalls | None = None
        self._endpoint = Endpoint()
        self._waiters: list[Connection] = []
        self._scripts = _load_scripts()
        self._known: set[str] = set()
        self._known_generation = 0
        self._keys: dict[tuple[str, str], list[str]] = {}
        self._after: dict[str, str] = {}  # queue -> the tenant our last claim ended with

    async def open(self) -> None:
        if self._client is not None:
            return
        if self.connections is not None:
            self._client = self.connections.redis(self.redis_url)
        else:
            self._client = Redis.from_url(self.redis_url)
        self._conn = lean_or_routed(self._client)
        if isinstance(self._conn, Connection):
            self._endpoint = self._conn.endpoint

    async def close(self) -> None:
        client, self._client = self._client, None
        conn, self._conn = self._conn, None
        for waiter in [conn, *self._waiters]:
            if waiter is not None:
                waiter.close()
        self._waiters.clear()
        if client is not None and self.connections is None:
            await client.aclose()

    @property
    def r(self) -> Redis:
        if self._client is None:
            raise RuntimeError("Redis job store is not open")
        return self._client

    @property
    def conn(self) -> Connection | ClientCalls:
        if self._conn is None:
            raise RuntimeError("Redis job store is not open")
        return self._conn

    def _key(self, queue: str, name: str) -> str:
        return f"{self.prefix}:{{{queue}}}:{name}"

    def _jobs(self, queue: str) -> str:
        return self._key(queue, "job:")

    def _script_keys(self, queue: str, script: str, names: Sequence[str]) -> list[str]:
        """The KEYS of a script for a queue, built once."""
        keys = self._keys.get((queue, script))
        if keys is None:
            keys = self._keys[(queue, script)] = [self._key(queue, n) for n in names]
        return keys

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA; after a server restart (NOSCRIPT), EVAL, which loads the script again."""
        s = self._scripts[script]
        try:
            return await self.conn.call(b"EVALSHA", s.sha, len(keys), *keys, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await self.conn.call(b"EVAL", s.text, len(keys), *keys, *args)

    async def _run_many(
        self, script: str, keys: Sequence[str], argss: list[list[Any]]
    ) -> list[Any]:
        """Several calls of one script in one write (one round trip), replies in order."""
        s = self._scripts[script]
        head = (b"EVALSHA", s.sha, len(keys), *keys)
        replies = await self.conn.pipeline([(*head, *args) for args in argss])
        for i, reply in enumerate(replies):
            if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
                replies[i] = await self.conn.call(b"EVAL", s.text, len(keys), *keys, *argss[i])
            elif isinstance(reply, BaseException):
                raise reply
        return replies

    def _registered(self, queue: str) -> bool:
        return queue in self._known and self.conn.generation == self._known_generation

    async def _register(self, queue: str) -> None:
        """Add ``queue`` to the set of known queues (again after a reconnect)."""
        if self._registered(queue):
            return
        await self.conn.call(b"SADD", f"{self.prefix}:queues", queue)
        if self.conn.generation != self._known_generation:  # maybe a new server: forget
            self._known = set()
            self._known_generation = self.conn.generation
        self._known.add(queue)

    async def wait(self, queues: Sequence[str], max_wait: float) -> None:
        """Block on the queues' notify lists (BLPOP) on a connection of its own."""
        keys = [self._key(q, "notify") for q in queues]
        if isinstance(self._conn, ClientCalls):
            await self._wait_routed(self._conn, keys, max_wait)
            return
        conn = self._waiters.pop() if self._waiters else Connection(self._endpoint)
        try:
            await conn.call(b"BLPOP", *keys, f"{max(max_wait, 0.001):.3f}")
        except (ConnectionError, OSError, ReplyError):
            await asyncio.sleep(max_wait)  # the claim that follows reports the failure
        finally:
            if len(self._waiters) < _IDLE_WAITERS and self._conn is not None:
                self._waiters.append(conn)
            else:
                conn.close()

    @staticmethod
    async def _wait_routed(calls: ClientCalls, keys: list[str], max_wait: float) -> None:
        """On a Cluster each queue's notify list lives in its own slot, and a blocking
        BLPOP cannot be cancelled safely through redis-py: take any wake-up without
        blocking, else sleep a short poll (up to ``ROUTED_POLL`` s of added latency)."""
        replies = await calls.pipeline([(b"LPOP", key) for key in keys])
        if not any(r is not None and not isinstance(r, Exception) for r in replies):
            await asyncio.sleep(min(max_wait, ROUTED_POLL))

    # -- producer ---------------------------------------------------------------------

    async def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[bool | str]:
        if not self._registered(queue):
            await self._register(queue)
        keys = self._script_keys(
            queue, "enqueue", ("ready", "scheduled", "seq", "notify", "tenants")
        )
        prefix = self._jobs(queue)
        if any(j.unique_key is not None for j in jobs):
            return await self._enqueue_unique(queue, keys, jobs)
        if len(jobs) == 1:  # task.enqueue(): the common case, kept lean
            j = jobs[0]
            args = [prefix, 1, j.id, j.task, j.data, j.priority, j.max_attempts]
            args += [int(j.delay * 1000), j.tenant or ""]
            return [(await self._run("enqueue", keys, args))[0] == 1]
        argss: list[list[Any]] = []
        for start in range(0, len(jobs), c.MAX_BATCH):  # the script unpacks <= 500 per call
            chunk = jobs[start : start + c.MAX_BATCH]
            args = [prefix, len(chunk)]
            for j in chunk:
                args += [j.id, j.task, j.data, j.priority, j.max_attempts, int(j.delay * 1000)]
                args.append(j.tenant or "")
            argss.append(args)
        return [x == 1 for flags in await self._run_many("enqueue", keys, argss) for x in flags]

    async def _enqueue_unique(
        self, queue: str, keys: Sequence[str], jobs: Sequence[NewJob]
    ) -> list[bool | str]:
        argss: list[list[Any]] = []
        for start in range(0, len(jobs), c.MAX_BATCH):
            chunk = jobs[start : start + c.MAX_BATCH]
            args = [self._jobs(queue), self._key(queue, "unique:"), len(chunk)]
            for j in chunk:
                args += [j.id, j.task, j.data, j.priority, j.max_attempts, int(j.delay * 1000)]
                args += [j.tenant or "", j.unique_key or "", int(j.unique_ttl * 1000)]
            argss.append(args)
        replies = await self._run_many("enqueue_unique", keys, argss)
        return [x == 1 if isinstance(x, int) else _s(x) for flags in replies for x in flags]

    # -- worker -----------------------------------------------------------------------

    async def claim(
        self, queue: str, worker: str, limit: int, lease: float, rate: RateLimit | None = None
    ) -> list[Claimed]:
        names = ("ready", "scheduled", "running", "paused", "seq", "failed", "notify")
        keys = self._script_keys(queue, "claim", (*names, "cancelled", "tenants"))
        after = self._after.get(queue, "")
        args = [self._jobs(queue), worker, limit, int(lease * 1000), _LOST, after, *_rate(rate)]
        flat = await self._run("claim", keys, args)
        if flat[0] != after.encode():
            self._after[queue] = _s(flat[0])
        return [
            Claimed(flat[i].decode(), queue, flat[i + 1], flat[i + 2], flat[i + 3])
            for i in range(1, len(flat), 4)
        ]

    async def heartbeat(
        self, queue: str, worker: str, leases: Sequence[Lease], lease: float
    ) -> Beat:
        args: list[Any] = [self._jobs(queue), worker, int(lease * 1000)]
        for job_id, attempt in leases:
            args += [job_id, attempt]
        lost, cancel = await self._run("heartbeat", [self._key(queue, "running")], args)
        return Beat([_s(x) for x in lost], [_s(x) for x in cancel])

    async def finish(self, queue: str, worker: str, outcomes: Sequence[Outcome]) -> list[bool]:
        args: list[Any] = [self._jobs(queue), worker, len(outcomes)]
        for o in outcomes:
            text = o.result if o.state == c.SUCCEEDED else o.error
            args += [o.id, o.attempt, o.state, text or b"", o.traceback or "", int(o.delay * 1000)]
        names = ("running", "scheduled", "succeeded", "failed", "cancelled")
        keys = self._script_keys(queue, "finish", names)
        return [x == 1 for x in await self._run("finish", keys, args)]

    async def release(self, queue: str, worker: str, leases: Sequence[Lease]) -> int:
        args: list[Any] = [self._jobs(queue), worker]
        for job_id, attempt in leases:
            args += [job_id, attempt]
        keys = [self._key(queue, n) for n in ("running", "ready", "seq", "cancelled", "tenants")]
        return int(await self._run("release", keys, args))

    async def set_progress(
        self, queue: str, lease: Lease, progress: int, message: str | None
    ) -> bool:
        key = self._jobs(queue) + lease[0]
        return bool(await self._run("progress", [key], [lease[1], progress, message or ""]))

    # -- read API ---------------------------------------------------------------------

    def _record(self, queue: str, job_id: str, h: dict[bytes, bytes]) -> JobRecord:
        return JobRecord(
            id=job_id,
            queue=queue,
            task=_s(h.get(b"task", b"")),
            state=_s(h.get(b"state", b"")),
            data=h.get(b"data", b""),
            priority=int(h.get(b"pri", 0)),
            attempts=int(h.get(b"att", 0)),
            max_attempts=int(h.get(b"max", 1)),
            enqueued_at=_ms(h.get(b"enq")),
            run_at=_ms(h.get(b"run")),
            started_at=_ms(h.get(b"start")),
            finished_at=_ms(h.get(b"fin")),
            worker=_s(h[b"worker"]) if h.get(b"worker") else None,
            progress=int(h.get(b"prog", 0)),
            progress_message=_s(h[b"pmsg"]) if h.get(b"pmsg") else None,
            result=h.get(b"result") or None,
            error=_s(h[b"err"]) if h.get(b"err") else None,
            traceback=_s(h[b"tb"]) if h.get(b"tb") else None,
            cancel_requested=h.get(b"cancel") == b"1",
            tenant=_s(h.get(b"ten", b"")),
        )

    async def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        names = [queue] if queue is not None else await self.queues()
        async with self.r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self._jobs(name) + job_id)
            found = await pipe.execute()
        for name, h in zip(names, found, strict=True):
            if h:
                return self._record(name, job_id, h)
        return None

    async def list(
        self, queue: str, state: str, *, limit: int = 50, offset: int = 0
    ) -> list[JobRecord]:
        key = self._key(queue, _STATE_ZSET[state])
        stop = offset + limit - 1
        if state == c.QUEUED:
            ids = await self._ready_ids(queue, offset, limit)
        elif state in c.FINAL_STATES:
            ids = await self.r.zrevrange(key, offset, stop)
        else:
            ids = await self.r.zrange(key, offset, stop)
        async with self.r.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self._jobs(queue) + _s(job_id))
            found = await pipe.execute()
        return [self._record(queue, _s(i), h) for i, h in zip(ids, found, strict=True) if h]

    async def _ready_zsets(self, queue: str) -> builtins.list[str]:
        """The zsets of a queue's ready jobs: no tenant, then one per tenant."""
        tenants = sorted(_s(t) for t in await self.r.smembers(self._key(queue, "tenants")))
        return [self._key(queue, "ready"), *(self._key(queue, f"rt:{t}") for t in tenants)]

    async def _ready_ids(self, queue: str, offset: int, limit: int) -> builtins.list[Any]:
        """Ready ids in claim order by priority (tenants merged), for the read API."""
        zsets = await self._ready_zsets(queue)
        async with self.r.pipeline(transaction=False) as pipe:
            for zset in zsets:
                pipe.zrange(zset, 0, offset + limit - 1, withscores=True)
            found = await pipe.execute()
        merged = sorted((score, _s(i)) for part in found for i, score in part)
        return [i for _, i in merged[offset : offset + limit]]

    async def counts(self) -> dict[str, dict[str, int]]:
        names = await self.queues()
        zsets = {name: await self._ready_zsets(name) for name in names}
        async with self.r.pipeline(transaction=False) as pipe:
            for name in names:
                for state in c.STATES:
                    if state == c.QUEUED:
                        for zset in zsets[name]:
                            pipe.zcard(zset)
                    else:
                        pipe.zcard(self._key(name, _STATE_ZSET[state]))
            cards = iter(await pipe.execute())
        out: dict[str, dict[str, int]] = {}
        for name in names:
            row = out[name] = {}
            for state in c.STATES:
                parts = len(zsets[name]) if state == c.QUEUED else 1
                row[state] = sum(int(next(cards)) for _ in range(parts))
        return out

    async def queues(self) -> builtins.list[str]:
        return sorted(_s(q) for q in await self.r.smembers(f"{self.prefix}:queues"))

    # -- management -------------------------------------------------------------------

    async def retry(self, queue: str, ids: Sequence[str] | None) -> int:
        keys = [self._key(queue, n) for n in ("failed", "cancelled", "ready", "seq", "tenants")]
        if ids is not None:
            return int(await self._run("retry", keys, [self._jobs(queue), "ids", *ids]))
        total = 0
        while True:
            n = int(await self._run("retry", keys, [self._jobs(queue), "all", 1000]))
            total += n
            if n < 1000:
                return total

    async def cancel(self, queue: str, job_id: str) -> bool:
        keys = [self._key(queue, n) for n in ("ready", "scheduled", "cancelled")]
        return bool(await self._run("cancel", keys, [self._jobs(queue), job_id]))

    async def delete(self, queue: str, job_id: str) -> bool:
        keys = [self._key(queue, n) for n in _ZSETS]
        return bool(await self._run("delete", keys, [self._jobs(queue), job_id]))

    async def pause(self, queue: str) -> None:
        await self._register(queue)
        await self.r.set(self._key(queue, "paused"), 1)

    async def resume(self, queue: str) -> None:
        await self.r.delete(self._key(queue, "paused"))

    async def paused(self) -> set[str]:
        names = await self.queues()
        async with self.r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(self._key(name, "paused"))
            flags = await pipe.execute()
        return {name for name, flag in zip(names, flags, strict=True) if flag}

    async def clean(
        self, queue: str, state: str, *, keep: int | None = None, older_than: float | None = None
    ) -> int:
        if state not in c.FINAL_STATES:
            return 0
        keep_arg = -1 if keep is None else keep
        age_arg = -1 if older_than is None else int(older_than * 1000)
        args = [self._jobs(queue), keep_arg, age_arg, _CLEAN_LIMIT]
        total = 0
        while True:
            n = int(await self._run("clean", [self._key(queue, state)], args))
            total += n
            if n < _CLEAN_LIMIT:
                return total
