"""The rate-limit backend contract: what ``memory://`` and ``redis://`` implement.

A backend stores one small state per limit key and answers *checks*. Semantics every
backend keeps (``tests/ratelimit/test_contract.py`` checks them all):

- :meth:`LimitBackend.hit` takes a batch of independent checks and answers one
  :class:`Outcome` per check, in order. Each check is atomic on its own key: it either
  consumes ``cost`` units and is allowed, or consumes nothing and is denied. Checks of one
  batch are not atomic together (a batch is a round-trip optimisation, not a
  transaction).
- Every algorithm counts in milliseconds of the backend's own clock (Redis ``TIME``; the
  process clock for memory), so that several machines agree.
- ``remaining`` is what the key could still admit right after the check; ``reset_ms`` is
  when the current window ends (fixed/sliding), the oldest entry leaves (log), or the
  bucket/GCRA state is full again; ``retry_after_ms`` is 0 when allowed, otherwise the
  earliest time at which the same check can pass (never earlier).
- A server that cannot be reached raises :class:`~headway.errors.BackendUnavailableError`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from headway.connections import Connections


class Algorithm(enum.StrEnum):
    """The five algorithms; each is one Lua script on Redis."""

    FIXED_WINDOW = "fixed_window"
    SLIDING_WINDOW = "sliding_window"  # weighted two-window counter
    SLIDING_LOG = "sliding_log"  # exact, one entry per unit: for small limits
    TOKEN_BUCKET = "token_bucket"  # noqa: S105  (not a password)
    GCRA = "gcra"


@dataclass(frozen=True, slots=True)
class Check:
    """One check of one key. ``burst`` is the bucket size (token bucket, GCRA)."""

    algorithm: Algorithm
    key: str
    limit: int
    period_ms: int
    cost: int = 1
    burst: int = 0  # 0 = same as limit

    @property
    def capacity(self) -> int:
        """The most units the key can hold at once (what ``cost`` may not exceed)."""
        return self.burst or self.limit


class Outcome(NamedTuple):
    """What a backend answers for one check (a named tuple: made on every check, and a
    tuple is made several times faster than a frozen dataclass)."""

    allowed: bool
    remaining: int
    reset_ms: int
    retry_after_ms: int


class LimitBackend(ABC):
    """One store of limit states. Constructed with its URL, key prefix and connections."""

    def __init__(
        self, url: str, connections: Connections | None = None, *, prefix: str = "hw"
    ) -> None:
        self.url = url
        self.connections = connections
        self.prefix = prefix

    async def open(self) -> None:  # noqa: B027  (optional hook)
        """Connect and load what the store needs (scripts). Idempotent."""

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Release what :meth:`open` acquired (never a connection shared by the hub)."""

    @abstractmethod
    async def hit(self, checks: Sequence[Check]) -> list[Outcome]:
        """Run ``checks`` (one round trip on a server backend); one outcome per check."""

    @abstractmethod
    async def reset(self, keys: Sequence[str]) -> None:
        """Forget the state of ``keys`` (as given in :attr:`Check.key`)."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise BackendUnavailableError when the store cannot be reached."""


def validate(check: Check) -> None:
    """Reject a check no algorithm can answer (raised before any I/O)."""
    if check.limit < 1 or check.period_ms < 1:
        raise ValueError(
            f"limit and period must be positive, got {check.limit}/{check.period_ms}ms"
        )
    if check.cost < 1:
        raise ValueError(f"cost must be >= 1, got {check.cost}")
    if check.cost > check.capacity:
        raise ValueError(f"cost {check.cost} exceeds the limit's capacity {check.capacity}")


__all__ = ["Algorithm", "Check", "LimitBackend", "Outcome", "validate"]
