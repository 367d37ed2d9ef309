"""The middleware's metric shortcut exports what the public prometheus_client API would."""

from __future__ import annotations

import asyncio

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


async def test_batched_samples_are_flushed_before_any_collection() -> None:
    fast_registry, slow_registry = CollectorRegistry(), CollectorRegistry()
    fast, slow = HttpMetrics(fast_registry), HttpMetrics(slow_registry)
    durations = [0.1, 0.2, 0.3, 1e-9, 0.7, 0.005, 12.5, 0.1]  # inexact sums: order matters
    for i, seconds in enumerate(durations * 5):  # one turn of the loop: one batch
        route = "/a" if i % 3 else "/b"
        fast.observe("GET", route, 200, seconds, i * 997)
        slow.requests.labels("GET", route, "200").inc()
        slow.duration.labels("GET", route).observe(seconds)
        slow.size.labels("GET", route).observe(i * 997)
    assert _samples(fast_registry) == _samples(slow_registry)  # collected: flushed first
    fast.observe("GET", "/a", 200, 0.25, 1)
    await asyncio.sleep(0)  # the end of the turn flushes too
    assert fast.requests.labels("GET", "/a", "200")._value.get() == 27


async def test_in_flight_is_batched_but_exact_when_collected() -> None:
    registry = CollectorRegistry()
    http = HttpMetrics(registry)
    for _ in range(3):
        http.enter()
    http.leave()
    assert registry.get_sample_value("http_requests_in_flight") == 2
    http.leave()
    await asyncio.sleep(0)
    assert http.in_flight._value.get() == 1
