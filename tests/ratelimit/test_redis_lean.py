"""The Redis backend's lean connection: scripts a server forgot, a server that is gone."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from headway.errors import BackendUnavailableError
from headway.ratelimit import Algorithm, Check
from headway.ratelimit.backends import redis as redis_backend
from headway.ratelimit.backends.redis import RedisLimitBackend

from .conftest import closed_port

pytestmark = pytest.mark.redis


async def test_a_script_the_server_does_not_know_is_loaded_and_the_checks_retried(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = RedisLimitBackend(redis_url, prefix=redis_prefix)
    await backend.open()
    assert backend._lean is not None  # a single-server URL takes the lean path
    # a script text the server has never seen: its EVALSHA answers NOSCRIPT, as after a
    # restart or SCRIPT FLUSH (without flushing the shared server's other scripts)
    source = redis_backend.SCRIPTS[Algorithm.FIXED_WINDOW][0] + f"\n-- {uuid.uuid4()}\n"
    sha = hashlib.sha1(source.encode()).hexdigest()
    monkeypatch.setitem(redis_backend.SCRIPTS, Algorithm.FIXED_WINDOW, (source, sha))
    check = Check(Algorithm.FIXED_WINDOW, "lean", 5, 60_000)
    [one] = await backend.hit([check])
    assert one.allowed and one.remaining == 4
    outcomes = await backend.hit([check] * 5)
    assert [o.allowed for o in outcomes] == [True] * 4 + [False]
    await backend.reset(["lean"])
    await backend.close()


async def test_an_unreachable_server_is_backend_unavailable(redis_prefix: str) -> None:
    backend = RedisLimitBackend(f"redis://127.0.0.1:{closed_port()}/0", prefix=redis_prefix)
    with pytest.raises(BackendUnavailableError):
        await backend.hit([Check(Algorithm.GCRA, "k", 5, 1_000)])
    await backend.close()
