"""``postgresql://``: LISTEN/NOTIFY for the live feed, a table for history.

One statement per publish (``_PUBLISH``) takes the channel's next seq under its row lock,
appends to ``headway_event_log``, trims it by count and age and calls ``pg_notify`` — in
one transaction, so notifications arrive in commit order and only for committed rows.
NOTIFY payloads are limited to 8000 bytes: a message whose notification would be larger
is sent as a pointer (``!`` + header) and listeners read its data from the log table.

The feed's NOTIFY channel is ``hw_events_<current schema>``, so that applications (and
tests) in separate schemas of one database do not hear each other. Listening holds one
connection of the hub's shared engine for as long as the hub runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from headway.events.base import EventBackend, Message, Offset, Replay, missed_since

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from headway.connections import Connections
    from headway.events.settings import EventsSettings

log = logging.getLogger("headway.events")
NOTIFY_LIMIT = 7900  # bytes; PostgreSQL refuses notifications of 8000 bytes and more
_DDL = (Path(__file__).parent / "sql" / "postgres.sql").read_text()

_PUBLISH = text("""
WITH p AS (
    SELECT CAST(:ch AS text) AS ch, CAST(:ev AS text) AS ev, CAST(:data AS text) AS data,
        CAST(:keep AS boolean) AS keep, CAST(:size AS bigint) AS size,
        CAST(:ttl AS double precision) AS ttl, CAST(:limit AS integer) AS lim
), c AS (
    INSERT INTO headway_event_channels AS ch (channel, epoch, seq)
    SELECT p.ch, CAST(:epoch AS text), 1 FROM p
    ON CONFLICT (channel) DO UPDATE SET seq = ch.seq + 1, touched_at = now()
    RETURNING epoch, seq, clock_timestamp() AS ts
), l AS (
    INSERT INTO headway_event_log (channel, seq, event, data, created_at)
    SELECT p.ch, c.seq, p.ev, p.data, c.ts FROM c, p
    WHERE p.keep OR octet_length(p.data) > p.lim
), d AS (
    DELETE FROM headway_event_log USING c, p
    WHERE channel = p.ch AND (headway_event_log.seq <= c.seq - greatest(p.size, 1)
        OR created_at < c.ts - make_interval(secs => p.ttl))
), h AS (
    SELECT epoch, seq, (extract(epoch FROM ts) * 1000)::bigint AS ms, p.data, p.lim,
        p.ch || '|' || epoch || '|' || seq || '|' || (extract(epoch FROM ts) * 1000)::bigint
        || '|' || p.ev AS header
    FROM c, p
)
SELECT epoch, seq, ms, pg_notify(CAST(:feed AS text),
    CASE WHEN octet_length(header) + octet_length(data) < lim
    THEN header || chr(10) || data ELSE '!' || header END)
FROM h
""")
_HEAD = text("SELECT epoch, seq FROM headway_event_channels WHERE channel = :ch")
_LOG = text("""
SELECT seq, event, data, (extract(epoch FROM created_at) * 1000)::bigint FROM headway_event_log
WHERE channel = CAST(:ch AS text) AND seq <= CAST(:head AS bigint)
    AND seq > CAST(:head AS bigint) - CAST(:size AS bigint)
    AND created_at >= clock_timestamp() - make_interval(secs => CAST(:ttl AS double precision))
ORDER BY seq
""")
# Every CLEAN_EVERY seconds a publishing process drops what no publish trims: history of
# channels that went quiet, and the offset state of channels idle for STATE_TTL.
CLEAN_EVERY, STATE_TTL = 60.0, 86_400.0
_CLEAN_LOG = text(
    "DELETE FROM headway_event_log "
    "WHERE created_at < now() - make_interval(secs => CAST(:ttl AS double precision))"
)
_CLEAN_STATE = text(
    "DELETE FROM headway_event_channels "
    "WHERE touched_at < now() - make_interval(secs => CAST(:ttl AS double precision))"
)
_ONE = text("SELECT data FROM headway_event_log WHERE channel = :ch AND seq = :seq")


class PostgresEventBackend(EventBackend):
    def __init__(self, url: str, connections: Connections | None, settings: EventsSettings) -> None:
        super().__init__(url, connections, settings)
        self.feed = ""
        self.listener_pid: int | None = None  # server pid of the LISTEN connection
        self._cleaned = time.monotonic()
        self._own: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self.connections is not None:
            return self.connections.engine(self.url)
        if self._own is None:
            from headway.connections.postgres import make_engine
            from headway.settings import Settings

            self._own = make_engine(self.url, Settings())
        return self._own

    async def open(self) -> None:
        if self.feed:
            return
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('headway_events'))"))
            for statement in _DDL.split(";"):
                if statement.strip(" \n-"):
                    await conn.exec_driver_sql(statement)
            schema = (await conn.execute(text("SELECT current_schema()"))).scalar_one()
        self.feed = f"hw_events_{schema}"[:63]

    async def close(self) -> None:
        own, self._own = self._own, None
        if own is not None:
            await own.dispose()

    async def publish(self, channel: str, event: str, data: bytes) -> Message:
        await self.open()
        params = {
            "ch": channel, "ev": event, "data": data.decode(), "epoch": os.urandom(4).hex(),
            "keep": self.history_size > 0, "size": self.history_size,
            "ttl": float(self.history_ttl), "limit": NOTIFY_LIMIT, "feed": self.feed,
        }  # fmt: skip
        async with self.engine.begin() as conn:
            epoch, seq, ms, _ = (await conn.execute(_PUBLISH, params)).one()
        if time.monotonic() - self._cleaned > CLEAN_EVERY:
            await self.clean()
        return Message(channel, Offset(epoch, int(seq)), event, data, int(ms) / 1000)

    async def clean(self) -> None:
        """Drop expired history and long-idle channel state (every backend's TTLs)."""
        self._cleaned = time.monotonic()
        async with self.engine.begin() as conn:
            await conn.execute(_CLEAN_LOG, {"ttl": float(self.history_ttl)})
            await conn.execute(_CLEAN_STATE, {"ttl": max(STATE_TTL, self.history_ttl)})

    async def listen(
        self, on_message: Callable[[Message], None], on_ready: Callable[[], None]
    ) -> None:
        await self.open()
        pause = 0.1

        def ready() -> None:
            nonlocal pause
            pause = 0.1
            on_ready()

        while True:
            try:
                await self._listen_once(on_message, ready)
            except (OSError, ConnectionError, TimeoutError) as exc:
                log.warning("events feed lost (%s); reconnecting in %.1f s", exc, pause)
            except Exception as exc:
                if "Connection" not in type(exc).__name__ and "Interface" not in type(exc).__name__:
                    raise
                log.warning("events feed lost (%s); reconnecting in %.1f s", exc, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def _listen_once(
        self, on_message: Callable[[Message], None], on_ready: Callable[[], None]
    ) -> None:
        def notified(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            if payload.startswith("!"):
                task = asyncio.ensure_future(self._fetch(payload[1:], on_message))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
                return
            try:
                header, _, data = payload.partition("\n")
                on_message(_message(header, data.encode()))
            except ValueError:
                log.warning("ignored a malformed notification on %s", self.feed)

        self._pending: set[asyncio.Future[None]] = set()
        closed = asyncio.Event()
        async with self.engine.connect() as conn:
            try:
                await self._listen_on(conn, closed, notified, on_ready)
            except BaseException:
                await conn.invalidate()  # never hand a broken connection back to the pool
                raise

    async def _listen_on(
        self,
        conn: AsyncConnection,
        closed: asyncio.Event,
        notified: Callable[..., None],
        on_ready: Callable[[], None],
    ) -> None:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        raw.add_termination_listener(lambda _conn: closed.set())
        await raw.add_listener(self.feed, notified)
        self.listener_pid = raw.get_server_pid()
        try:
            on_ready()
            while True:  # a lost connection: the termination callback, or a failing query
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):
                        await closed.wait()
                await raw.execute("SELECT 1")
        finally:
            if not raw.is_closed():
                await raw.remove_listener(self.feed, notified)

    async def _fetch(self, header: str, on_message: Callable[[Message], None]) -> None:
        try:
            msg = _message(header, b"")
            async with self.engine.connect() as conn:
                params = {"ch": msg.channel, "seq": msg.offset.seq}
                data = (await conn.execute(_ONE, params)).scalar()
        except Exception:
            log.exception("could not read a large event from headway_event_log")
            return
        if data is not None:  # already trimmed: reconnecting clients are told it was lost
            on_message(Message(msg.channel, msg.offset, msg.event, data.encode(), msg.ts))

    async def replay(self, channel: str, after: Offset | None) -> Replay:
        await self.open()
        async with self.engine.connect() as conn:
            row = (await conn.execute(_HEAD, {"ch": channel})).one_or_none()
            head = None if row is None else Offset(row[0], int(row[1]))
            if after is None or head is None:
                return Replay(head, lost=after is not None and missed_since(after, head, None))
            params = {"ch": channel, "head": head.seq, "size": self.history_size,
                      "ttl": float(self.history_ttl)}  # fmt: skip
            rows = (await conn.execute(_LOG, params)).all()
        kept = [Message(channel, Offset(head.epoch, s), e, d.encode(), ms / 1000)
                for s, e, d, ms in rows]  # fmt: skip
        if missed_since(after, head, kept[0].offset.seq if kept else None):
            return Replay(head, lost=True)
        return Replay(head, tuple(m for m in kept if m.offset.seq > after.seq))

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


def _message(header: str, data: bytes) -> Message:
    channel, epoch, seq, ms, event = header.split("|", 4)
    return Message(channel, Offset(epoch, int(seq)), event, data, int(ms) / 1000)
