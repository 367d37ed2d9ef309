"""``sqlite:///path.db``: the embedded job store, safe for several worker processes.

It opens its own aiosqlite connection (WAL, ``busy_timeout``) in autocommit mode rather
than the hub's SQLAlchemy engine: every state change is one explicit ``BEGIN IMMEDIATE``
transaction, which takes SQLite's write lock up front, so a claim (promote due jobs, put
back expired leases, take the next N) is atomic across processes without the
``SQLITE_BUSY_SNAPSHOT`` failures a deferred transaction can meet under WAL. Statements
within a process are serialized by one lock, which is what SQLite does anyway. The
file can be the application's database (the default) or its own (``HEADWAY_JOBS_URL``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources
from typing import Any, NamedTuple

import aiosqlite

from headway.connections.sql import sqlite_url
from headway.jobs import constants as c
from headway.jobs.base import JobBackend, Lease
from headway.jobs.models import Beat, Claimed, JobRecord, NewJob, Outcome, RateLimit

_COLUMNS = (
    "id, queue, task, state, data, priority, attempts, max_attempts, enqueued_at, run_at, "
    "started_at, finished_at, worker, progress, progress_message, result, error, traceback, "
    "cancel"
)
_RUNNING = "queue = ? AND id = ? AND attempts = ? AND state = 'running'"
_LOST = "lease expired (worker lost) after the last attempt"


_NEW_COLUMNS = {
    "tenant": "TEXT NOT NULL DEFAULT ''",
    "unique_key": "TEXT",
    "unique_until": "REAL",
    "cancel": "INTEGER NOT NULL DEFAULT 0",
}
_INSERT = (
    "INSERT INTO hw_jobs (queue, id, task, data, state, priority, max_attempts, enqueued_at, "
    "run_at, tenant, unique_key, unique_until) VALUES "
)
_HOLDER = (
    "SELECT id FROM hw_jobs WHERE queue = ? AND unique_key = ? AND "
    "(state IN ('queued', 'scheduled', 'running') OR unique_until > ?) LIMIT 1"
)
# The tenants with ready jobs: a loose index scan (one index probe per tenant).
_TENANTS = (
    "WITH RECURSIVE t(tenant) AS ("
    "SELECT (SELECT min(tenant) FROM hw_jobs WHERE queue = ?1 AND state = 'queued') "
    "UNION ALL SELECT (SELECT min(tenant) FROM hw_jobs WHERE queue = ?1 AND state = 'queued' "
    "AND tenant > t.tenant) FROM t WHERE t.tenant IS NOT NULL) "
    "SELECT tenant FROM t WHERE tenant IS NOT NULL"
)
_BEST = (
    "SELECT id, tenant FROM hw_jobs WHERE queue = ? AND state = 'queued' "
    "ORDER BY priority DESC, run_at, rowid LIMIT ?"
)
_BEST_OF_TENANT = (
    "SELECT id FROM hw_jobs WHERE queue = ? AND state = 'queued' AND tenant = ? "
    "ORDER BY priority DESC, run_at, rowid LIMIT ?"
)
Run = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]


def _record(row: Any) -> JobRecord:
    return JobRecord(*row)


async def _upgrade(db: aiosqlite.Connection) -> None:
    """Add the columns a job file made by an older release lacks."""
    have = {row[1] for row in await db.execute_fetchall("PRAGMA table_info(hw_jobs)")}
    for name, kind in _NEW_COLUMNS.items():
        if name not in have:
            await db.execute(f"ALTER TABLE hw_jobs ADD COLUMN {name} {kind}")
    await db.execute(
        "CREATE INDEX IF NOT EXISTS hw_jobs_unique ON hw_jobs (queue, unique_key) "
        "WHERE unique_key IS NOT NULL"
    )
    await db.execute(
        "CREATE INDEX IF NOT EXISTS hw_jobs_tenant ON hw_jobs (queue, state, tenant, "
        "priority DESC, run_at)"
    )


class _Rate(NamedTuple):
    total: int  # starts the queue's limit leaves
    caps: dict[str, int] | None  # tenant -> starts its limit leaves (absent: all of it)


async def _room(db: aiosqlite.Connection, queue: str, rate: RateLimit | None, now: float) -> _Rate:
    """What the rate limit leaves for this claim: starts of the last period are counted."""
    if rate is None:
        return _Rate(1 << 30, None)
    await db.execute(
        "DELETE FROM hw_job_starts WHERE queue = ? AND at <= ?", (queue, now - rate.period)
    )
    used = dict(
        await _fetch(
            db, "SELECT tenant, COUNT(*) FROM hw_job_starts WHERE queue = ? GROUP BY tenant",
            (queue,),
        )
    )  # fmt: skip
    total = 1 << 30 if rate.starts is None else rate.starts - sum(used.values())
    if rate.per_tenant is None:
        return _Rate(total, None)
    caps = _Caps(rate.per_tenant, {t: rate.per_tenant - n for t, n in used.items()})
    return _Rate(total, caps)


class _Caps(dict[str, int]):
    """Per-tenant room: a tenant absent from the counts has all of it."""

    def __init__(self, full: int, known: dict[str, int]) -> None:
        super().__init__(known)
        self.full = full

    def __missing__(self, key: str) -> int:
        return self.full


async def _fetch(db: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    return list(await db.execute_fetchall(sql, params))


def _row(queue: str, job: NewJob, now: float) -> tuple[Any, ...]:
    state = c.SCHEDULED if job.delay > 0 else c.QUEUED
    until = now + job.unique_ttl if job.unique_key is not None else None
    return (queue, job.id, job.task, job.data, state, job.priority, job.max_attempts, now,
            now + max(job.delay, 0.0), job.tenant or "", job.unique_key, until)  # fmt: skip


async def _insert(run: Run, queue: str, jobs: Sequence[NewJob]) -> list[bool | str]:
    """Store jobs inside the caller's write transaction (see JobBackend.enqueue)."""
    now = time.time()
    await run("INSERT OR IGNORE INTO hw_job_queues (name) VALUES (?)", (queue,))
    if any(j.unique_key is not None for j in jobs):
        return [await _insert_unique(run, queue, job, now) for job in jobs]
    rows, seen = [], set()
    for job in jobs:
        if job.id not in seen:
            seen.add(job.id)
            rows.append(_row(queue, job, now))
    values = ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?)"] * len(rows))
    params = [value for row in rows for value in row]
    found = await run(f"{_INSERT}{values} ON CONFLICT DO NOTHING RETURNING id", params)
    inserted = {row[0] for row in found}
    flags: list[bool | str] = []
    first: set[str] = set()
    for job in jobs:
        flags.append(job.id in inserted and job.id not in first)
        first.add(job.id)
    return flags


async def _insert_unique(run: Run, queue: str, job: NewJob, now: float) -> bool | str:
    if job.unique_key is not None:
        holder = await run(_HOLDER, (queue, job.unique_key, now))
        if holder:
            return str(holder[0][0])
    found = await run(
        f"{_INSERT}(?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING id",
        _row(queue, job, now),
    )
    return bool(found)


async def _session_connection(session: Any, path: str) -> Any:
    """The SQLAlchemy AsyncConnection of ``session``, checked to be on the jobs file."""
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    if isinstance(session, AsyncSession):
        conn = await session.connection()
    elif isinstance(session, AsyncConnection):
        conn = session
    else:
        raise TypeError(
            f"session= takes a SQLAlchemy AsyncSession or AsyncConnection, not {type(session)}"
        )
    url = conn.engine.url
    theirs = url.database or ""
    if not url.drivername.startswith("sqlite") or not _same_file(theirs, path):
        raise ValueError(
            "session= must be a session on the job store's own SQLite file "
            f"({path}); jobs cannot join a transaction of another database"
        )
    return conn


def _same_file(a: str, b: str) -> bool:
    if ":memory:" in (a, b) or not a or not b:
        return False
    return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))


class SQLiteJobBackend(JobBackend):
    transactional = True  # through a session on this very file

    def __init__(self, url: str, connections: object | None = None) -> None:
        super().__init__(url, None)
        self.path = sqlite_url(url).database or ":memory:"
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._after: dict[str, str] = {}  # queue -> the tenant our last claim ended with

    async def open(self) -> None:
        if self._db is not None:
            return
        db = await aiosqlite.connect(self.path, timeout=15, isolation_level=None)
        await db.execute("PRAGMA busy_timeout = 15000")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        schema = resources.files("headway.jobs.backends").joinpath("sql/sqlite.sql").read_text()
        await db.executescript(schema)
        await _upgrade(db)
        self._db = db

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("SQLite job store is not open")
        return self._db

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on error."""
        async with self._lock:
            db = self.db
            try:
                # BEGIN inside the try: a caller cancelled while awaiting it still has
                # the BEGIN run by aiosqlite's thread, so the ROLLBACK below must follow it
                # (statements run in order) or the next transaction would find one open.
                await db.execute("BEGIN IMMEDIATE")
                yield db
            except BaseException:
                with contextlib.suppress(sqlite3.OperationalError):  # BEGIN itself failed
                    await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> builtins.list[Any]:
        async with self._lock:
            return list(await self.db.execute_fetchall(sql, params))

    # -- producer ---------------------------------------------------------------------

    async def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[bool | str]:
        if not jobs:
            return []
        async with self._tx() as db:
            return await _insert(partial(_fetch, db), queue, jobs)

    async def enqueue_in(
        self, session: Any, queue: str, jobs: Sequence[NewJob]
    ) -> list[bool | str]:
        """Through ``session`` (a SQLAlchemy AsyncSession on this very database file)."""
        conn = await _session_connection(session, self.path)

        async def run(sql: str, params: Sequence[Any]) -> builtins.list[Any]:
            result = await conn.exec_driver_sql(sql, tuple(params))
            return list(result.fetchall()) if result.returns_rows else []

        return await _insert(run, queue, jobs) if jobs else []

    # -- worker -----------------------------------------------------------------------

    async def _promote_and_reap(self, db: aiosqlite.Connection, queue: str, now: float) -> None:
        await db.execute(
            "UPDATE hw_jobs SET state = 'queued' "
            "WHERE queue = ? AND state = 'scheduled' AND run_at <= ?",
            (queue, now),
        )
        await db.execute(
            "UPDATE hw_jobs SET state = CASE WHEN cancel THEN 'cancelled' "
            "WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, "
            "error = CASE WHEN NOT cancel AND attempts >= max_attempts THEN ? ELSE error END, "
            "finished_at = CASE WHEN cancel OR attempts >= max_attempts THEN ? END, "
            "run_at = ?, worker = NULL, lease_until = NULL "
            "WHERE queue = ? AND state = 'running' AND lease_until < ?",
            (_LOST, now, now, queue, now),
        )

    async def claim(
        self, queue: str, worker: str, limit: int, lease: float, rate: RateLimit | None = None
    ) -> list[Claimed]:
        async with self._tx() as db:
            now = time.time()
            await self._promote_and_reap(db, queue, now)
            paused = await db.execute_fetchall(
                "SELECT 1 FROM hw_job_queues WHERE name = ? AND paused = 1", (queue,)
            )
            if paused:
                return []
            room = await _room(db, queue, rate, now)
            limit = min(limit, room.total)
            tenants = [r[0] for r in await _fetch(db, _TENANTS, (queue,))] if limit > 0 else []
            if not tenants:
                return []
            if len(tenants) > 1 or room.caps is not None:
                claimed = await self._claim_in_turns(db, queue, tenants, limit, room.caps)
            else:
                claimed = await _fetch(db, _BEST, (queue, limit))
            rows = await _fetch(
                db,
                "UPDATE hw_jobs SET state = 'running', attempts = attempts + 1, worker = ?, "  # noqa: S608
                f"started_at = ?, lease_until = ? WHERE queue = ? AND id IN "
                f"({','.join('?' * len(claimed))}) RETURNING id, data, attempts, max_attempts",
                (worker, now, now + lease, queue, *(r[0] for r in claimed)),
            )
            if rate is not None and claimed:
                await db.executemany(
                    "INSERT INTO hw_job_starts (queue, tenant, at) VALUES (?, ?, ?)",
                    [(queue, r[1], now) for r in claimed],
                )
        by_id = {r[0]: r for r in rows}
        return [Claimed(r[0], queue, *by_id[r[0]][1:]) for r in claimed]

    async def _claim_in_turns(
        self,
        db: aiosqlite.Connection,
        queue: str,
        tenants: list[str],
        limit: int,
        caps: dict[str, int] | None,
    ) -> list[Any]:
        """Each tenant gives up to ceil(limit / tenants) jobs (and no more than its rate
        limit leaves), served in turn after the one served last; what is left of
        ``limit`` is filled in priority order (tenant by tenant under a per-tenant
        limit). Returns (id, tenant) rows in the order to start them."""
        after = self._after.get(queue, "")
        turn = [t for t in tenants if t > after] + [t for t in tenants if t <= after]
        per = -(-limit // len(turn))

        def cap(tenant: str) -> int:
            return limit if caps is None else max(caps[tenant], 0)

        picked: list[tuple[int, int, str, str]] = []
        for pos, tenant in enumerate(turn):
            rows = await _fetch(db, _BEST_OF_TENANT, (queue, tenant, min(per, cap(tenant))))
            picked += [(rank, pos, tenant, r[0]) for rank, r in enumerate(rows)]
        picked = sorted(picked)[:limit]
        if picked:
            self._after[queue] = picked[-1][2]
        out = [(p[3], p[2]) for p in picked]
        if len(out) < limit:
            out += await self._fill(db, queue, turn, limit, out, None if caps is None else cap)
        return out

    async def _fill(
        self,
        db: aiosqlite.Connection,
        queue: str,
        turn: list[str],
        limit: int,
        taken: list[tuple[str, str]],
        cap: Callable[[str], int] | None,
    ) -> list[Any]:
        marks = ",".join("?" * len(taken))
        ids = [t[0] for t in taken]
        if cap is None:
            return await _fetch(
                db,
                "SELECT id, tenant FROM hw_jobs WHERE queue = ? AND state = 'queued' "  # noqa: S608
                f"AND id NOT IN ({marks}) ORDER BY priority DESC, run_at, rowid LIMIT ?",
                (queue, *ids, limit - len(taken)),
            )
        more: list[Any] = []
        for tenant in turn:
            room = min(cap(tenant) - sum(1 for t in taken if t[1] == tenant), limit - len(taken))
            if room > 0:
                more += await _fetch(
                    db,
                    "SELECT id, tenant FROM hw_jobs WHERE queue = ? AND state = 'queued' "  # noqa: S608
                    f"AND tenant = ? AND id NOT IN ({marks}) "
                    "ORDER BY priority DESC, run_at, rowid LIMIT ?",
                    (queue, tenant, *ids, room),
                )
            if len(taken) + len(more) >= limit:
                break
        return more[: limit - len(taken)]

    async def heartbeat(
        self, queue: str, worker: str, leases: Sequence[Lease], lease: float
    ) -> Beat:
        beat = Beat([], [])
        async with self._tx() as db:
            until = time.time() + lease
            for job_id, attempt in leases:
                rows = await _fetch(
                    db,
                    f"UPDATE hw_jobs SET lease_until = ? WHERE {_RUNNING} AND worker = ? "  # noqa: S608
                    "RETURNING cancel",
                    (until, queue, job_id, attempt, worker),
                )
                if not rows:
                    beat.lost.append(job_id)
                elif rows[0][0]:
                    beat.cancel.append(job_id)
        return beat

    async def finish(self, queue: str, worker: str, outcomes: Sequence[Outcome]) -> list[bool]:
        done = []
        async with self._tx() as db:
            now = time.time()
            for o in outcomes:
                where = (queue, o.id, o.attempt, worker)
                if o.state == "retry":
                    sql = (
                        "state = CASE WHEN cancel THEN 'cancelled' ELSE 'scheduled' END, "
                        "finished_at = CASE WHEN cancel THEN ? END, "
                        "run_at = ?, error = ?, traceback = ?"
                    )
                    params: tuple[Any, ...] = (now, now + o.delay, o.error, o.traceback)
                elif o.state == c.SUCCEEDED:
                    sql = "state = 'succeeded', finished_at = ?, result = ?, progress = 100"
                    params = (now, o.result)
                else:
                    state = c.CANCELLED if o.state == c.CANCELLED else c.FAILED
                    sql = f"state = '{state}', finished_at = ?, error = ?, traceback = ?"
                    params = (now, o.error, o.traceback)
                cursor = await db.execute(
                    f"UPDATE hw_jobs SET {sql}, lease_until = NULL "  # noqa: S608
                    f"WHERE {_RUNNING} AND worker = ?",
                    params + where,
                )
                done.append(cursor.rowcount > 0)
        return done

    async def release(self, queue: str, worker: str, leases: Sequence[Lease]) -> int:
        n = 0
        async with self._tx() as db:
            now = time.time()
            for job_id, attempt in leases:
                cursor = await db.execute(
                    "UPDATE hw_jobs SET attempts = attempts - 1, run_at = ?, "  # noqa: S608
                    "state = CASE WHEN cancel THEN 'cancelled' ELSE 'queued' END, "
                    "finished_at = CASE WHEN cancel THEN ? END, "
                    f"worker = NULL, lease_until = NULL WHERE {_RUNNING} AND worker = ?",
                    (now, now, queue, job_id, attempt, worker),
                )
                n += cursor.rowcount
        return n

    async def set_progress(
        self, queue: str, lease: Lease, progress: int, message: str | None
    ) -> bool:
        async with self._tx() as db:
            cursor = await db.execute(
                f"UPDATE hw_jobs SET progress = ?, progress_message = ? WHERE {_RUNNING}",  # noqa: S608
                (progress, message, queue, lease[0], lease[1]),
            )
            return cursor.rowcount > 0

    # -- read API ---------------------------------------------------------------------

    async def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        if queue is None:
            rows = await self._read(
                f"SELECT {_COLUMNS} FROM hw_jobs WHERE id = ? ORDER BY queue LIMIT 1",  # noqa: S608
                (job_id,),
            )
        else:
            rows = await self._read(
                f"SELECT {_COLUMNS} FROM hw_jobs WHERE queue = ? AND id = ?",  # noqa: S608
                (queue, job_id),
            )
        return _record(rows[0]) if rows else None

    async def list(
        self, queue: str, state: str, *, limit: int = 50, offset: int = 0
    ) -> list[JobRecord]:
        order = {
            c.QUEUED: "priority DESC, run_at, rowid",
            c.SCHEDULED: "run_at",
            c.RUNNING: "started_at",
        }.get(state, "finished_at DESC")
        rows = await self._read(
            f"SELECT {_COLUMNS} FROM hw_jobs WHERE queue = ? AND state = ? "  # noqa: S608
            f"ORDER BY {order} LIMIT ? OFFSET ?",
            (queue, state, limit, offset),
        )
        return [_record(r) for r in rows]

    async def counts(self) -> dict[str, dict[str, int]]:
        out = {name: dict.fromkeys(c.STATES, 0) for name in await self.queues()}
        rows = await self._read("SELECT queue, state, COUNT(*) FROM hw_jobs GROUP BY queue, state")
        for queue, state, count in rows:
            out.setdefault(queue, dict.fromkeys(c.STATES, 0))[state] = count
        return out

    async def queues(self) -> builtins.list[str]:
        rows = await self._read("SELECT name FROM hw_job_queues ORDER BY name")
        return [r[0] for r in rows]

    # -- management -------------------------------------------------------------------

    async def retry(self, queue: str, ids: Sequence[str] | None) -> int:
        sql = (
            "UPDATE hw_jobs SET state = 'queued', attempts = 0, run_at = ?, finished_at = NULL, "
            "cancel = 0 "
            "WHERE queue = ? AND state IN ('failed', 'cancelled')"
        )
        async with self._tx() as db:
            now = time.time()
            if ids is None:
                only_failed = sql.replace("IN ('failed', 'cancelled')", "= 'failed'")
                return (await db.execute(only_failed, (now, queue))).rowcount
            n = 0
            for job_id in ids:
                n += (await db.execute(sql + " AND id = ?", (now, queue, job_id))).rowcount
            return n

    async def cancel(self, queue: str, job_id: str) -> bool:
        async with self._tx() as db:
            cursor = await db.execute(
                "UPDATE hw_jobs SET "
                "cancel = CASE WHEN state = 'running' THEN 1 ELSE cancel END, "
                "finished_at = CASE WHEN state = 'running' THEN finished_at ELSE ? END, "
                "state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END "
                "WHERE queue = ? AND id = ? AND state IN ('queued', 'scheduled', 'running')",
                (time.time(), queue, job_id),
            )
            return cursor.rowcount > 0

    async def delete(self, queue: str, job_id: str) -> bool:
        async with self._tx() as db:
            cursor = await db.execute(
                "DELETE FROM hw_jobs WHERE queue = ? AND id = ? AND state != 'running'",
                (queue, job_id),
            )
            return cursor.rowcount > 0

    async def _set_paused(self, queue: str, paused: int) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO hw_job_queues (name, paused) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
                (queue, paused),
            )

    async def pause(self, queue: str) -> None:
        await self._set_paused(queue, 1)

    async def resume(self, queue: str) -> None:
        await self._set_paused(queue, 0)

    async def paused(self) -> set[str]:
        return {r[0] for r in await self._read("SELECT name FROM hw_job_queues WHERE paused = 1")}

    async def clean(
        self, queue: str, state: str, *, keep: int | None = None, older_than: float | None = None
    ) -> int:
        if state not in c.FINAL_STATES:
            return 0
        rules, params = [], []
        if keep is not None:
            rules.append(
                "id NOT IN (SELECT id FROM hw_jobs WHERE queue = ? AND state = ? "
                "ORDER BY finished_at DESC LIMIT ?)"
            )
            params += [queue, state, keep]
        if older_than is not None:
            rules.append("finished_at < ?")
            params.append(time.time() - older_than)
        where = " OR ".join(rules) or "1"
        async with self._tx() as db:
            cursor = await db.execute(
                f"DELETE FROM hw_jobs WHERE queue = ? AND state = ? AND ({where})",  # noqa: S608
                [queue, state, *params],
            )
            return cursor.rowcount
