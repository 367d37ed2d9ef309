"""Counters for metrics, and logs that are throttled per interval.

A backend outage or an attack must not turn into one log line per request: the first
event of a kind is logged, the next ones within ``interval`` seconds are only counted,
and the following log line says how many were held back.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

logger = logging.getLogger("headway.ratelimit")
MAX_TRACKED = 10_000


class Metrics:
    """``(policy, outcome) -> count``; outcomes: allowed, denied, fail_open, fail_closed.

    The middleware's hot path counts its allowed decisions in a per-policy cell
    (:meth:`allowed_cell`, a one-item list: one increment, no hashing); :attr:`counts`
    folds the cells in whenever it is read.
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._cells: dict[str, list[int]] = {}

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        for policy, cell in self._cells.items():
            if cell[0]:
                n, cell[0] = cell[0], 0
                self._counts[(policy, "allowed")] += n
        return self._counts

    def allowed_cell(self, policy: str) -> list[int]:
        """The cell that counts ``policy``'s allowed decisions (``cell[0] += 1``)."""
        cell = self._cells.get(policy)
        if cell is None:
            cell = self._cells[policy] = [0]
        return cell

    def add(self, policy: str, outcome: str, n: int = 1) -> None:
        self._counts[(policy, outcome)] += n

    def snapshot(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (policy, outcome), n in sorted(self.counts.items()):
            out.setdefault(policy, {})[outcome] = n
        return out

    def total(self, outcome: str) -> int:
        return sum(n for (_, o), n in self.counts.items() if o == outcome)


class ThrottledLog:
    """Logs a message per key at most once per ``interval`` seconds."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()
        self.emitted = 0

    def log(self, level: int, key: str, message: str, *args: object) -> bool:
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] += 1
            return False
        if len(self._last) >= MAX_TRACKED:
            self._last.clear()
        self._last[key] = now
        held = self._held.pop(key, 0)
        suffix = f" ({held} more since the last report)" if held else ""
        logger.log(level, message + suffix, *args)
        self.emitted += 1
        return True


__all__ = ["Metrics", "ThrottledLog", "logger"]
