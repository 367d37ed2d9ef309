"""Pass criteria of a load test, checked on the results once the run is over."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Criteria", "Outcome", "Service", "evaluate"]

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Criteria:
    """The thresholds (the issue's defaults)."""

    p95_ms: float = 200.0
    error_ratio: float = 0.01
    memory_growth_mb: float = 150.0


@dataclass(slots=True)
class Service:
    """What was observed of the service during the run (read from /metrics and
    /health/ready by :class:`headway.loadtest.monitor.Monitor`)."""

    samples: int = 0
    memory_first: float | None = None  # resident bytes, all web processes
    memory_last: float | None = None
    memory_peak: float | None = None
    pool_max: int | None = None  # HEADWAY_POOL_MAX of the service (admin config)
    pool_peak: float = 0.0  # most connections checked out at once (all processes)
    pool_saturated: int = 0  # readiness answers that said the pool was saturated
    pool_checked: bool = False  # the readiness detail (admin token) was readable
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    ok: bool
    value: str
    limit: str


def evaluate(
    results: dict[str, Any],
    service: Service,
    lost: list[int],
    criteria: Criteria,
    *,
    stress: bool = False,
) -> list[Outcome]:
    """Every criterion, in the order they are printed. In ``stress`` the latency and error
    criteria are where the ramp stops, so they are reported for the load held before it."""
    total = results["total"]
    outcomes = [_latency(total, criteria, stress, results), _errors(total, criteria, stress)]
    outcomes += [_pool(service), _memory(service, criteria), _executions(results, lost)]
    return outcomes


def _latency(
    total: dict[str, Any], criteria: Criteria, stress: bool, results: dict[str, Any]
) -> Outcome:
    p95 = float(total["p95_ms"] or 0)
    if stress:
        held = (results.get("stress") or {}).get("held") or {}
        text = f"held {held.get('users', 0)} users / {held.get('rps', 0)} req/s"
        return Outcome("p95 latency (stress: break point)", True, text, f"< {criteria.p95_ms} ms")
    return Outcome("p95 latency", p95 < criteria.p95_ms, f"{p95:.0f} ms", f"< {criteria.p95_ms} ms")


def _errors(total: dict[str, Any], criteria: Criteria, stress: bool) -> Outcome:
    requests = int(total["requests"])
    ratio = int(total["failures"]) / requests if requests else 1.0
    ok = requests > 0 and (stress or ratio < criteria.error_ratio)
    text = f"{ratio:.2%} of {requests}"
    return Outcome("errors", ok, text, f"< {criteria.error_ratio:.0%}")


def _pool(service: Service) -> Outcome:
    limit = "never saturated"
    if service.samples == 0:
        return Outcome("database pool", False, "not measured (no /metrics answer)", limit)
    peak = f"peak {service.pool_peak:.0f} checked out"
    if service.pool_max is not None:
        peak += f" (pool max {service.pool_max} per process)"
    if service.pool_checked:
        ok = service.pool_saturated == 0
        return Outcome("database pool", ok, f"{service.pool_saturated} saturated; {peak}", limit)
    ok = service.pool_max is not None and service.pool_peak < service.pool_max
    return Outcome("database pool", ok, peak, limit)


def _memory(service: Service, criteria: Criteria) -> Outcome:
    limit = f"growth < {criteria.memory_growth_mb:.0f} MB"
    if service.memory_first is None or service.memory_last is None:
        return Outcome("service memory", False, "not measured (no /metrics answer)", limit)
    growth = (service.memory_last - service.memory_first) / MB
    text = f"{service.memory_first / MB:.0f} -> {service.memory_last / MB:.0f} MB ({growth:+.0f})"
    return Outcome("service memory", growth < criteria.memory_growth_mb, text, limit)


def _executions(results: dict[str, Any], lost: list[int]) -> Outcome:
    submitted = int(results["executions"]["submitted"])
    text = f"{submitted - len(lost)}/{submitted} completed, {len(lost)} lost"
    return Outcome("executions completed", submitted > 0 and not lost, text, "0 lost, > 0 run")
