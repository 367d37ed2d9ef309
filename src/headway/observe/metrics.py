"""The hub's Prometheus registry, its built-in metrics and the scrape.

One :class:`HubRegistry` per hub. Metric objects (Counter, Gauge, Histogram) created on
it are correct under several worker processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set
(before prometheus_client is imported, as ``headway serve --workers N`` does) their
values live in files that any worker's scrape merges. Custom collectors registered on it
are read by the scraping process only.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from prometheus_client.values import MutexValue

from headway.observe.exposition import OPENMETRICS, TEXT, Format, TextExposition, format_of

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
        # metric objects known never to carry exemplars (OpenMetrics output is cached
        # for those only): the HTTP metrics
        self.no_exemplars: set[Any] = set()
        self._expositions = {
            TEXT: TextExposition(self),
            OPENMETRICS: TextExposition(self, OPENMETRICS, self.no_exemplars.__contains__),
        }

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
        for collector in self.custom:  # this process's pending samples, into its files
            if isinstance(collector, _Flush):
                collector.flush()
        _forget_dead_workers(path)
        merged = MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]
        return _MergedView(merged, self.custom)

    def expose(self, accept: str = "") -> tuple[bytes, str]:
        """The scrape body and its content type (OpenMetrics when ``accept`` asks)."""
        encoder, content_type = choose_encoder(accept)
        view = self.scrape_view()
        fmt: Format | None = format_of(encoder)
        if view is self and fmt is not None:  # the common scrapes: cached series
            return self._expositions[fmt].render(), content_type
        return encoder(view), content_type


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

    A request's samples are recorded in one batch per turn of the event loop (and
    before any collection of the registry, so a scrape never misses one): per
    (method, route, status) the three children are resolved once, down to the value
    cells prometheus_client keeps them in, and the batch costs one increment per cell,
    not five per request. The exported samples are the ones ``inc()`` and
    ``observe()`` would produce, in the same order (sums add each value in turn).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        registry.register(_Flush(self.flush))  # first: collected before the metrics
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
        if isinstance(registry, HubRegistry):  # recorded below without exemplars
            registry.no_exemplars.update((self.requests, self.duration, self.size, self.in_flight))
        self._children: dict[tuple[str, str, int], Recorder] = {}
        # (method, route, status) -> (durations, sizes) of the requests not yet recorded
        self._pending: dict[tuple[str, str, int], tuple[list[float], list[int]]] = {}
        self._in_flight = 0  # requests started less those finished, since the last flush
        self._scheduled = False

    def enter(self) -> None:
        """A request starts: in flight until :meth:`leave` (``add_in_flight``, batched)."""
        self._in_flight += 1
        if not self._scheduled:
            self._schedule()

    def leave(self) -> None:
        self._in_flight -= 1
        if not self._scheduled:
            self._schedule()

    def observe(self, method: str, route: str, status: int, seconds: float, size: int) -> None:
        """A request was answered."""
        self._in_flight += 1  # done() counts it out again
        self.done(method, route, status, seconds, size)

    def done(self, method: str, route: str, status: int, seconds: float, size: int) -> None:
        """:meth:`leave` and :meth:`observe` in one call (the middleware's)."""
        self._in_flight -= 1
        batch = self._pending.get((method, route, status))
        if batch is None:
            batch = self._pending[(method, route, status)] = ([], [])
        batch[0].append(seconds)
        batch[1].append(size)
        if not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        self._scheduled = True
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop: now
            self.flush()

    def flush(self) -> None:
        """Record the requests started and answered since the last flush."""
        self._scheduled = False
        if self._in_flight:
            self.add_in_flight(self._in_flight)
            self._in_flight = 0
        pending = self._pending
        if not pending:
            return
        self._pending = {}
        for key, (seconds_list, sizes) in pending.items():
            record = self._children.get(key)
            if record is None:
                record = self._recorder(*key)
                if len(self._children) < 10_000:
                    self._children[key] = record
            record(seconds_list, sizes)

    def _recorder(self, method: str, route: str, status: int) -> Recorder:
        if method not in METHODS:
            method = "OTHER"
        requests = self.requests.labels(method, route, str(status))
        duration, size = self.duration.labels(method, route), self.size.labels(method, route)
        d_cells, s_cells = _cells(duration), _cells(size)
        if d_cells is None or s_cells is None:  # not the prometheus_client we know

            def observe(seconds_list: list[float], sizes: list[int]) -> None:
                for seconds, nbytes in zip(seconds_list, sizes, strict=True):
                    requests.inc()
                    duration.observe(seconds)
                    size.observe(nbytes)

            return observe
        count = _incrementer(requests)
        (d_sum, d_bounds, d_buckets), (s_sum, s_bounds, s_buckets) = d_cells, s_cells

        def record(seconds_list: list[float], sizes: list[int]) -> None:
            # Histogram.observe: the sum, then the first bucket whose bound is >= value
            # (the values are never NaN: a perf_counter difference and a byte count)
            count(len(seconds_list))
            d_sum(seconds_list)
            _count_buckets(d_bounds, d_buckets, seconds_list)
            s_sum(sizes)
            _count_buckets(s_bounds, s_buckets, sizes)

        return record


Recorder = Callable[[list[float], list[int]], None]


class _Flush:
    """Flushes the pending HTTP samples whenever the registry is collected."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self.flush = flush

    def collect(self) -> Iterator[Metric]:
        self.flush()
        return iter(())

    def describe(self) -> Iterator[Metric]:
        return iter(())


def _count_buckets(
    bounds: list[float], buckets: list[Callable[[int], None]], values: Sequence[float]
) -> None:
    if len(values) == 1:
        buckets[bisect_left(bounds, values[0])](1)
        return
    counts: dict[int, int] = {}
    for value in values:
        i = bisect_left(bounds, value)
        counts[i] = counts.get(i, 0) + 1
    for i, n in counts.items():
        buckets[i](n)


def _incrementer(metric: Any) -> Callable[[int], None]:
    """``metric.inc(n)`` (a Counter or Gauge child), straight on its value cell."""
    cell = getattr(metric, "_value", None)
    if callable(getattr(cell, "inc", None)):
        inc: Callable[[int], None] = cell.inc  # type: ignore[union-attr]
        return inc
    return metric.inc  # type: ignore[no-any-return]


def _adder(cell: Any) -> Callable[[Sequence[float]], None]:
    """Adds values to ``cell`` one after the other (as ``inc`` would, in turn): under
    one lock for prometheus_client's in-process value, else one ``inc`` each."""
    if type(cell) is MutexValue and isinstance(getattr(cell, "_value", None), float):

        def add_all(values: Sequence[float]) -> None:
            with cell._lock:
                total = cell._value
                for value in values:
                    total += value
                cell._value = total

        return add_all

    def inc_each(values: Sequence[float]) -> None:
        for value in values:
            cell.inc(value)

    return inc_each


Cells = tuple[Callable[[Sequence[float]], None], list[float], list[Callable[[int], None]]]


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
    return _adder(total), bounds, [b.inc for b in buckets]


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
