"""Database metrics from the hub's SQLAlchemy engines: pool gauges and query duration.

Pool gauges are updated on the pool's own events (connect, checkout, checkin, close), so
that each worker process keeps its own numbers current and a multiprocess scrape sums
them. Query duration comes from the engine's cursor events, labelled by statement kind.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import event

from headway.settings import mask_url

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["DbMetrics", "pool_stats"]

QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_KINDS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "ROLLBACK"})
_POOL_EVENTS = ("connect", "checkout", "checkin", "close", "invalidate", "detach")


def pool_stats(engine: AsyncEngine) -> dict[str, int]:
    """``{total, idle, active, size, overflow}`` of an engine's pool (0 when unknown)."""
    pool: Any = engine.sync_engine.pool
    idle = _call(pool, "checkedin")
    active = _call(pool, "checkedout")
    return {
        "total": idle + active,
        "idle": idle,
        "active": active,
        "size": _call(pool, "size"),
        "overflow": max(_call(pool, "overflow"), 0),
    }


def _call(pool: Any, name: str) -> int:
    method = getattr(pool, name, None)
    try:
        return int(method()) if callable(method) else 0
    except Exception:  # a pool class without the statistic
        return 0


def db_label(engine: AsyncEngine) -> str:
    """A bounded, password-free label for an engine: ``driver://host/db``."""
    url = engine.url
    return mask_url(f"{url.get_backend_name()}://{url.host or ''}/{url.database or ''}")


class DbMetrics:
    """Instruments engines (once each) and owns the database metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        gauge: Any = {"registry": registry, "multiprocess_mode": "livesum"}
        self.pool_size = Gauge("headway_db_pool_size", "Configured pool size.", ["db"], **gauge)
        self.checked_out = Gauge(
            "headway_db_pool_checked_out", "Connections in use.", ["db"], **gauge
        )
        self.checked_in = Gauge("headway_db_pool_checked_in", "Idle connections.", ["db"], **gauge)
        self.overflow = Gauge(
            "headway_db_pool_overflow", "Connections above the pool size.", ["db"], **gauge
        )
        self.queries = Histogram(
            "headway_db_query_duration_seconds",
            "Time of SQL statements.",
            ["db", "kind"],
            buckets=QUERY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "headway_db_errors", "SQL statements that raised.", ["db"], registry=registry
        )
        self._engines: dict[int, tuple[AsyncEngine, list[tuple[Any, str, Any]], Any]] = {}

    def instrument(self, engines: Any) -> None:
        """Instrument every engine of ``engines`` not seen yet (cheap when none is new)."""
        if len(engines) == len(self._engines):
            return
        for engine in list(engines):
            if id(engine) not in self._engines:
                self._attach(engine)

    def _attach(self, engine: AsyncEngine) -> None:
        label = db_label(engine)
        listeners: list[tuple[Any, str, Any]] = []

        def update(returning: int = 0) -> None:
            stats = pool_stats(engine)
            self.pool_size.labels(label).set(stats["size"])
            self.checked_out.labels(label).set(max(stats["active"] - returning, 0))
            self.checked_in.labels(label).set(stats["idle"] + returning)
            self.overflow.labels(label).set(stats["overflow"])

        def on_event(*_: Any) -> None:
            update()

        def on_checkin(*_: Any) -> None:
            update(returning=1)  # the event fires before the pool takes the connection back

        def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            conn.info.setdefault("headway_query_start", []).append(time.perf_counter())

        def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            starts = conn.info.get("headway_query_start")
            if starts:
                kind = statement.lstrip()[:8].split(None, 1)[0].upper() if statement else ""
                kind = kind if kind in _KINDS else "OTHER"
                self.queries.labels(label, kind).observe(time.perf_counter() - starts.pop())

        def failed(context: Any) -> None:
            starts = (
                context.connection.info.get("headway_query_start") if context.connection else None
            )
            if starts:
                starts.pop()
            self.errors.labels(label).inc()

        pool = engine.sync_engine.pool
        for name in _POOL_EVENTS:
            listeners.append((pool, name, on_checkin if name == "checkin" else on_event))
        sync = engine.sync_engine
        listeners += [
            (sync, "before_cursor_execute", before),
            (sync, "after_cursor_execute", after),
            (sync, "handle_error", failed),
        ]
        for target, name, fn in listeners:
            event.listen(target, name, fn)
        self._engines[id(engine)] = (engine, listeners, update)
        update()

    def sample(self) -> None:
        """Re-read every instrumented pool (each process, every few seconds)."""
        for _, _, update in self._engines.values():
            update()

    def detach(self) -> None:
        """Remove every listener (the hub stops; engines may outlive it)."""
        for _, listeners, _ in self._engines.values():
            for target, name, fn in listeners:
                if event.contains(target, name, fn):
                    event.remove(target, name, fn)
        self._engines.clear()
