"""Fixtures of the rate-limit suite: a backend per URL kind, apps with limits installed."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.conftest import backend_params

from headway import Headway
from headway.ratelimit import LimitBackend, RateLimits, RateLimitSettings
from headway.ratelimit.backends.memory import MemoryLimitBackend
from headway.ratelimit.backends.redis import RedisLimitBackend

BACKENDS = backend_params("memory", "redis", "cluster")


def make_backend(url: str, prefix: str) -> LimitBackend:
    if url.startswith("memory"):
        return MemoryLimitBackend(url, prefix=prefix)
    return RedisLimitBackend(url, prefix=prefix)


@pytest.fixture
async def store(backend: str, backend_url: str, redis_prefix: str) -> AsyncIterator[LimitBackend]:
    backend = make_backend(backend_url, redis_prefix)
    await backend.open()
    yield backend
    await backend.close()


def closed_port() -> int:
    """A 127.0.0.1 port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_limits(url: str, prefix: str, **settings: Any) -> RateLimits:
    """A hub whose limits use ``url`` with the test's key prefix."""
    hw = Headway(limits_url=url, connect_timeout=1.0)
    limits = RateLimits(hw, RateLimitSettings(key_prefix=prefix, **settings))
    hw.add(limits)
    return limits
