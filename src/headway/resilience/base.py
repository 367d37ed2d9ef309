"""The shared-state contract of circuit breakers: what ``memory://`` and ``redis://`` do.

A backend keeps, per breaker name, one state machine (see :mod:`headway.resilience.machine`
for the reference implementation and ``backends/lua`` for the Redis one) and answers
every operation with a :class:`Snapshot`. Semantics every backend keeps
(``tests/resilience/test_contract.py`` checks them all):

- ``record`` adds call outcomes (codes: bit 0 failure, bit 1 slow) made under
  ``generation``; outcomes of another generation are ignored (the call started before a
  transition). Closed: outcomes enter the window and the trip rules are applied.
  Half-open: each outcome ends one trial; a failure reopens, ``success_threshold``
  successes close. Open: ignored.
- ``acquire`` asks to run a call: always yes when closed; when open, moves to half-open
  once ``open_timeout`` has passed (backend clock) and then grants at most
  ``half_open_calls`` trials at a time.
- ``force`` sets ``open`` / ``closed`` (forced: no automatic transition) or ``reset``
  (closed, window emptied, not forced). Every transition increments ``generation``.
- ``listen`` delivers other processes' transitions (a backend that is not shared
  delivers nothing); ``now`` is the backend's clock in seconds.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from headway.connections import Connections
    from headway.resilience.policy import Policy

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
FAILURE, SLOW = 1, 2
ForceMode = Literal["open", "closed", "reset"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One breaker's shared state as a backend answered it."""

    name: str
    state: str = CLOSED
    generation: int = 0
    opened_at: float = 0.0
    forced: bool = False
    consecutive: int = 0
    now: float = 0.0  # the backend's clock when it answered
    calls: int = 0
    failures: int = 0
    slow: int = 0
    permitted: bool = True

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "forced": self.forced,
            "generation": self.generation,
            "opened_at": self.opened_at or None,
            "consecutive_failures": self.consecutive,
            "window": {"calls": self.calls, "failures": self.failures, "slow": self.slow},
        }


Listener = Callable[[Snapshot | None], None]


class BreakerBackend(ABC):
    """One store of breaker state, constructed with its URL and the hub's connections."""

    shared: ClassVar[bool] = True

    def __init__(
        self,
        url: str,
        connections: Connections | None = None,
        *,
        prefix: str = "hw",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.url = url
        self.connections = connections
        self.prefix = prefix

    async def close(self) -> None:
        """Release what the backend opened itself (never a shared pool)."""
        return None

    async def listen(self, callback: Listener) -> None:
        """Call ``callback(snapshot)`` for other processes' transitions until cancelled;
        ``callback(None)`` once subscribed (messages may have been missed before)."""
        await asyncio.Event().wait()

    @abstractmethod
    async def register(self, names: Sequence[str]) -> None:
        """Remember breaker names, so that other processes (the CLI) can list them."""

    @abstractmethod
    async def names(self) -> list[str]: ...

    @abstractmethod
    async def read(self, name: str, policy: Policy) -> Snapshot: ...

    @abstractmethod
    async def record(
        self, name: str, policy: Policy, codes: Sequence[int], generation: int
    ) -> Snapshot: ...

    @abstractmethod
    async def acquire(self, name: str, policy: Policy) -> Snapshot:
        """``Snapshot.permitted`` says whether the call may run."""

    @abstractmethod
    async def force(self, name: str, policy: Policy, mode: ForceMode) -> Snapshot: ...
