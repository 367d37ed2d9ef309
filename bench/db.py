"""Overhead of the query monitor per statement (headway.db), with and without the hooks.

    python bench/db.py [--statements 20000] [--rounds 5]

1. End to end: the same SELECT executed ``--statements`` times on an in-memory SQLite
   database through SQLAlchemy (sync core, so that no thread hop of an async driver
   drowns the difference), in alternating rounds with the monitor's hooks attached and
   detached, in the same run; inside a request scope (N+1 counting on) as a web request
   would run, with the Prometheus histogram on.
   Overhead = median(with) - median(without), per statement.
2. The hooks alone: ``before_cursor_execute`` + ``after_cursor_execute`` called directly.

Prints one JSON object; the target is <= 20 µs per statement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text

from headway.db.metrics import DbMonitorMetrics
from headway.db.monitor import QueryMonitor
from headway.db.settings import DbSettings


def run(engine: Any, n: int, monitor: QueryMonitor) -> float:
    stmt = text("SELECT id, name FROM t WHERE id = :id")
    with monitor.scope("bench"), engine.connect() as conn:
        start = time.perf_counter()
        for i in range(n):
            conn.execute(stmt, {"id": i % 100}).fetchall()
        return (time.perf_counter() - start) / n


def hooks_alone(monitor: QueryMonitor, n: int) -> float:
    ctx = SimpleNamespace(executemany=False)
    cursor = SimpleNamespace(rowcount=1)
    stmt = "SELECT id, name FROM t WHERE id = ?"
    before, after = monitor._before, monitor._after
    with monitor.scope("bench"):
        start = time.perf_counter()
        for _ in range(n):
            before(None, cursor, stmt, (1,), ctx, False)
            after(None, cursor, stmt, (1,), ctx, False)
        return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--statements", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (:i, 'x')"), [{"i": i} for i in range(100)])
    monitor = QueryMonitor(DbSettings(n_plus_one_mode="off"))
    monitor.bind_metrics(DbMonitorMetrics(CollectorRegistry()))  # as in a served app
    shim: Any = SimpleNamespace(sync_engine=engine, dialect=engine.dialect)
    run(engine, 2000, monitor)  # warm the statement cache
    with_hooks, without = [], []
    for _ in range(args.rounds):
        without.append(run(engine, args.statements, monitor))
        monitor.attach(shim)
        with_hooks.append(run(engine, args.statements, monitor))
        monitor.detach()
    base, hooked = statistics.median(without), statistics.median(with_hooks)
    alone = statistics.median(hooks_alone(monitor, args.statements) for _ in range(args.rounds))
    print(
        json.dumps(
            {
                "statements_per_round": args.statements,
                "rounds": args.rounds,
                "per_statement_without_us": round(base * 1e6, 2),
                "per_statement_with_us": round(hooked * 1e6, 2),
                "overhead_per_statement_us": round((hooked - base) * 1e6, 2),
                "hooks_alone_us": round(alone * 1e6, 2),
                "target_us": 20,
                "fingerprints": len(monitor.stats),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
