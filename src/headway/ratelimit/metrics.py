"""The rate limiter's Prometheus metrics (created by ``RateLimits.register_metrics``).

The check path already counts ``(policy, outcome)`` in ``hw.limits.metrics``; those
per-process totals are folded into the counters (see :mod:`headway.observe.totals`), so
a decision costs no more than before. Labels: ``policy`` (operator-defined; the first
:data:`MAX_POLICIES` seen, the rest as "other") and ``outcome`` (allowed, denied,
fail_open, fail_closed), never a key, tenant or address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from headway.observe.totals import Totals, label_cap

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from headway.ratelimit.core import RateLimits

MAX_POLICIES = 200


class LimitMetrics:
    def __init__(self, registry: CollectorRegistry, limits: RateLimits) -> None:
        from prometheus_client import Counter

        self.decisions = Counter(
            "headway_limits_decisions_total",
            "Rate-limit decisions per policy: allowed, denied, fail_open, fail_closed.",
            ["policy", "outcome"],
            registry=registry,
        )
        self.backend_errors = Counter(
            "headway_limits_backend_errors_total",
            "Checks that found the rate-limit backend unavailable.",
            registry=registry,
        )
        self.limits = limits
        self.totals = Totals(self.fold)
        self._labels: dict[str, str] = {}

    def fold(self) -> None:
        add = self.totals.add
        for (policy, outcome), n in list(self.limits.metrics.counts.items()):
            label = label_cap(self._labels, policy, MAX_POLICIES)
            add((policy, outcome), self.decisions, (label, outcome), n)
        add("backend_errors", self.backend_errors, (), self.limits.backend_errors)
