"""``redis://``: one Lua script per algorithm, one round trip per batch of checks.

Each script (``lua/<algorithm>-1.lua``) touches exactly one key, so every check is
atomic and Redis-Cluster safe; the key is ``<prefix>:rl:{<limit key>}``. Scripts are
loaded once (SCRIPT LOAD) and called with EVALSHA; a batch of checks goes out as one
non-transactional pipeline. A server restart that forgot the scripts is answered by
loading them again and retrying the checks that got NOSCRIPT.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from headway.errors import BackendUnavailableError
from headway.ratelimit.base import Algorithm, Check, LimitBackend, Outcome

if TYPE_CHECKING:
    from headway.connections import Connections

UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def _load_scripts() -> dict[Algorithm, tuple[str, str]]:
    """``algorithm -> (source, sha1)`` read from the package's ``lua/`` folder."""
    folder = resources.files("headway.ratelimit.backends") / "lua"
    out: dict[Algorithm, tuple[str, str]] = {}
    for algorithm in Algorithm:
        source = (folder / f"{algorithm.value}-1.lua").read_text(encoding="utf-8")
        out[algorithm] = (source, hashlib.sha1(source.encode()).hexdigest())  # noqa: S324
    return out


SCRIPTS = _load_scripts()


def script_args(check: Check) -> tuple[int, int, int, int]:
    return (check.limit, check.period_ms, check.cost, check.capacity)


class RedisLimitBackend(LimitBackend):
    """Limit states in Redis, shared by every process and machine."""

    def __init__(
        self, url: str, connections: Connections | None = None, *, prefix: str = "hw"
    ) -> None:
        super().__init__(url, connections, prefix=prefix)
        self._own_client: Redis | None = None
        self._loaded = False
        self.round_trips = 0  # network round trips made by hit(), for the bench

    @property
    def client(self) -> Redis:
        if self.connections is not None:
            return self.connections.redis(self.url)
        if self._own_client is None:
            self._own_client = Redis.from_url(self.url)
        return self._own_client

    def redis_key(self, key: str) -> str:
        return f"{self.prefix}:rl:{{{key}}}"

    async def open(self) -> None:
        if self._loaded:
            return
        try:
            for source, _sha in SCRIPTS.values():
                await self.client.script_load(source)
        except UNAVAILABLE as exc:
            raise BackendUnavailableError(f"rate-limit Redis unreachable: {exc}") from exc
        self._loaded = True

    async def close(self) -> None:
        if self._own_client is not None:
            await self._own_client.aclose()
            self._own_client = None

    async def hit(self, checks: Sequence[Check]) -> list[Outcome]:
        try:
            if not self._loaded:
                await self.open()
            raw = await self._run(checks)
        except UNAVAILABLE as exc:
            raise BackendUnavailableError(f"rate-limit Redis unreachable: {exc}") from exc
        return [Outcome(bool(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in raw]

    async def _run(self, checks: Sequence[Check]) -> list[Any]:
        self.round_trips += 1
        if len(checks) == 1:
            try:
                return [await self._evalsha(self.client, checks[0])]
            except NoScriptError:
                self._loaded = False
                await self.open()
                return [await self._evalsha(self.client, checks[0])]
        pipe = self.client.pipeline(transaction=False)
        for check in checks:
            pipe.evalsha(
                SCRIPTS[check.algorithm][1], 1, self.redis_key(check.key), *script_args(check)
            )
        results: list[Any] = await pipe.execute(raise_on_error=False)
        if any(isinstance(r, NoScriptError) for r in results):
            self._loaded = False
            await self.open()
            results = await self._retry_noscript(checks, results)
        for r in results:
            if isinstance(r, Exception):
                raise r
        return results

    async def _retry_noscript(self, checks: Sequence[Check], results: list[Any]) -> list[Any]:
        out = list(results)
        for i, r in enumerate(results):
            if isinstance(r, NoScriptError):
                out[i] = await self._evalsha(self.client, checks[i])
        return out

    async def _evalsha(self, client: Redis, check: Check) -> Any:
        sha = SCRIPTS[check.algorithm][1]
        return await client.evalsha(sha, 1, self.redis_key(check.key), *script_args(check))

    async def reset(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            await self.client.delete(*(self.redis_key(k) for k in keys))
        except UNAVAILABLE as exc:
            raise BackendUnavailableError(f"rate-limit Redis unreachable: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except UNAVAILABLE as exc:
            raise BackendUnavailableError(f"rate-limit Redis unreachable: {exc}") from exc


__all__ = ["SCRIPTS", "RedisLimitBackend"]
