"""Counters of one cache in one process: per level and per key namespace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from headway.cache.keys import namespace_of


@dataclass(slots=True)
class Counts:
    l1_hits: int = 0
    l2_hits: int = 0
    misses: int = 0
    stale: int = 0
    loads: int = 0
    load_seconds: float = 0.0
    load_errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        gets = self.l1_hits + self.l2_hits + self.misses
        out["hit_ratio"] = round((self.l1_hits + self.l2_hits) / gets, 4) if gets else 0.0
        out["l1_hit_ratio"] = round(self.l1_hits / gets, 4) if gets else 0.0
        l2_reads = self.l2_hits + self.misses
        out["l2_hit_ratio"] = round(self.l2_hits / l2_reads, 4) if l2_reads else 0.0
        out["load_ms_avg"] = round(1000 * self.load_seconds / self.loads, 3) if self.loads else 0.0
        out["load_seconds"] = round(self.load_seconds, 6)
        return out


@dataclass(slots=True)
class Stats:
    """Totals plus a :class:`Counts` per namespace (the part of a key before ``:``)."""

    total: Counts = field(default_factory=Counts)
    namespaces: dict[str, Counts] = field(default_factory=dict)
    l2_errors: int = 0
    corrupt: int = 0
    coalesced: int = 0
    lock_waits: int = 0
    refreshes: int = 0
    invalidations_received: int = 0
    # set by the metrics (headway.observe): called with (namespace, seconds) per load
    on_load: Callable[[str, float], None] | None = field(default=None, repr=False)
    # key -> the Counts of its namespace (bounded), so that a hit needs no partition
    by_key: dict[str, Counts] = field(default_factory=dict, repr=False)

    def of_key(self, key: str) -> Counts:
        """The :class:`Counts` that a read of ``key`` adds to (memoized per key)."""
        counts = self.by_key.get(key)
        if counts is None:
            if len(self.by_key) >= 10_000:
                self.by_key.clear()
            counts = self.by_key[key] = self.ns(namespace_of(key))
        return counts

    def ns(self, name: str) -> Counts:
        counts = self.namespaces.get(name)
        if counts is None:
            if len(self.namespaces) >= 1000:  # unbounded key shapes: fold the rest
                name = "~other"
            counts = self.namespaces.setdefault(name, Counts())
        return counts

    def l1_hit(self, name: str) -> None:
        self.total.l1_hits += 1
        self.ns(name).l1_hits += 1

    def l2_hit(self, name: str) -> None:
        self.total.l2_hits += 1
        self.ns(name).l2_hits += 1

    def miss(self, name: str) -> None:
        self.total.misses += 1
        self.ns(name).misses += 1

    def stale_served(self, name: str) -> None:
        self.total.stale += 1
        self.ns(name).stale += 1

    def loaded(self, name: str, seconds: float, ok: bool) -> None:
        for counts in (self.total, self.ns(name)):
            counts.loads += 1
            counts.load_seconds += seconds
            counts.load_errors += 0 if ok else 1
        if self.on_load is not None:
            self.on_load(name, seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.total.as_dict(),
            "l2_errors": self.l2_errors,
            "corrupt": self.corrupt,
            "coalesced": self.coalesced,
            "lock_waits": self.lock_waits,
            "refreshes": self.refreshes,
            "invalidations_received": self.invalidations_received,
            "namespaces": {k: v.as_dict() for k, v in sorted(self.namespaces.items())},
        }
