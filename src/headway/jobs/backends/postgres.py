# ruff: noqa: S608  (SQL text holds only the validated schema identifier; values are $n)
"""``postgresql://user@host/db``: the job store on PostgreSQL, for many workers and machines.

asyncpg directly rather than through SQLAlchemy: a claim, an enqueue batch or an ack
batch is one prepared statement with array parameters, and asyncpg's binary protocol
and statement cache keep the per-job Python work small (SQLAlchemy's layer would add a
text() compile and a row conversion per call for nothing we use). The backend keeps a
small pool of its own plus one connection that LISTENs; a caller's SQLAlchemy session
(transactional enqueue) is reached through its asyncpg driver connection.

Everything lives in one schema (``HEADWAY_JOBS_PG_SCHEMA``, default ``headway_jobs``,
or the ``?jobs_schema=`` URL option), created by ``sql/postgres.sql`` at :meth:`open`:
idempotent, under an advisory lock, skipped when ``meta.version`` is current. Claims
and enqueues are the plpgsql functions of that file (one round trip each); claims lock
rows with ``FOR UPDATE SKIP LOCKED``. Times come from the server (``clock_timestamp()``).

Wake-up: an enqueue of ready jobs runs ``pg_notify(<channel>, <queue>)`` in its own
transaction (so a transactional enqueue notifies at its COMMIT); :meth:`wait` returns
when the LISTEN connection hears about a queue it serves. ``?notify=0`` (the setting
``HEADWAY_JOBS_PG_NOTIFY=false``) turns that off: idle workers then poll.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import re
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from headway.jobs import constants as c
from headway.jobs.base import JobBackend, Lease
from headway.jobs.models import Beat, Claimed, JobRecord, NewJob, Outcome, RateLimit

if TYPE_CHECKING:
    from headway.connections import Connections

VERSION = 2
DEFAULT_SCHEMA = "headway_jobs"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_OPTIONS = ("jobs_schema", "schema", "notify")
_CLEAN_LIMIT = 5000  # jobs deleted per statement by clean()
_LOST = "lease expired (worker lost) after the last attempt"
_COLUMNS = (
    "id, queue, task, state, data, priority, attempts, max_attempts, enqueued_at, run_at, "
    "started_at, finished_at, worker, progress, progress_message, result, error, traceback, "
    "cancel"
)
_ASYNC = "(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"
_RUNNING = "j.queue = $1 AND j.id = u.id AND j.attempts = u.att AND j.state = 'running'"
_ORDER = {
    c.QUEUED: "priority DESC, run_at, seq",
    c.SCHEDULED: "run_at, seq",
    c.RUNNING: "started_at, seq",
}


def split_url(url: str) -> tuple[str, str, bool]:
    """``postgresql+asyncpg://h/db?jobs_schema=x&notify=0`` -> (asyncpg DSN, schema, notify)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = dict(query)
    schema = options.get("jobs_schema") or DEFAULT_SCHEMA
    if not _IDENT.fullmatch(schema):
        raise ValueError(f"invalid jobs schema name {schema!r}: use letters, digits and _")
    notify = options.get("notify", "1").lower() not in ("0", "false", "no", "off")
    rest = urlencode([(k, v) for k, v in query if k not in _OPTIONS])
    dsn = urlunsplit(parts._replace(scheme="postgresql", query=rest))
    return dsn, schema, notify


def _record(row: Any) -> JobRecord:
    return JobRecord(*row)


class PostgresJobBackend(JobBackend):
    enqueue_batch = 10 * c.MAX_BATCH  # one statement per batch, whatever its size
    transactional = True

    def __init__(self, url: str, connections: Connections | None = None) -> None:
        super().__init__(url, connections)
        self.dsn, self.schema, self.notify = split_url(url)
        self.channel = f"hw_jobs_{self.schema}"[:63]
        settings = connections.settings if connections is not None else None
        self._timeout = settings.connect_timeout if settings is not None else 10.0
        self._pool_max = min(settings.pool_max, 20) if settings is not None else 10
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._listen_lock = asyncio.Lock()
        self._arrived = asyncio.Event()
        self._watch: set[str] = set()
        self._after: dict[str, str] = {}  # queue -> the tenant our last claim ended with
        self.sql = _statements(f'"{self.schema}"')
        # Custom plans: a generic plan of an ack over unnest($n) hash-joins the whole
        # queue (a 500-job ack took 120 ms instead of 13 ms).
        self._server_settings = {"plan_cache_mode": "force_custom_plan"}
        if "application_name" not in dict(parse_qsl(urlsplit(self.dsn).query)):
            self._server_settings["application_name"] = "headway-jobs"

    # -- connections ------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=self._pool_max,
            timeout=self._timeout,
            server_settings=self._server_settings,
        )
        try:
            async with pool.acquire() as conn:
                await self._migrate(conn)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        """Create or upgrade the schema (idempotent; one process at a time)."""
        if await conn.fetchval("SELECT to_regclass($1)", f'"{self.schema}".meta'):
            version = await conn.fetchval(f'SELECT max(version) FROM "{self.schema}".meta')
            if version is not None and version >= VERSION:
                return
        script = resources.files("headway.jobs.backends").joinpath("sql/postgres.sql")
        ddl = script.read_text().replace("__SCHEMA__", f'"{self.schema}"')
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.channel)
            await conn.execute(ddl)
            await conn.execute(f'DELETE FROM "{self.schema}".meta')
            await conn.execute(f'INSERT INTO "{self.schema}".meta VALUES ({VERSION})')

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), 2)
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 5)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgreSQL job store is not open")
        return self._pool

    # -- wake-up ----------------------------------------------------------------------

    def _heard(self, conn: object, pid: int, channel: str, queue: str) -> None:
        if queue in self._watch:
            self._arrived.set()

    async def _listening(self) -> bool:
        """Make sure the LISTEN connection is up (again after a disconnect)."""
        if self._listener is not None and not self._listener.is_closed():
            return True
        async with self._listen_lock:
            if self._listener is not None and not self._listener.is_closed():
                return True
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=self._timeout, server_settings=self._server_settings
                )
                await conn.add_listener(self.channel, self._heard)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return False
            self._listener = conn
            self._arrived.set()  # jobs may have come while nobody listened: look once
            return True

    async def wait(self, queues: Sequence[str], max_wait: float) -> None:
        """Return at a NOTIFY for one of ``queues`` (or after ``max_wait`` s: polling)."""
        if not self.notify or self._pool is None:
            await asyncio.sleep(max_wait)
            return
        self._watch.update(queues)
        if not await self._listening():
            await asyncio.sleep(max_wait)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), max_wait)
        self._arrived.clear()

    # -- producer ---------------------------------------------------------------------

    def _enqueue_args(self, queue: str, jobs: Sequence[NewJob]) -> list[Any]:
        unique = any(j.unique_key is not None for j in jobs)
        return [
            queue,
            [j.id for j in jobs],
            [j.task for j in jobs],
            [j.data for j in jobs],
            [j.priority for j in jobs],
            [j.max_attempts for j in jobs],
            [j.delay for j in jobs],
            [j.tenant for j in jobs],
            [j.unique_key for j in jobs] if unique else None,
            [j.unique_ttl for j in jobs] if unique else None,
            self.channel if self.notify else "",
        ]

    async def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[bool | str]:
        if not jobs:
            return []
        rows = await self.pool.fetch(self.sql["enqueue"], *self._enqueue_args(queue, jobs))
        return _created(jobs, rows)

    async def enqueue_in(
        self, session: Any, queue: str, jobs: Sequence[NewJob]
    ) -> list[bool | str]:
        """Through the session's connection (SQLAlchemy, so its BEGIN has been sent: a
        statement sent to the asyncpg connection beneath could run outside it)."""
        conn = await _session_connection(session, self)
        args = tuple(self._enqueue_args(queue, jobs))
        rows = (await conn.exec_driver_sql(self.sql["enqueue"], args)).fetchall()
        return _created(jobs, rows)

    # -- worker -----------------------------------------------------------------------

    async def claim(
        self, queue: str, worker: str, limit: int, lease: float, rate: RateLimit | None = None
    ) -> list[Claimed]:
        after = self._after.get(queue, "")
        limits = (None, 1.0, None) if rate is None else (rate.starts, rate.period, rate.per_tenant)
        rows = await self.pool.fetch(
            self.sql["claim"], queue, worker, limit, lease, _LOST, after, *limits
        )
        if not rows:
            return []
        rows = sorted(rows, key=lambda r: r[5])
        self._after[queue] = rows[-1][4]
        return [Claimed(r[0], queue, r[1], r[2], r[3]) for r in rows]

    async def heartbeat(
        self, queue: str, worker: str, leases: Sequence[Lease], lease: float
    ) -> Beat:
        ids = [x[0] for x in leases]
        rows = await self.pool.fetch(
            self.sql["heartbeat"], queue, worker, lease, ids, [x[1] for x in leases]
        )
        held = {r[0] for r in rows}
        return Beat([i for i in ids if i not in held], [r[0] for r in rows if r[1]])

    async def finish(self, queue: str, worker: str, outcomes: Sequence[Outcome]) -> list[bool]:
        rows = await self.pool.fetch(
            self.sql["finish"],
            queue,
            worker,
            [o.id for o in outcomes],
            [o.attempt for o in outcomes],
            [o.state for o in outcomes],
            [o.result for o in outcomes],
            [o.error for o in outcomes],
            [o.traceback for o in outcomes],
            [o.delay for o in outcomes],
        )
        done = {r[0] for r in rows}
        return [o.id in done for o in outcomes]

    async def release(self, queue: str, worker: str, leases: Sequence[Lease]) -> int:
        rows = await self.pool.fetch(
            self.sql["release"],
            queue,
            worker,
            [x[0] for x in leases],
            [x[1] for x in leases],
            self.channel if self.notify else "",
        )
        return len(rows)

    async def set_progress(
        self, queue: str, lease: Lease, progress: int, message: str | None
    ) -> bool:
        row = await self.pool.fetchval(
            self.sql["progress"], queue, lease[0], lease[1], progress, message
        )
        return row is not None

    # -- read API ---------------------------------------------------------------------

    async def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        if queue is None:
            row = await self.pool.fetchrow(self.sql["get_any"], job_id)
        else:
            row = await self.pool.fetchrow(self.sql["get"], queue, job_id)
        return None if row is None else _record(row)

    async def list(
        self, queue: str, state: str, *, limit: int = 50, offset: int = 0
    ) -> list[JobRecord]:
        order = _ORDER.get(state, "finished_at DESC, seq DESC")
        sql = self.sql["list"].replace("__ORDER__", order)
        rows = await self.pool.fetch(sql, queue, state, limit, offset)
        return [_record(r) for r in rows]

    async def counts(self) -> dict[str, dict[str, int]]:
        out = {name: dict.fromkeys(c.STATES, 0) for name in await self.queues()}
        for queue, state, count in await self.pool.fetch(self.sql["counts"]):
            out.setdefault(queue, dict.fromkeys(c.STATES, 0))[state] = count
        return out

    async def queues(self) -> builtins.list[str]:
        return [r[0] for r in await self.pool.fetch(self.sql["queues"])]

    # -- management -------------------------------------------------------------------

    async def retry(self, queue: str, ids: Sequence[str] | None) -> int:
        channel = self.channel if self.notify else ""
        if ids is None:
            rows = await self.pool.fetch(self.sql["retry_all"], queue, channel)
        else:
            rows = await self.pool.fetch(self.sql["retry"], queue, list(ids), channel)
        return len(rows)

    async def cancel(self, queue: str, job_id: str) -> bool:
        return await self.pool.fetchval(self.sql["cancel"], queue, job_id) is not None

    async def delete(self, queue: str, job_id: str) -> bool:
        return await self.pool.fetchval(self.sql["delete"], queue, job_id) is not None

    async def pause(self, queue: str) -> None:
        await self.pool.execute(self.sql["pause"], queue, True, "")

    async def resume(self, queue: str) -> None:
        await self.pool.execute(
            self.sql["pause"], queue, False, self.channel if self.notify else ""
        )

    async def paused(self) -> set[str]:
        return {r[0] for r in await self.pool.fetch(self.sql["paused"])}

    async def clean(
        self, queue: str, state: str, *, keep: int | None = None, older_than: float | None = None
    ) -> int:
        if state not in c.FINAL_STATES:
            return 0
        total: int = 0
        while True:  # in slices: no long transaction, no burst of WAL that stalls the rest
            n = await self.pool.fetchval(
                self.sql["clean"], queue, state, keep, older_than, _CLEAN_LIMIT
            )
            total += int(n)
            if n < _CLEAN_LIMIT:
                return total


def _created(jobs: Sequence[NewJob], rows: Sequence[Any]) -> list[bool | str]:
    """Per job: True when stored, the holder's id when its unique key was taken, else False."""
    stored = {r[0] for r in rows if r[1] is None}
    holders = {r[0]: r[1] for r in rows if r[1] is not None}
    out: list[bool | str] = []
    seen: set[str] = set()
    for job in jobs:
        if job.id in holders:
            out.append(holders[job.id])
        else:
            out.append(job.id in stored and job.id not in seen)
        seen.add(job.id)
    return out


async def _session_connection(session: Any, backend: PostgresJobBackend) -> Any:
    """The SQLAlchemy AsyncConnection of ``session``, checked to be on the jobs database."""
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    if isinstance(session, AsyncSession):
        conn = await session.connection()
    elif isinstance(session, AsyncConnection):
        conn = session
    else:
        raise TypeError(
            f"session= takes a SQLAlchemy AsyncSession or AsyncConnection, not {type(session)}"
        )
    raw = (await conn.get_raw_connection()).driver_connection
    if not isinstance(raw, asyncpg.Connection):
        raise ValueError("session= must be a PostgreSQL (asyncpg) session for this job store")
    if not _same_database(raw, backend):
        raise ValueError(
            "session= must use the database of the job store "
            "(its transaction cannot include another database's job)"
        )
    return conn


def _same_database(raw: asyncpg.Connection, backend: PostgresJobBackend) -> bool:
    """Same database name and port as the job store (asyncpg keeps what it connected to
    in ``_params`` / ``_addr``; when a version does not, the check is left to the
    server, where a missing function of the jobs schema fails the statement)."""
    params, addr = getattr(raw, "_params", None), getattr(raw, "_addr", None)
    if params is None or not hasattr(params, "database"):
        return True
    mine = urlsplit(backend.dsn)
    database = (mine.path or "/").lstrip("/") or (mine.username or "postgres")
    port_ok = not isinstance(addr, tuple) or addr[1] == (mine.port or 5432)
    return bool(params.database == database and port_ok)


def _statements(s: str) -> dict[str, str]:
    """Every statement of the backend, with the quoted schema name ``s`` filled in.

    Acks, heartbeats, releases and progress commit asynchronously (``_ASYNC``): one lost
    in a server crash leaves its job running under a lease that expires, then the job
    runs again -- at-least-once holds without a WAL flush per ack. Enqueues, retries,
    cancels and the rest are synchronous (durable at COMMIT)."""
    now = f"{s}.now_s()"
    return {
        "enqueue": f"SELECT o_id, o_holder FROM {s}.enqueue("
        "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        "claim": f"SELECT * FROM {s}.claim($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        "heartbeat": f"UPDATE {s}.jobs j SET lease_until = {now} + $3 "
        f"FROM unnest($4::text[], $5::int[]) AS u(id, att), {_ASYNC} "
        f"WHERE {_RUNNING} AND j.worker = $2 RETURNING j.id, j.cancel",
        "finish": f"UPDATE {s}.jobs j SET "
        "state = CASE WHEN u.st <> 'retry' THEN u.st "
        "WHEN j.cancel THEN 'cancelled' ELSE 'scheduled' END, "
        "run_at = CASE WHEN u.st = 'retry' THEN n.t + u.delay ELSE j.run_at END, "
        "finished_at = CASE WHEN u.st = 'retry' AND NOT j.cancel THEN NULL ELSE n.t END, "
        "result = CASE WHEN u.st = 'succeeded' THEN u.result ELSE j.result END, "
        "progress = CASE WHEN u.st = 'succeeded' THEN 100 ELSE j.progress END, "
        "error = CASE WHEN u.st = 'succeeded' THEN j.error ELSE u.error END, "
        "traceback = CASE WHEN u.st = 'succeeded' THEN j.traceback ELSE u.tb END, "
        "lease_until = NULL "
        "FROM unnest($3::text[], $4::int[], $5::text[], $6::bytea[], $7::text[], $8::text[], "
        "$9::float8[]) AS u(id, att, st, result, error, tb, delay), "
        f"(SELECT {now} AS t) n, {_ASYNC} "
        f"WHERE {_RUNNING} AND j.worker = $2 RETURNING j.id",
        "release": f"WITH done AS (UPDATE {s}.jobs j SET "
        "state = CASE WHEN j.cancel THEN 'cancelled' ELSE 'queued' END, "
        f"attempts = j.attempts - 1, run_at = {now}, "
        f"finished_at = CASE WHEN j.cancel THEN {now} END, worker = NULL, lease_until = NULL "
        f"FROM unnest($3::text[], $4::int[]) AS u(id, att), {_ASYNC} "
        f"WHERE {_RUNNING} AND j.worker = $2 RETURNING j.id) "
        "SELECT done.id FROM done LEFT JOIN LATERAL (SELECT pg_notify($5, $1) "
        "WHERE $5 <> '' LIMIT 1) x ON true",
        "progress": f"UPDATE {s}.jobs j SET progress = $4, progress_message = $5 FROM {_ASYNC} "
        "WHERE j.queue = $1 AND j.id = $2 AND j.attempts = $3 AND j.state = 'running' "
        "RETURNING 1",
        "get": f"SELECT {_COLUMNS} FROM {s}.jobs WHERE queue = $1 AND id = $2",
        "get_any": f"SELECT {_COLUMNS} FROM {s}.jobs WHERE id = $1 ORDER BY queue LIMIT 1",
        "list": f"SELECT {_COLUMNS} FROM {s}.jobs WHERE queue = $1 AND state = $2 "
        "ORDER BY __ORDER__ LIMIT $3 OFFSET $4",
        "counts": f"SELECT queue, state, count(*) FROM {s}.jobs GROUP BY queue, state",
        "queues": f"SELECT name FROM {s}.queues ORDER BY name",
        "retry_all": f"WITH done AS (UPDATE {s}.jobs SET state = 'queued', attempts = 0, "
        f"run_at = {now}, finished_at = NULL, cancel = false, worker = NULL "
        "WHERE queue = $1 AND state = 'failed' RETURNING id) "
        "SELECT done.id FROM done LEFT JOIN LATERAL (SELECT pg_notify($2, $1) "
        "WHERE $2 <> '' LIMIT 1) x ON true",
        "retry": f"WITH done AS (UPDATE {s}.jobs SET state = 'queued', attempts = 0, "
        f"run_at = {now}, finished_at = NULL, cancel = false, worker = NULL "
        "WHERE queue = $1 AND id = ANY($2::text[]) AND state IN ('failed', 'cancelled') "
        "RETURNING id) SELECT done.id FROM done LEFT JOIN LATERAL "
        "(SELECT pg_notify($3, $1) WHERE $3 <> '' LIMIT 1) x ON true",
        "cancel": f"UPDATE {s}.jobs SET cancel = (state = 'running'), "
        f"finished_at = CASE WHEN state = 'running' THEN finished_at ELSE {now} END, "
        "state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END "
        "WHERE queue = $1 AND id = $2 AND state IN ('queued', 'scheduled', 'running') "
        "RETURNING 1",
        "delete": f"DELETE FROM {s}.jobs WHERE queue = $1 AND id = $2 AND state <> 'running' "
        "RETURNING 1",
        "pause": f"WITH up AS (INSERT INTO {s}.queues (name, paused) VALUES ($1, $2) "
        "ON CONFLICT (name) DO UPDATE SET paused = excluded.paused RETURNING 1) "
        "SELECT pg_notify($3, $1) FROM up WHERE $3 <> ''",
        "paused": f"SELECT name FROM {s}.queues WHERE paused ORDER BY name",
        "clean": f"WITH doomed AS (SELECT id FROM {s}.jobs WHERE queue = $1 AND state = $2 AND ("
        "($3::int IS NULL AND $4::float8 IS NULL) "
        f"OR ($3::int IS NOT NULL AND id NOT IN (SELECT id FROM {s}.jobs "
        "WHERE queue = $1 AND state = $2 ORDER BY finished_at DESC, seq DESC LIMIT $3)) "
        f"OR ($4::float8 IS NOT NULL AND finished_at < {now} - $4)) LIMIT $5), "
        f"gone AS (DELETE FROM {s}.jobs j USING doomed WHERE j.queue = $1 AND j.id = doomed.id "
        "RETURNING 1) SELECT count(*) FROM gone",
    }
