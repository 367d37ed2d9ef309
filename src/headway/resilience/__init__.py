"""Circuit breakers, shared across processes through Redis (in-process for ``memory://``).

::

    ai = hw.breakers.breaker("ai-provider", failure_threshold=5, open_timeout=30,
                             call_timeout=10, fallback=lambda exc: CANNED_ANSWER)

    answer = await ai.call(client.complete, prompt)       # or
    @ai
    async def complete(prompt: str) -> str: ...            # or
    async with ai:
        await client.complete(prompt)

A breaker opens on ``failure_threshold`` consecutive failures, or when failures (or slow
calls) reach a share of a sliding window of calls or seconds; it stays open
``open_timeout`` seconds, then lets ``half_open_calls`` trials through and closes after
``success_threshold`` successes. While open, calls fail at once with
:class:`CircuitOpenError` (a 503 with Retry-After in a request) or get the fallback.
"""

from __future__ import annotations

from headway import registry
from headway.constants import REDIS_SCHEMES
from headway.resilience.base import CLOSED, HALF_OPEN, OPEN, BreakerBackend, Snapshot
from headway.resilience.breaker import Breaker, CircuitOpenError, UnknownBreakerError
from headway.resilience.core import Breakers
from headway.resilience.policy import Policy
from headway.resilience.settings import BreakersSettings

registry.register("resilience", "memory", "headway.resilience.backends.memory:MemoryBreakerBackend")
for _scheme in REDIS_SCHEMES:
    registry.register(
        "resilience",
        _scheme,
        "headway.resilience.backends.redis:RedisBreakerBackend",
        extra="redis",
    )

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "Breaker",
    "BreakerBackend",
    "Breakers",
    "BreakersSettings",
    "CircuitOpenError",
    "Policy",
    "Snapshot",
    "UnknownBreakerError",
]
