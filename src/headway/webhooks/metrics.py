"""Prometheus metrics of ``hw.webhooks`` (labels stay bounded: outcome kinds and reasons)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "headway_webhooks_deliveries_total",
            "Delivery attempts by outcome (succeeded, http_error, redirect, gone, timeout, "
            "network_error, unsafe_url).",
            ["outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "headway_webhooks_delivery_seconds",
            "Time from request to answer of delivery attempts.",
            buckets=_BUCKETS,
            registry=registry,
        )
        self.disabled = Counter(
            "headway_webhooks_endpoints_disabled_total",
            "Endpoints disabled, by reason (gone, failures, manual).",
            ["reason"],
            registry=registry,
        )
        self.endpoints = Gauge(
            "headway_webhooks_endpoints",
            "Registered endpoints by state (enabled, disabled).",
            ["state"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.messages = Counter(
            "headway_webhooks_messages_total", "Messages sent to at least one endpoint.",
            registry=registry,
        )  # fmt: skip
