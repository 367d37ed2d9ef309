"""Prometheus metrics of the workflow engine (names ``headway_workflows_*``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

_EVENTS = {"started", "completed", "failed", "cancelled", "approval_requested"}


class WorkflowMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "headway_workflows_runs_total",
            "Workflow runs by event (started, completed, failed, cancelled).",
            ["workflow", "event"],
            registry=registry,
        )
        self.approvals = Counter(
            "headway_workflows_approvals_requested_total",
            "Approval requests recorded.",
            ["workflow"],
            registry=registry,
        )
        self.pending = Gauge(
            "headway_workflows_approvals_pending",
            "Approvals waiting for a decision (every tenant).",
            registry=registry,
            multiprocess_mode="mostrecent",
        )

    def event(self, event: str, workflow: str) -> None:
        if event == "approval_requested":
            self.approvals.labels(workflow).inc()
        elif event in _EVENTS:
            self.runs.labels(workflow, event).inc()
