"""The hub's Prometheus registry, its built-in metrics and the scrape.

One :class:`HubRegistry` per hub. Metric objects (Counter, Gauge, Histogram) created on
it are correct under several worker processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set
(before prometheus_client is imported, as ``headway serve --workers N`` does) their
values live in files that any worker's scrape merges. Custom collectors registered on it
are read by the scraping process only.
"""

from __future__ import annotations

import os
import resource
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

__all__ = ["HttpMetrics", "HubRegistry", "ProcessMetrics", "multiprocess_dir"]

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SIZE_BUCKETS = (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)


def multiprocess_dir() -> str | None:
    """The multiprocess directory when multiprocess mode is on, else None."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return path if path and os.path.isdir(path) else None


class HubRegistry(CollectorRegistry):
    """A CollectorRegistry that also remembers its custom (non metric-object) collectors."""

    def __init__(self) -> None:
        super().__init__(auto_describe=True)
        self.custom: list[Collector] = []

    def register(self, collector: Collector) -> None:
        super().register(collector)
        if not isinstance(collector, MetricWrapperBase):
            self.custom.append(collector)

    def unregister(self, collector: Collector) -> None:
        super().unregister(collector)
        if collector in self.custom:
            self.custom.remove(collector)

    def scrape_view(self) -> CollectorRegistry:
        """What a scrape reads: this registry, or (multiprocess) every worker's files
        merged plus this process's custom collectors."""
        path = multiprocess_dir()
        if path is None:
            return self
        _forget_dead_workers(path)
        merged = MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]
        return _MergedView(merged, self.custom)

    def expose(self, accept: str = "") -> tuple[bytes, str]:
        """The scrape body and its content type (OpenMetrics when ``accept`` asks)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.scrape_view()), content_type


class _MergedView(CollectorRegistry):
    def __init__(self, merged: MultiProcessCollector, custom: Iterable[Collector]) -> None:
        super().__init__(auto_describe=False)
        self._sources = [merged, *custom]

    def collect(self) -> Iterator[Metric]:
        for source in self._sources:
            yield from source.collect()


def _forget_dead_workers(path: str) -> None:
    """Drop the live-gauge files of worker processes that exited (uvicorn has no hook)."""
    pids: set[int] = set()
    for entry in Path(path).glob("gauge_live*_*.db"):
        tail = entry.stem.rsplit("_", 1)[-1]
        if tail.isdigit():
            pids.add(int(tail))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, owned by someone else
            pass


class HttpMetrics:
    """The HTTP metrics of the middleware.

    Per (method, route, status) the three children are resolved once, down to the value
    cells prometheus_client keeps them in, so that a request costs five increments: the
    exported samples are the ones ``inc()`` and ``observe()`` would produce.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            registry=registry,
        )
        self.size = Histogram(
            "http_response_size_bytes",
            "Size of HTTP response bodies.",
            ["method", "route"],
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "HTTP requests being answered.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.websockets = Gauge(
            "http_websocket_connections",
            "Open WebSocket connections.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.add_in_flight: Callable[[int], None] = _incrementer(self.in_flight)
        self._children: dict[tuple[str, str, int], Callable[[float, int], None]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float, size: int) -> None:
        key = (method, route, status)
        record = self._children.get(key)
        if record is None:
            record = self._recorder(method, route, status)
            if len(self._children) < 10_000:
                self._children[key] = record
        record(seconds, size)

    def _recorder(self, method: str, route: str, status: int) -> Callable[[float, int], None]:
        if method not in METHODS:
            method = "OTHER"
        count = _incrementer(self.requests.labels(method, route, str(status)))
        duration, size = self.duration.labels(method, route), self.size.labels(method, route)
        d_cells, s_cells = _cells(duration), _cells(size)
        if d_cells is None or s_cells is None:  # not the prometheus_client we know

            def observe(seconds: float, nbytes: int) -> None:
                count(1)
                duration.observe(seconds)
                size.observe(nbytes)

            return observe
        (d_sum, d_bounds, d_buckets), (s_sum, s_bounds, s_buckets) = d_cells, s_cells

        def record(seconds: float, nbytes: int) -> None:
            # Histogram.observe: the sum, then the first bucket whose bound is >= value
            # (the values are never NaN: a perf_counter difference and a byte count)
            count(1)
            d_sum(seconds)
            d_buckets[bisect_left(d_bounds, seconds)](1)
            s_sum(nbytes)
            s_buckets[bisect_left(s_bounds, nbytes)](1)

        return record


def _incrementer(metric: Any) -> Callable[[int], None]:
    """``metric.inc(n)`` (a Counter or Gauge child), straight on its value cell."""
    cell = getattr(metric, "_value", None)
    if callable(getattr(cell, "inc", None)):
        inc: Callable[[int], None] = cell.inc  # type: ignore[union-attr]
        return inc
    return metric.inc  # type: ignore[no-any-return]


Cells = tuple[Callable[[float], None], list[float], list[Callable[[int], None]]]


def _cells(histogram: Any) -> Cells | None:
    """The sum cell, the bucket bounds and the bucket cells of a Histogram child."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if not (
        isinstance(bounds, list)
        and isinstance(buckets, list)
        and len(bounds) == len(buckets)
        and bounds
        and bounds[-1] == float("inf")
        and all(callable(getattr(b, "inc", None)) for b in [total, *buckets])
    ):
        return None
    return total.inc, bounds, [b.inc for b in buckets]  # type: ignore[union-attr]


class ProcessMetrics:
    """Memory and CPU of this process, sampled (each worker samples its own)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.memory = Gauge(
            "headway_process_resident_memory_bytes",
            "Resident memory of the web processes.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.cpu = Counter(
            "headway_process_cpu_seconds",
            "CPU time (user + system) of the web processes.",
            registry=registry,
        )
        self.started = time.time()
        self._cpu_seen = 0.0

    def sample(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime
        if cpu > self._cpu_seen:
            self.cpu.inc(cpu - self._cpu_seen)
            self._cpu_seen = cpu
        self.memory.set(_resident_bytes(usage.ru_maxrss))


def _resident_bytes(max_rss_kib: int) -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: peak RSS is the best we have
        return max_rss_kib * 1024
