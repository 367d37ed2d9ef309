"""``memory://``: breaker state in this process (also every breaker's fallback when the
shared backend cannot be reached)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from headway.resilience import machine
from headway.resilience.base import BreakerBackend, ForceMode, Snapshot
from headway.resilience.machine import Machine
from headway.resilience.policy import Policy

if TYPE_CHECKING:
    from headway.connections import Connections


class MemoryBreakerBackend(BreakerBackend):
    shared = False

    def __init__(
        self,
        url: str = "memory://",
        connections: Connections | None = None,
        *,
        prefix: str = "hw",
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(url, connections, prefix=prefix)
        self.clock = clock or time.time
        self._machines: dict[str, Machine] = {}

    def _get(self, name: str) -> Machine:
        m = self._machines.get(name)
        if m is None:
            m = self._machines[name] = Machine()
        return m

    def seed(self, name: str, snap: Snapshot) -> int:
        """Start from a known state (the shared one, when the shared backend fails);
        return the new generation."""
        m = self._get(name)
        m.state, m.opened_at, m.forced = snap.state, snap.opened_at, snap.forced
        m.consecutive, m.generation = snap.consecutive, m.generation + 1
        return m.generation

    async def register(self, names: Sequence[str]) -> None:
        for name in names:
            self._get(name)

    async def names(self) -> list[str]:
        return sorted(self._machines)

    async def read(self, name: str, policy: Policy) -> Snapshot:
        m, now = self._get(name), self.clock()
        machine.trim(m, policy, now)
        return m.snapshot(name, now)

    async def record(
        self, name: str, policy: Policy, codes: Sequence[int], generation: int
    ) -> Snapshot:
        m, now = self._get(name), self.clock()
        machine.record(m, policy, codes, generation, now)
        return m.snapshot(name, now)

    async def acquire(self, name: str, policy: Policy) -> Snapshot:
        m, now = self._get(name), self.clock()
        permitted, _ = machine.acquire(m, policy, now)
        return m.snapshot(name, now, permitted=permitted)

    async def force(self, name: str, policy: Policy, mode: ForceMode) -> Snapshot:
        m, now = self._get(name), self.clock()
        machine.force(m, mode, now)
        return m.snapshot(name, now)
