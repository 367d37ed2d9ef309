"""The flags' Prometheus metrics (created by ``Flags.register_metrics``).

Evaluations are counted per ``(flag, reason)`` in a plain dict on the hot path and folded
into a counter (see :mod:`headway.observe.totals`). Flags are operator-defined, so the
flag key is a label; the first ``MAX_FLAGS`` (500) keys evaluated are kept, later ones
(typos, probing of the evaluation API) are counted as "other". The snapshot gauges are
per process: ``livemin`` of the version shows the process that lags most, ``livemax``
of the age the one whose snapshot was confirmed longest ago.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from headway.observe.totals import Totals

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from headway.flags.core import Flags


class FlagMetrics:
    def __init__(self, registry: CollectorRegistry, flags: Flags) -> None:
        from prometheus_client import Counter, Gauge

        self.evaluations = Counter(
            "headway_flags_evaluations_total",
            "Flag evaluations per flag and reason (DEFAULT, SPLIT, TARGETING_MATCH...).",
            ["flag", "reason"],
            registry=registry,
        )
        self.store_errors = Counter(
            "headway_flags_store_errors_total",
            "Polls of the flag store that failed (the last snapshot kept serving).",
            registry=registry,
        )
        self.version = Gauge(
            "headway_flags_snapshot_version",
            "Store version of the in-process snapshot (lowest of the live processes).",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.age = Gauge(
            "headway_flags_snapshot_age_seconds",
            "Seconds since the snapshot was last confirmed current against the store.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.defined = Gauge(
            "headway_flags_defined",
            "Flags in the snapshot (global and per-tenant definitions).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.flags = flags
        self.totals = Totals(self.fold)

    def fold(self) -> None:
        add, f = self.totals.add, self.flags
        for (key, reason), n in list(f.evaluations.items()):
            add((key, reason), self.evaluations, (key, reason), n)
        add("store_errors", self.store_errors, (), f.store_errors)
        self.version.set(f.version)
        self.age.set(max(0.0, time.monotonic() - f.checked_at))
        self.defined.set(len(f.snapshot))
