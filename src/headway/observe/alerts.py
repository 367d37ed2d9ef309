"""Alert rules evaluated from the in-process metrics, with cooldown and "resolved".

A rule reads one metric of the hub's registry (in multiprocess mode: every worker's,
merged), keeps the samples whose labels match, and reduces them to one number:

- ``value`` / ``max`` / ``min``: the sum / largest / smallest current value;
- ``rate_per_minute``: increase of the sum over the window, per minute (at least one
  minute is assumed, so a burst right after start does not read as a huge rate);
- ``quantile``: the ``quantile`` of a histogram's observations in the window.

Each rule fires once when its condition starts to hold, again every ``cooldown``
seconds while it holds, and sends "resolved" when it stops holding. No data (no
matching sample, or fewer than ``min_count`` observations) counts as not holding.
"""

from __future__ import annotations

import math
import operator
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from prometheus_client import CollectorRegistry

from headway.observe.settings import RuleSpec

__all__ = ["DEFAULT_RULES", "AlertEvent", "AlertState", "Evaluator", "Snapshot", "snapshot"]

Labels = dict[str, str]
Snapshot = dict[str, list[tuple[Labels, float]]]

DEFAULT_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        name="high_latency",
        metric="http_request_duration_seconds",
        over="quantile",
        quantile=0.95,
        op=">",
        threshold=1.0,
        severity="warning",
        min_count=10,
        summary="p95 response time above 1,000 ms",
    ),
    RuleSpec(
        name="error_rate",
        metric="http_requests_total",
        labels={"status": "5.."},
        over="rate_per_minute",
        op=">",
        threshold=10,
        severity="critical",
        summary="more than 10 server errors per minute",
    ),
    RuleSpec(
        name="queue_backlog",
        metric="headway_jobs_jobs",
        labels={"state": "^pending$"},
        over="max",
        op=">",
        threshold=1000,
        severity="warning",
        summary="a job queue holds more than 1,000 jobs",
    ),
    RuleSpec(
        name="database_down",
        metric="headway_check_up",
        labels={"check": "database"},
        over="min",
        op="<",
        threshold=1,
        severity="critical",
        summary="the database is unreachable",
    ),
)

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def snapshot(registry: CollectorRegistry) -> Snapshot:
    """Every sample of ``registry``, by sample name."""
    out: Snapshot = {}
    for family in registry.collect():
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One notification: a rule started firing, fires again, or resolved."""

    rule: str
    status: Literal["firing", "resolved"]
    severity: str
    summary: str
    value: float | None
    threshold: float
    op: str
    started_at: float
    at: float
    repeat: bool = False

    def title(self) -> str:
        tag = "RESOLVED" if self.status == "resolved" else self.severity.upper()
        return f"[{tag}] {self.rule}: {self.summary or self.rule}"

    def text(self) -> str:
        shown = "no data" if self.value is None else f"{self.value:.4g}"
        return f"{self.title()} (value {shown}, threshold {self.op} {self.threshold:g})"

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "status": self.status,
            "severity": self.severity,
            "summary": self.summary,
            "value": self.value,
            "threshold": self.threshold,
            "op": self.op,
            "started_at": _iso(self.started_at),
            "at": _iso(self.at),
            "repeat": self.repeat,
        }


@dataclass(slots=True)
class AlertState:
    rule: RuleSpec
    firing: bool = False
    value: float | None = None
    started_at: float = 0.0
    last_sent: float = 0.0


@dataclass(slots=True)
class Evaluator:
    """Holds the rules' states and the metric history of the window."""

    rules: Iterable[RuleSpec]
    window: float = 300.0
    cooldown: float = 1800.0
    started: float = field(default_factory=time.time)
    states: dict[str, AlertState] = field(init=False)
    history: deque[tuple[float, Snapshot]] = field(init=False)

    def __post_init__(self) -> None:
        self.states = {rule.name: AlertState(rule) for rule in self.rules}
        self.history = deque()

    def add_rule(self, rule: RuleSpec) -> None:
        self.states[rule.name] = AlertState(rule)

    def evaluate(self, snap: Snapshot, now: float | None = None) -> list[AlertEvent]:
        """Compare every rule with ``snap``; return the notifications to send."""
        now = time.time() if now is None else now
        base_t, base = self.history[0] if self.history else (self.started, {})
        events = [
            event
            for state in self.states.values()
            if (event := self._step(state, value_of(state.rule, snap, base, now - base_t), now))
        ]
        self.history.append((now, snap))
        while len(self.history) > 1 and now - self.history[1][0] >= self.window:
            self.history.popleft()
        return events

    def _step(self, state: AlertState, value: float | None, now: float) -> AlertEvent | None:
        rule = state.rule
        state.value = value
        holds = value is not None and _OPS[rule.op](value, rule.threshold)
        if holds and not state.firing:
            state.firing, state.started_at, state.last_sent = True, now, now
            return self._event(state, "firing", now)
        if holds and now - state.last_sent >= self.cooldown:
            state.last_sent = now
            return self._event(state, "firing", now, repeat=True)
        if not holds and state.firing:
            state.firing = False
            return self._event(state, "resolved", now)
        return None

    def _event(
        self,
        state: AlertState,
        status: Literal["firing", "resolved"],
        now: float,
        repeat: bool = False,
    ) -> AlertEvent:
        rule = state.rule
        return AlertEvent(
            rule.name,
            status,
            rule.severity,
            rule.summary,
            state.value,
            rule.threshold,
            rule.op,
            state.started_at,
            now,
            repeat,
        )


def value_of(rule: RuleSpec, now: Snapshot, base: Snapshot, elapsed: float) -> float | None:
    """The number ``rule`` compares with its threshold, or None for no data."""
    if rule.over == "quantile":
        return _quantile(rule, now, base)
    values = _matching(rule, now.get(rule.metric, ()))
    if not values:
        return None
    if rule.over == "max":
        return max(values)
    if rule.over == "min":
        return min(values)
    if rule.over == "value":
        return sum(values)
    before = sum(_matching(rule, base.get(rule.metric, ())))
    increase = sum(values) - before
    if increase < 0:  # a counter reset: count from zero
        increase = sum(values)
    return increase / (max(elapsed, 60.0) / 60.0)


def _matching(rule: RuleSpec, samples: Iterable[tuple[Labels, float]]) -> list[float]:
    import re

    patterns = {k: re.compile(v) for k, v in rule.labels.items()}
    return [
        value
        for labels, value in samples
        if all(p.fullmatch(labels.get(k, "")) for k, p in patterns.items())
    ]


def _buckets(rule: RuleSpec, snap: Snapshot) -> dict[float, float]:
    import re

    patterns = {k: re.compile(v) for k, v in rule.labels.items()}
    out: dict[float, float] = {}
    for labels, value in snap.get(rule.metric + "_bucket", ()):
        if all(p.fullmatch(labels.get(k, "")) for k, p in patterns.items()):
            le = float(labels.get("le", "+Inf"))
            out[le] = out.get(le, 0.0) + value
    return out


def _quantile(rule: RuleSpec, now: Snapshot, base: Snapshot) -> float | None:
    current, before = _buckets(rule, now), _buckets(rule, base)
    if not current:
        return None
    bounds = sorted(current)
    counts = [max(current[b] - before.get(b, 0.0), 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0 or total < rule.min_count:
        return None
    rank = rule.quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # like histogram_quantile: the highest finite bound
            span = count - lower_count
            fraction = (rank - lower_count) / span if span > 0 else 1.0
            return lower_bound + (bound - lower_bound) * fraction
        lower_bound, lower_count = bound, count
    return lower_bound


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
