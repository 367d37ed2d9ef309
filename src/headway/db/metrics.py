"""Prometheus metrics of the query monitor (pool gauges and per-kind durations are
``headway.observe``'s: see ``headway.observe.db``)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from headway.observe.db import QUERY_BUCKETS

__all__ = ["DbMonitorMetrics"]


class DbMonitorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "headway_db_fingerprint_duration_seconds",
            "Time of SQL statements by fingerprint group (kind + main table).",
            ["group"],
            buckets=QUERY_BUCKETS,
            registry=registry,
        )
        self.slow = Counter(
            "headway_db_slow_queries",
            "Statements over the slow threshold.",
            ["group"],
            registry=registry,
        )
        self.n_plus_one = Counter(
            "headway_db_n_plus_one_detections",
            "Fingerprints repeated N times in one request or job.",
            ["group"],
            registry=registry,
        )
        gauge: Any = {"registry": registry, "multiprocess_mode": "livesum"}
        self.fingerprints = Gauge(
            "headway_db_fingerprints", "Distinct fingerprints tracked.", **gauge
        )
        self.replicas_healthy = Gauge(
            "headway_db_replicas_healthy",
            "Read replicas currently used.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )

    def child(self, group: str) -> Any:
        return self.duration.labels(group)
