"""Storage's Prometheus metrics (created by ``Storage.register_metrics``).

Labels: ``op`` (upload, download, delete, exists, list, sign) and ``outcome`` (ok, error,
not_found); ``direction`` (in, out) for bytes. Never a tenant, key or file name.
Each operation is I/O-bound (milliseconds), so counters are incremented directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)


class StorageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.ops = Counter(
            "headway_storage_operations_total",
            "Storage operations by outcome.",
            ["op", "outcome"],
            registry=registry,
        )
        self.bytes = Counter(
            "headway_storage_bytes_total",
            "Bytes uploaded (in) and downloaded (out).",
            ["direction"],
            registry=registry,
        )
        self.latency = Histogram(
            "headway_storage_operation_seconds",
            "Time a storage operation took (a download: until its first chunk).",
            ["op"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.stored = Gauge(
            "headway_storage_stored",
            "Files and bytes stored, all tenants (from the stats table).",
            ["unit"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )

    def done(self, op: str, outcome: str, seconds: float) -> None:
        self.ops.labels(op, outcome).inc()
        self.latency.labels(op).observe(seconds)
