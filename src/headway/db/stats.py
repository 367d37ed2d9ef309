"""Per-fingerprint statistics in bounded memory: a log-bucket histogram per fingerprint.

Buckets are 10 % wide from 1 µs up (about 220 for 1 µs .. 1000 s, kept sparse), so any
percentile is within 5 % of the exact value and a fingerprint costs at most a few KB
whatever the number of statements.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["BUCKETS_PER_E", "FingerprintStats", "bucket_of", "percentile"]

BUCKETS_PER_E = 1 / math.log(1.1)  # bucket i holds [1.1**i, 1.1**(i+1)) microseconds
_SESSION_KINDS = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "SHOW"})
_WRITES = frozenset(
    {"INSERT", "UPDATE", "DELETE", "MERGE", "WRITE", "CREATE", "DROP", "ALTER", "TRUNCATE", "COPY"}
)


def bucket_of(seconds: float) -> int:
    us = seconds * 1e6
    return int(math.log(us) * BUCKETS_PER_E) if us > 1.0 else 0


def percentile(buckets: dict[int, int], count: int, q: float, lo: float, hi: float) -> float:
    """The ``q`` quantile (0..1) in seconds, clamped to the observed min and max."""
    if count == 0:
        return 0.0
    rank = max(math.ceil(q * count), 1)
    seen = 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= rank:
            mid = math.exp((index + 0.5) / BUCKETS_PER_E) / 1e6 if index else 1e-6
            return min(max(mid, lo), hi)
    return hi


class FingerprintStats:
    """What the monitor knows about one fingerprint (updated on the hot path)."""

    __slots__ = (
        "buckets",
        "count",
        "fingerprint",
        "group",
        "kind",
        "max",
        "metric",
        "min",
        "n_plus_one",
        "rows",
        "sample",
        "sample_params",
        "session",
        "slow",
        "total",
        "writes",
    )

    def __init__(self, fingerprint: str, kind: str, group: str, sample: str, params: Any) -> None:
        self.fingerprint = fingerprint
        self.kind = kind
        self.group = group
        self.sample = sample  # one real statement, for EXPLAIN and index advice
        self.sample_params = params
        self.session = kind in _SESSION_KINDS  # repeats legitimately: never an N+1
        self.writes = kind in _WRITES
        self.count = 0
        self.total = 0.0
        self.rows = 0
        self.min = math.inf
        self.max = 0.0
        self.slow = 0
        self.n_plus_one = 0
        self.buckets: dict[int, int] = {}
        self.metric: Any = None  # the labelled Prometheus histogram child, once registered

    def as_dict(self) -> dict[str, Any]:
        n, b = self.count, self.buckets
        lo, hi = (self.min, self.max) if n else (0.0, 0.0)

        def ms(v: float) -> float:
            return round(v * 1000, 3)

        return {
            "fingerprint": self.fingerprint,
            "kind": self.kind,
            "group": self.group,
            "count": n,
            "total_ms": ms(self.total),
            "mean_ms": ms(self.total / n) if n else 0.0,
            "min_ms": ms(lo),
            "max_ms": ms(hi),
            "p50_ms": ms(percentile(b, n, 0.50, lo, hi)),
            "p95_ms": ms(percentile(b, n, 0.95, lo, hi)),
            "p99_ms": ms(percentile(b, n, 0.99, lo, hi)),
            "rows": self.rows,
            "mean_rows": round(self.rows / n, 2) if n else 0.0,
            "slow": self.slow,
            "n_plus_one": self.n_plus_one,
        }
