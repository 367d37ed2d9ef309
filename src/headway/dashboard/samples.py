"""The overview's live figures: a ring buffer of samples taken when a page refreshes.

A sample reads counters that only grow (HTTP requests and their latency histogram from
the hub's metrics registry, cache hits from ``hw.cache.stats()``, finished jobs) and the
queue depths (``hw.jobs.stats()``). A point of a chart is the change between two
consecutive samples, so the figures are per interval (requests/s over the last few
seconds), not since the start of the process. Samples closer than ``min_gap`` seconds
are not taken (many open dashboards cost one sample per interval).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headway.observe.alerts import Snapshot, snapshot

if TYPE_CHECKING:
    from headway.hub import Headway

OWN_ROUTES = "/admin/ui"  # the dashboard's own polling is not traffic


@dataclass(slots=True)
class Sample:
    at: float
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    cache_hits: float = 0.0
    cache_gets: float = 0.0
    jobs_done: dict[str, float] = field(default_factory=dict)  # queue -> finished runs
    pending: dict[str, int] = field(default_factory=dict)  # queue -> queued + scheduled


@dataclass(frozen=True, slots=True)
class Point:
    at: float
    rps: float
    error_rate: float  # percent of requests answered 5xx
    p95_ms: float | None
    hit_ratio: float | None  # percent
    jobs_per_s: float
    pending: int
    jobs_per_s_by_queue: dict[str, float]


def http_figures(snap: Snapshot) -> tuple[float, float, dict[float, float]]:
    """Requests, 5xx answers and the latency buckets, the dashboard's own routes left out."""
    requests = errors = 0.0
    for labels, value in snap.get("http_requests_total", []):
        if labels.get("route", "").startswith(OWN_ROUTES):
            continue
        requests += value
        if labels.get("status", "").startswith("5"):
            errors += value
    buckets: dict[float, float] = {}
    for labels, value in snap.get("http_request_duration_seconds_bucket", []):
        if labels.get("route", "").startswith(OWN_ROUTES):
            continue
        le = float(labels.get("le", "inf"))
        buckets[le] = buckets.get(le, 0.0) + value
    return requests, errors, buckets


def jobs_done(snap: Snapshot) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in snap.get("headway_jobs_completed_total", []):
        if labels.get("outcome") in ("succeeded", "failed"):
            queue = labels.get("queue", "")
            out[queue] = out.get(queue, 0.0) + value
    return out


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The ``q`` quantile (seconds) of cumulative histogram buckets, interpolated."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    low, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if le == float("inf"):
                return low
            inside = count - below
            return low + (le - low) * ((rank - below) / inside if inside else 1.0)
        low, below = le, count
    return low


class Sampler:
    def __init__(self, hw: Headway, size: int = 120, min_gap: float = 1.0) -> None:
        self.hw = hw
        self.samples: deque[Sample] = deque(maxlen=size + 1)
        self.min_gap = min_gap

    async def sample(self) -> None:
        now = time.time()
        if self.samples and now - self.samples[-1].at < self.min_gap:
            return
        s = Sample(at=now)
        observe: Any = self.hw.capability("observe")
        snap = snapshot(observe.registry.scrape_view())
        s.requests, s.errors, s.buckets = http_figures(snap)
        s.jobs_done = jobs_done(snap)
        caps = self.hw.capabilities
        if "cache" in caps:
            stats: dict[str, Any] = self.hw.cache.stats()
            s.cache_hits = float(stats.get("l1_hits", 0) + stats.get("l2_hits", 0))
            s.cache_gets = s.cache_hits + float(stats.get("misses", 0))
        if "jobs" in caps:
            for queue, row in (await self.hw.jobs.stats()).items():
                s.pending[queue] = int(row.get("queued", 0)) + int(row.get("scheduled", 0))
        self.samples.append(s)

    def points(self) -> list[Point]:
        items = list(self.samples)
        return [_point(a, b) for a, b in itertools.pairwise(items)]


def _point(a: Sample, b: Sample) -> Point:
    dt = max(b.at - a.at, 1e-6)
    requests = max(b.requests - a.requests, 0.0)
    errors = max(b.errors - a.errors, 0.0)
    delta = {le: max(v - a.buckets.get(le, 0.0), 0.0) for le, v in b.buckets.items()}
    p95 = quantile(delta, 0.95)
    gets = b.cache_gets - a.cache_gets
    hits = b.cache_hits - a.cache_hits
    by_queue = {q: max(v - a.jobs_done.get(q, 0.0), 0.0) / dt for q, v in b.jobs_done.items()}
    return Point(
        at=b.at,
        rps=requests / dt,
        error_rate=100.0 * errors / requests if requests else 0.0,
        p95_ms=None if p95 is None else p95 * 1000,
        hit_ratio=100.0 * hits / gets if gets > 0 else None,
        jobs_per_s=sum(by_queue.values()),
        pending=sum(b.pending.values()),
        jobs_per_s_by_queue=by_queue,
    )
