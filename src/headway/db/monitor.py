"""The query monitor: SQLAlchemy cursor events -> fingerprint statistics, slow log, N+1.

The hot path (:meth:`QueryMonitor._after`) does one dict lookup for the fingerprint
(cached per statement text), a handful of additions and one contextvar read; everything
else (stack walks, redaction, EXPLAIN) happens only for slow statements and detections.

Scopes: a request (``ScopeMiddleware``) or any block (``with monitor.scope("name")``)
sets a :class:`Scope` in a contextvar; a job of ``headway.jobs`` gets one automatically.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from headway.db.settings import DbSettings
from headway.db.sqltext import fingerprint, group_of, kind_of, redact_params, redact_sql
from headway.db.stats import BUCKETS_PER_E, FingerprintStats
from headway.jobs import job_context as _job_context  # a job is a scope of its own

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from headway.db.metrics import DbMonitorMetrics

__all__ = ["NPlusOneError", "QueryMonitor", "Scope", "caller", "current_scope"]

log = logging.getLogger("headway.db")
_log_e = math.log
_K = BUCKETS_PER_E
_START = "_hw_t0"
MAX_GROUPS = 200


class NPlusOneError(RuntimeError):
    """Raised (``HEADWAY_DB_N_PLUS_ONE_MODE=raise``) when a scope repeats one query N times."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(
            f"N+1 queries: {report['fingerprint']!r} ran {report['count']} times in "
            f"{report['scope']} (called from {report['caller']})"
        )
        self.report = report


@dataclass(slots=True, eq=False)
class Scope:
    """One request or job: how often each fingerprint ran in it, and whether it wrote."""

    name: str
    counts: dict[FingerprintStats, int] = field(default_factory=dict)
    wrote: bool = False
    statements: int = 0
    owner: Any = None  # the job context a job scope belongs to


_SCOPE: ContextVar[Scope | None] = ContextVar("headway_db_scope", default=None)


def current_scope() -> Scope | None:
    """The request/job scope the calling code runs in (None outside any)."""
    scope = _SCOPE.get()
    if scope is None:
        job = _job_context()
        if job is not None:
            return _job_scopes.get(id(job))
    return scope


_job_scopes: dict[int, Scope] = {}

_SKIP = (
    "sqlalchemy",
    "asyncio",
    "greenlet",
    "contextlib",
    "starlette",
    "fastapi",
    "anyio",
    "concurrent",
    "threading",
    "uvicorn",
    "asyncpg",
    "aiosqlite",
    "_pytest",
    "pytest",
    "pluggy",
    "functools",
    "typing",
)


def _is_app(module: str) -> bool:
    if module.startswith("headway"):
        return module.startswith("headway.demo")
    return not module.startswith(_SKIP)


def caller() -> str | None:
    """``file:line`` of the application frame that led to this statement.

    Walks the current stack, then the stacks of the parent greenlets (SQLAlchemy's async
    layer runs the sync engine in a child greenlet of the awaiting coroutine), skipping
    SQLAlchemy, asyncio, driver, framework and headway frames (the reference service in
    ``headway.demo`` counts as application code).
    """
    frame: Any = sys._getframe(1)
    try:
        import greenlet  # type: ignore[import-untyped]

        glet: Any = greenlet.getcurrent()
    except ImportError:  # pragma: no cover
        glet = None
    for _ in range(50):
        while frame is not None:
            if _is_app(frame.f_globals.get("__name__", "")):
                return f"{frame.f_code.co_filename}:{frame.f_lineno}"
            frame = frame.f_back
        glet = glet.parent if glet is not None else None
        if glet is None:
            return None
        frame = glet.gr_frame
    return None


class QueryMonitor:
    """Attaches to engines and keeps the statistics, the slow log and the N+1 reports."""

    def __init__(self, settings: DbSettings | None = None) -> None:
        self.settings = settings or DbSettings()
        self.slow_threshold = self.settings.slow_threshold
        self.n1_threshold = self.settings.n_plus_one_threshold
        self.n1_mode = self.settings.n_plus_one_mode
        self.max_fingerprints = self.settings.max_fingerprints
        self.stats: dict[str, FingerprintStats] = {}
        self.slow_log: deque[dict[str, Any]] = deque(maxlen=self.settings.slow_log_size)
        self.n_plus_one_log: deque[dict[str, Any]] = deque(maxlen=self.settings.n_plus_one_log_size)
        self.evicted = 0
        self.metrics: DbMonitorMetrics | None = None
        self._by_statement: dict[str, FingerprintStats] = {}
        self._engines: dict[int, AsyncEngine] = {}  # id(sync engine) -> async engine
        self._attached: list[AsyncEngine] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._groups: set[str] = set()

    # -- wiring ---------------------------------------------------------------------------

    def attach(self, engine: AsyncEngine) -> None:
        """Listen to ``engine``'s cursor events (idempotent)."""
        sync = engine.sync_engine
        if id(sync) in self._engines:
            return
        self._engines[id(sync)] = engine
        self._attached.append(engine)
        event.listen(sync, "before_cursor_execute", self._before)
        event.listen(sync, "after_cursor_execute", self._after)

    def detach(self) -> None:
        for engine in self._attached:
            sync = engine.sync_engine
            for name, fn in (("before_cursor_execute", self._before),
                             ("after_cursor_execute", self._after)):  # fmt: skip
                if event.contains(sync, name, fn):
                    event.remove(sync, name, fn)
        self._attached.clear()
        self._engines.clear()

    @contextmanager
    def scope(self, name: str) -> Iterator[Scope]:
        """Count statements of the block (a request, a job, a script step) as one scope."""
        scope = Scope(name)
        token = _SCOPE.set(scope)
        try:
            yield scope
        finally:
            _SCOPE.reset(token)

    def reset(self) -> None:
        """Forget every statistic, slow statement and N+1 report."""
        self.stats.clear()
        self._by_statement.clear()
        self.slow_log.clear()
        self.n_plus_one_log.clear()
        self.evicted = 0

    # -- hot path -------------------------------------------------------------------------

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                executemany: bool) -> None:  # fmt: skip
        if context is not None:
            setattr(context, _START, perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any,
               executemany: bool) -> None:  # fmt: skip
        start = getattr(context, _START, None)
        if start is None:
            return
        elapsed = perf_counter() - start
        st = self._by_statement.get(statement)
        if st is None:
            st = self._stats_for(statement, params)
        st.count += 1
        st.total += elapsed
        if elapsed > st.max:
            st.max = elapsed
        if elapsed < st.min:
            st.min = elapsed
        us = elapsed * 1e6
        b = int(_log_e(us) * _K) if us > 1.0 else 0
        buckets = st.buckets
        buckets[b] = buckets.get(b, 0) + 1
        rows = cursor.rowcount
        if rows < 0:
            fetched = getattr(cursor, "_rows", None)
            rows = len(fetched) if fetched is not None else 0
        st.rows += rows
        if st.metric is not None:
            st.metric.observe(elapsed)
        scope = _SCOPE.get()
        if scope is None:
            scope = self._job_scope()
        if scope is not None and not st.session:
            n = scope.counts.get(st, 0) + 1
            scope.counts[st] = n
            if st.writes:
                scope.wrote = True
            if n == self.n1_threshold and self.n1_mode != "off":
                self._n_plus_one(scope, st, n)
        if elapsed >= self.slow_threshold:
            self._slow(conn, st, statement, params, elapsed, context, scope)

    # -- rare paths -----------------------------------------------------------------------

    def _stats_for(self, statement: str, params: Any) -> FingerprintStats:
        fp = fingerprint(statement)
        st = self.stats.get(fp)
        if st is None:
            if len(self.stats) >= self.max_fingerprints:
                self._evict()
            kind = kind_of(statement)
            group = group_of(kind, statement)
            st = FingerprintStats(fp, kind, group, statement, params)
            if self.metrics is not None:
                st.metric = self.metrics.child(self._bounded_group(group))
            self.stats[fp] = st
        if len(self._by_statement) >= 4 * self.max_fingerprints:
            self._by_statement.clear()
        self._by_statement[statement] = st
        return st

    def _bounded_group(self, group: str) -> str:
        if group in self._groups or len(self._groups) < MAX_GROUPS:
            self._groups.add(group)
            return group
        return "other"

    def bind_metrics(self, metrics: DbMonitorMetrics) -> None:
        self.metrics = metrics
        for st in self.stats.values():
            st.metric = metrics.child(self._bounded_group(st.group))

    def _evict(self) -> None:
        """Drop the least costly tenth of the fingerprints (top-N by total time)."""
        ranked = sorted(self.stats.values(), key=lambda s: s.total)
        for st in ranked[: max(len(ranked) // 10, 1)]:
            del self.stats[st.fingerprint]
            self.evicted += 1
        self._by_statement.clear()

    def _job_scope(self) -> Scope | None:
        job = _job_context()
        if job is None:
            return None
        scope = _job_scopes.get(id(job))
        if scope is None or scope.owner is not job:
            if len(_job_scopes) >= 256:
                _job_scopes.pop(next(iter(_job_scopes)))
            name = f"job {getattr(job, 'task', '?')} {getattr(job, 'job_id', '')}".strip()
            scope = _job_scopes[id(job)] = Scope(name, owner=job)
        return scope

    def _n_plus_one(self, scope: Scope, st: FingerprintStats, n: int) -> None:
        st.n_plus_one += 1
        report = {
            "at": time.time(),
            "scope": scope.name,
            "fingerprint": st.fingerprint,
            "group": st.group,
            "count": n,
            "caller": caller(),
        }
        self.n_plus_one_log.append(report)
        if self.metrics is not None:
            self.metrics.n_plus_one.labels(self._bounded_group(st.group)).inc()
        log.warning(
            "N+1 queries: %r ran %d times in %s (from %s)",
            st.fingerprint,
            n,
            scope.name,
            report["caller"],
        )
        if self.n1_mode == "raise":
            raise NPlusOneError(report)

    def _slow(self, conn: Any, st: FingerprintStats, statement: str, params: Any,
              elapsed: float, context: Any, scope: Scope | None) -> None:  # fmt: skip
        st.slow += 1
        executemany = bool(getattr(context, "executemany", False))
        names = getattr(getattr(context, "compiled", None), "positiontup", None)
        entry: dict[str, Any] = {
            "at": time.time(),
            "duration_ms": round(elapsed * 1000, 3),
            "fingerprint": st.fingerprint,
            "kind": st.kind,
            "statement": redact_sql(statement)[:4000],
            "params": redact_params(params, statement, names),
            "caller": caller(),
            "scope": scope.name if scope is not None else None,
            "plan": None,
        }
        self.slow_log.append(entry)
        if self.metrics is not None:
            self.metrics.slow.labels(self._bounded_group(st.group)).inc()
        engine = self._engines.get(id(conn.engine))
        if (
            self.settings.explain_slow
            and engine is not None
            and engine.dialect.name == "postgresql"
            and st.kind == "SELECT"
            and not executemany
        ):
            self._spawn(self._explain_into(engine, entry, statement, params))

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (a sync engine): no plan
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _explain_into(self, engine: AsyncEngine, entry: dict[str, Any], statement: str,
                            params: Any) -> None:  # fmt: skip
        from headway.db.explain import explain_raw

        try:
            entry["plan"] = await explain_raw(
                engine, statement, params, analyze=self.settings.explain_analyze
            )
        except Exception as exc:  # a plan is a bonus: report why there is none
            entry["plan_error"] = f"{type(exc).__name__}: {exc}"[:300]

    async def drain(self) -> None:
        """Wait for pending EXPLAINs (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- reading --------------------------------------------------------------------------

    def top(self, limit: int = 50, order: str = "total") -> list[dict[str, Any]]:
        keys = {
            "total": "total_ms",
            "count": "count",
            "mean": "mean_ms",
            "p95": "p95_ms",
            "p99": "p99_ms",
            "rows": "rows",
        }
        key = keys.get(order, "total_ms")
        rows = [st.as_dict() for st in list(self.stats.values())]
        rows.sort(key=lambda r: r[key], reverse=True)
        return rows[:limit]

    def summary(self) -> dict[str, Any]:
        stats = list(self.stats.values())
        return {
            "statements": sum(s.count for s in stats),
            "total_ms": round(sum(s.total for s in stats) * 1000, 3),
            "fingerprints": len(stats),
            "evicted": self.evicted,
            "slow": len(self.slow_log),
            "n_plus_one": len(self.n_plus_one_log),
            "slow_threshold_s": self.slow_threshold,
            "n_plus_one_threshold": self.n1_threshold,
            "n_plus_one_mode": self.n1_mode,
        }
