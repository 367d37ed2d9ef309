"""Flags fixtures: ``make_flags(url, **settings)`` on a started hub of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from headway import Headway
from headway.flags import Flags, FlagsSettings

MakeFlags = Callable[..., Awaitable[Flags]]


@pytest.fixture
async def make_flags(redis_prefix: str) -> AsyncIterator[MakeFlags]:
    hubs: list[Headway] = []

    async def make(url: str, redis_url: str | None = None, **settings: Any) -> Flags:
        hw = Headway(redis_url=redis_url) if redis_url else Headway()
        s = FlagsSettings(prefix=redis_prefix, **settings)
        flags = hw.add(Flags(hw, s, url=url))
        await hw.start()
        hubs.append(hw)
        return flags

    yield make
    for hw in reversed(hubs):
        await hw.stop()


@pytest.fixture
def backend() -> str:
    return "memory"
