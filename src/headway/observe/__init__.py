"""Observability: Prometheus metrics, health and readiness, alerts, structured logs.

``hw.install(app)`` always adds it::

    GET /metrics          Prometheus text (OpenMetrics when asked), every worker merged
    GET /health           liveness, no I/O: {"status": "ok"}
    GET /health/ready     readiness: {"status": "ok" | "degraded" | "down"} (503 when down);
                          with the admin token: every check, its latency, uptime, pool

Capabilities contribute their metrics and readiness through the hooks of
:class:`headway.Capability` (``register_metrics``, ``refresh_metrics``,
``check_ready``); this package knows none of them. Settings: ``HEADWAY_OBSERVE_*``
(:class:`ObserveSettings`). Several worker processes: set ``PROMETHEUS_MULTIPROC_DIR``
to an empty directory before the workers start (``headway serve --workers N`` does).
"""

from __future__ import annotations

from headway.capability import Readiness
from headway.observe.alerts import DEFAULT_RULES, AlertEvent, Evaluator
from headway.observe.core import Observe
from headway.observe.health import CheckReport, ReadyReport
from headway.observe.logs import (
    ConsoleFormatter,
    JsonFormatter,
    Redactor,
    bind_request,
    current_request,
)
from headway.observe.metrics import UNMATCHED, HubRegistry
from headway.observe.middleware import ObserveMiddleware, route_template
from headway.observe.notifiers import (
    DiscordNotifier,
    EmailNotifier,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
)
from headway.observe.settings import ObserveSettings, RuleSpec

__all__ = [
    "DEFAULT_RULES",
    "UNMATCHED",
    "AlertEvent",
    "CheckReport",
    "ConsoleFormatter",
    "DiscordNotifier",
    "EmailNotifier",
    "Evaluator",
    "HubRegistry",
    "JsonFormatter",
    "Notifier",
    "Observe",
    "ObserveMiddleware",
    "ObserveSettings",
    "Readiness",
    "ReadyReport",
    "Redactor",
    "RuleSpec",
    "SlackNotifier",
    "WebhookNotifier",
    "bind_request",
    "current_request",
    "route_template",
]
