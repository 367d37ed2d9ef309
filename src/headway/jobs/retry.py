"""Retry policy: exponential backoff with jitter, and the ``Retry`` a task can raise."""

from __future__ import annotations

import random
from dataclasses import dataclass

from headway.jobs import constants as c


class Retry(Exception):
    """Raise from a task to run it again after ``delay`` seconds (counts as an attempt)."""

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        if delay is not None and delay < 0:
            raise ValueError("Retry delay must be >= 0")
        self.delay = delay


@dataclass(frozen=True, slots=True)
class Backoff:
    """``base * factor ** (attempt - 1)`` seconds, capped at ``cap``.

    With ``jitter`` the delay is drawn uniformly from [delay / 2, delay] ("equal jitter"):
    retries of many jobs that failed together spread out, yet each waits at least half.
    """

    base: float = c.BACKOFF_BASE
    factor: float = c.BACKOFF_FACTOR
    cap: float = c.BACKOFF_CAP
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.base < 0 or self.factor < 1 or self.cap < 0:
            raise ValueError("Backoff needs base >= 0, factor >= 1 and cap >= 0")

    def delay(self, attempt: int) -> float:
        """The wait before the run that follows failed attempt number ``attempt`` (1-based)."""
        exponent = min(max(attempt - 1, 0), 64)
        raw = min(self.cap, self.base * self.factor**exponent)
        if not self.jitter:
            return raw
        return random.uniform(raw / 2, raw)  # noqa: S311  (spreading load, not security)


DEFAULT_BACKOFF = Backoff()
