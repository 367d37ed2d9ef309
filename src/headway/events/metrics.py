"""The events capability's Prometheus metrics (created by ``Events.register_metrics``).

Labels: event name (bounded by the app's event classes), transport, reason and — for
connections only, as asked by operators — tenant (``HEADWAY_EVENTS_TENANT_METRICS=false``
folds it into ``-``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


class EventMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge

        self.connections = Gauge(
            "headway_events_connections",
            "Realtime connections open in this process, per transport and tenant.",
            ["transport", "tenant"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.dispatched = Counter(
            "headway_events_dispatched_total",
            "Events dispatched (after commit when raised in a transaction).",
            ["event"],
            registry=registry,
        )
        self.listener_errors = Counter(
            "headway_events_listener_errors_total",
            "Inline listeners that raised (logged; the other listeners still ran).",
            ["event"],
            registry=registry,
        )
        self.published = Counter(
            "headway_events_published_total",
            "Messages published to realtime channels by this process.",
            registry=registry,
        )
        self.dropped = Counter(
            "headway_events_dropped_clients_total",
            "Clients disconnected by the server, per reason (slow_consumer).",
            ["transport", "reason"],
            registry=registry,
        )
        self.resets = Counter(
            "headway_events_history_resets_total",
            "Reconnecting clients told their history was lost (they reload).",
            registry=registry,
        )
