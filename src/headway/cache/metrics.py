"""The cache's Prometheus metrics (created by ``Cache.register_metrics``).

Hits, misses, loads and errors are counted by :class:`~headway.cache.stats.Stats` as
plain ints on the hot path and folded into counters (see :mod:`headway.observe.totals`);
load durations go straight into a histogram (a load calls the loader: microseconds of
bookkeeping do not show). Labels: ``level`` (l1, l2), ``namespace`` (the part of a key
before ``:``; the first :data:`MAX_NAMESPACES` seen, the rest as "other"), ``outcome``.

There is no hit-ratio gauge: a ratio computed per process cannot be merged across worker
processes (neither a sum nor the most recent value is the service's ratio), and a
lifetime ratio hides the present. The ratio is PromQL over the counters, as in the
Grafana dashboard::

    # L1: share of all reads answered in process
    sum(rate(headway_cache_hits_total{level="l1"}[5m]))
      / (sum(rate(headway_cache_hits_total[5m])) + sum(rate(headway_cache_misses_total[5m])))
    # L2: share of the reads that reached L2 and found a fresh value
    sum(rate(headway_cache_hits_total{level="l2"}[5m]))
      / (sum(rate(headway_cache_hits_total{level="l2"}[5m]))
         + sum(rate(headway_cache_misses_total[5m])))
    # per namespace: add ``by (namespace)`` to every sum
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from headway.observe.totals import Totals, label_cap

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from headway.cache.stats import Stats

MAX_NAMESPACES = 50
# Seconds; a loader is a query or an HTTP call.
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class CacheMetrics:
    """Counters and the load histogram of one cache, fed from its :class:`Stats`."""

    def __init__(self, registry: CollectorRegistry, stats: Stats) -> None:
        from prometheus_client import Counter, Histogram

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"headway_cache_{name}", doc, labels, registry=registry)

        self.hits = counter(
            "hits_total", "Reads answered by a level (l1, l2).", ("level", "namespace")
        )
        self.misses = counter("misses_total", "Reads that found no fresh value.", ("namespace",))
        self.stale = counter("stale_served_total", "Stale values served.", ("namespace",))
        self.loads = counter("loads_total", "Loader calls.", ("namespace", "outcome"))
        self.load_duration = Histogram(
            "headway_cache_load_duration_seconds",
            "Time a loader took.",
            ["namespace"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.l2_errors = counter("l2_errors_total", "L2 operations that failed (absorbed).")
        self.corrupt = counter("corrupt_values_total", "L2 values that could not be decoded.")
        self.coalesced = counter("coalesced_total", "Callers that awaited another's load.")
        self.stats = stats
        self.totals = Totals(self.fold)
        self._labels: dict[str, str] = {}

    def label(self, namespace: str) -> str:
        return label_cap(self._labels, namespace, MAX_NAMESPACES)

    def observe_load(self, namespace: str, seconds: float) -> None:
        self.load_duration.labels(self.label(namespace)).observe(seconds)

    def fold(self) -> None:
        """Add what the stats counted since the last fold to the counters."""
        add, s = self.totals.add, self.stats
        for ns, c in list(s.namespaces.items()):
            label = (self.label(ns),)
            add((ns, "l1"), self.hits, ("l1", *label), c.l1_hits)
            add((ns, "l2"), self.hits, ("l2", *label), c.l2_hits)
            add((ns, "miss"), self.misses, label, c.misses)
            add((ns, "stale"), self.stale, label, c.stale)
            add((ns, "ok"), self.loads, (*label, "ok"), c.loads - c.load_errors)
            add((ns, "error"), self.loads, (*label, "error"), c.load_errors)
        add("l2_errors", self.l2_errors, (), s.l2_errors)
        add("corrupt", self.corrupt, (), s.corrupt)
        add("coalesced", self.coalesced, (), s.coalesced)
