"""Export a capability's per-process running totals as Prometheus counters.

A hot path (a cache L1 hit, a flag evaluation, a rate-limit decision) bumps a plain int
that the capability keeps anyway; incrementing a prometheus_client child there would
cost a lock and, in multiprocess mode, a write to a mmap file on every call. Instead a
:class:`Totals` adds what each total grew since the last fold to the counter child,
bound once per label tuple:

- before every scrape and alert evaluation (``refresh_metrics``, the scraping process);
- every :data:`EVERY` seconds in each process (its own task), so that with several
  worker processes the merged counters lag by at most that long;
- once more when the capability stops.

The exported values are the ones ``inc()`` on the hot path would have produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["EVERY", "Totals", "label_cap"]

EVERY = 1.0
OTHER = "other"
log = logging.getLogger("headway.observe")


def label_cap(seen: dict[str, str], value: str, limit: int) -> str:
    """``value`` as a label: itself for the first ``limit`` distinct values, then "other"."""
    label = seen.get(value)
    if label is None:
        if len(seen) >= limit:  # not remembered: ``seen`` stays bounded too
            return OTHER
        label = seen[value] = value
    return label


class Totals:
    """Folds running totals into counters; :meth:`start` runs the per-process fold."""

    def __init__(self, fold: Callable[[], None], every: float = EVERY) -> None:
        self.fold = fold
        self.every = every
        self._cells: dict[tuple[int, tuple[str, ...]], Callable[[float], None]] = {}
        self._seen: dict[Hashable, float] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, source: Hashable, metric: Any, labels: tuple[str, ...], total: float) -> None:
        """Grow ``metric{labels}`` by what ``total`` (identified by ``source``) gained.

        Several sources may share one label tuple (values folded into "other"): each
        source's growth is added once.
        """
        grown = total - self._seen.get(source, 0.0)
        if grown <= 0:
            return
        self._seen[source] = total
        key = (id(metric), labels)
        inc = self._cells.get(key)
        if inc is None:
            child = metric.labels(*labels) if labels else metric
            inc = self._cells[key] = child.inc
        inc(grown)

    def flush(self) -> None:
        try:
            self.fold()
        except Exception:  # metrics never break the capability
            log.exception("exporting totals failed")

    def start(self) -> None:
        """Fold every ``every`` seconds in this process (needs a running event loop)."""
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._loop(), name="headway-metrics-totals")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.flush()
