"""The middleware's metric shortcut exports what the public prometheus_client API would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from headway.observe.metrics import HttpMetrics


def test_fast_children_export_what_inc_and_observe_export() -> None:
    fast_registry, slow_registry = CollectorRegistry(), CollectorRegistry()
    fast, slow = HttpMetrics(fast_registry), HttpMetrics(slow_registry)
    cases = [
        ("GET", "/a", 200, 0.0, 0),
        ("GET", "/a", 200, 0.005, 100),  # exactly on bucket bounds
        ("GET", "/a", 404, 0.0051, 101),
        ("POST", "/b/{id}", 500, 12.5, 10_000_001),
        ("BREW", "/a", 418, 0.3, 5),  # unknown methods share "OTHER"
    ]
    for method, route, status, seconds, size in cases * 3:
        fast.observe(method, route, status, seconds, size)
        m = method if method in ("GET", "POST") else "OTHER"
        slow.requests.labels(m, route, str(status)).inc()
        slow.duration.labels(m, route).observe(seconds)
        slow.size.labels(m, route).observe(size)
    fast.add_in_flight(1)
    slow.in_flight.inc()
    assert _samples(fast_registry) == _samples(slow_registry)


def _samples(registry: CollectorRegistry) -> list[str]:
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line]
