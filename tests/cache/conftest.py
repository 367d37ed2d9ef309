"""Cache fixtures: ``make_cache(url, **settings)`` builds a started cache on its own hub.

Every cache uses the test's ``redis_prefix`` as its key prefix, so the Redis keys it
creates are removed by the ``redis_url`` fixture afterwards (never FLUSHDB).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from headway import Headway
from headway.cache import Cache, CacheSettings

MakeCache = Callable[..., Awaitable[Cache]]


@pytest.fixture
async def make_cache(redis_prefix: str) -> AsyncIterator[MakeCache]:
    hubs: list[Headway] = []

    async def make(url: str, **settings: Any) -> Cache:
        hw = Headway()
        cache = hw.add(Cache(hw, CacheSettings(prefix=redis_prefix, **settings), url=url))
        await hw.start()
        hubs.append(hw)
        return cache

    yield make
    for hw in reversed(hubs):
        await hw.stop()


@pytest.fixture
def backend() -> str:
    """The backend kind; contract tests parametrize it (see ``backend_params``)."""
    return "memory"


@pytest.fixture
async def cache(make_cache: MakeCache, backend: str, backend_url: str) -> Cache:
    return await make_cache(backend_url)
