"""Breaker fixtures: ``make_breakers(url, clock=None, **settings)`` on a started hub of its own.

Every hub uses the test's ``redis_prefix`` as key prefix, so the Redis keys it creates are
removed by the ``redis_url`` fixture afterwards (never FLUSHDB).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from headway import Headway
from headway.resilience import Breakers, BreakersSettings

MakeBreakers = Callable[..., Awaitable[Breakers]]


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def make_breakers(redis_prefix: str) -> AsyncIterator[MakeBreakers]:
    hubs: list[Headway] = []

    async def make(url: str, clock: Any = None, **settings: Any) -> Breakers:
        hw = Headway()
        s = BreakersSettings(prefix=redis_prefix, **settings)
        breakers = hw.add(Breakers(hw, s, url=url, clock=clock))
        await hw.start()
        hubs.append(hw)
        return breakers

    yield make
    for hw in reversed(hubs):
        await hw.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend() -> str:
    """The backend kind; contract tests parametrize it (see ``backend_params``)."""
    return "memory"
