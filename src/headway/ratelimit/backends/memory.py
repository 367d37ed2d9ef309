"""``memory://``: limit states in a dict, for one process (tests, single-worker apps).

The clock is injectable (``clock`` returns ms) so that window boundaries can be tested
without sleeping. Expired states are swept every few thousand checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from headway.ratelimit.algorithms import STEPS
from headway.ratelimit.base import Check, LimitBackend, Outcome

if TYPE_CHECKING:
    from headway.connections import Connections

SWEEP_EVERY = 4096


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class MemoryLimitBackend(LimitBackend):
    """Every state in one dict: ``key -> (state, drop_at_ms)``."""

    def __init__(
        self,
        url: str = "memory://",
        connections: Connections | None = None,
        *,
        prefix: str = "hw",
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        super().__init__(url, connections, prefix=prefix)
        self.clock = clock
        self._states: dict[str, tuple[Any, int]] = {}
        self._ops = 0

    async def hit(self, checks: Sequence[Check]) -> list[Outcome]:
        now = self.clock()
        return [self._hit_one(check, now) for check in checks]

    def _hit_one(self, check: Check, now: int) -> Outcome:
        entry = self._states.get(check.key)
        state = entry[0] if entry is not None and entry[1] > now else None
        outcome, new_state, drop_at = STEPS[check.algorithm](state, check, now)
        if outcome.allowed or entry is not None:
            self._states[check.key] = (new_state, drop_at)
        self._ops += 1
        if self._ops % SWEEP_EVERY == 0:
            self._sweep(now)
        return outcome

    def _sweep(self, now: int) -> None:
        for key in [k for k, (_, drop_at) in self._states.items() if drop_at <= now]:
            del self._states[key]

    async def reset(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._states.pop(key, None)

    async def ping(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._states)


__all__ = ["MemoryLimitBackend"]
