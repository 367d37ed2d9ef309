"""The job system's Prometheus metrics (created by ``Jobs.register_metrics``).

Labels stay bounded: queue and outcome, never a job id, task argument or tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

# Seconds; no-op jobs take microseconds, reports minutes.
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0)


class JobMetrics:
    """Per-process counters fed by workers, and per-queue gauges read from the backend."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.jobs = Gauge(
            "headway_jobs_jobs",
            "Jobs per queue and state (pending = queued + scheduled), read from the backend.",
            ["queue", "state"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.done = Counter(
            "headway_jobs_completed_total",
            "Runs finished by this process's workers: succeeded, failed or retry.",
            ["queue", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "headway_jobs_duration_seconds",
            "Run time of jobs in this process's workers.",
            ["queue"],
            buckets=BUCKETS,
            registry=registry,
        )

    def finished(self, queue: str, outcome: str, seconds: float) -> None:
        self.done.labels(queue, outcome).inc()
        self.duration.labels(queue).observe(seconds)

    def counts(self, counts: dict[str, dict[str, int]]) -> None:
        for queue, states in counts.items():
            pending = states.get("queued", 0) + states.get("scheduled", 0)
            self.jobs.labels(queue, "pending").set(pending)
            for state in ("running", "failed", "succeeded", "cancelled"):
                self.jobs.labels(queue, state).set(states.get(state, 0))
