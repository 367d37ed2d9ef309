"""``redis://``: breaker state shared by every process and machine.

Each operation is one Lua script from ``lua/`` (loaded once with SCRIPT LOAD, called with
EVALSHA, reloaded if the server lost them); a breaker's two keys share the hash tag
``{br:NAME}``. Transitions are published on ``P:br:events`` in the same script, so every
process learns them through its subscription without polling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from headway.connections.pubsub import listen as pubsub_listen
from headway.resilience.base import BreakerBackend, ForceMode, Listener, Snapshot
from headway.resilience.policy import Policy

if TYPE_CHECKING:
    from headway.connections import Connections

LUA_DIR = Path(__file__).parent / "lua"
SCRIPTS = {p.stem.rsplit("-", 1)[0]: p.read_text(encoding="utf-8") for p in LUA_DIR.glob("*.lua")}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def snapshot_from(name: str, reply: Sequence[Any]) -> Snapshot:
    s, g, o, f, cf, now, permitted, n, fails, slow = reply
    return Snapshot(
        name,
        _text(s),
        int(g),
        int(o) / 1000,
        bool(int(f)),
        int(cf),
        int(now) / 1000,
        int(n),
        int(fails),
        int(slow),
        bool(int(permitted)),
    )


def snapshot_from_message(data: bytes) -> Snapshot | None:
    try:
        msg = orjson.loads(data)
        return Snapshot(
            str(msg["n"]),
            str(msg["s"]),
            int(msg["g"]),
            int(msg["o"]) / 1000,
            bool(int(msg["f"])),
            int(msg["cf"]),
            int(msg["now"]) / 1000,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class RedisBreakerBackend(BreakerBackend):
    def __init__(
        self,
        url: str,
        connections: Connections | None = None,
        *,
        prefix: str = "hw",
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(url, connections, prefix=prefix)
        if connections is not None:
            self.client: aioredis.Redis = connections.redis(url)
            self._own = False
        else:
            self.client = aioredis.Redis.from_url(url)
            self._own = True
        self.channel = f"{prefix}:br:events"
        self.names_key = f"{prefix}:br:names"
        self._sha: dict[str, str] = {}

    def keys(self, name: str) -> list[str]:
        return [f"{self.prefix}:{{br:{name}}}:s", f"{self.prefix}:{{br:{name}}}:w"]

    async def close(self) -> None:
        if self._own:
            await self.client.aclose()

    async def _script(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if not self._sha:
            await self._load()
        try:
            return await self.client.evalsha(self._sha[script], len(keys), *keys, *args)
        except NoScriptError:  # server restarted or SCRIPT FLUSH: load again, once
            await self._load()
            return await self.client.evalsha(self._sha[script], len(keys), *keys, *args)

    async def _load(self) -> None:
        for script, source in SCRIPTS.items():
            self._sha[script] = _text(await self.client.script_load(source))

    async def register(self, names: Sequence[str]) -> None:
        if names:
            await self.client.sadd(self.names_key, *names)

    async def names(self) -> list[str]:
        return sorted(_text(n) for n in await self.client.smembers(self.names_key))

    async def read(self, name: str, policy: Policy) -> Snapshot:
        size = policy.window_size * (1 if policy.window == "count" else 1000)
        kind = 0 if policy.window == "count" else 1
        return snapshot_from(name, await self._script("read", self.keys(name), [kind, size]))

    async def record(
        self, name: str, policy: Policy, codes: Sequence[int], generation: int
    ) -> Snapshot:
        args = [self.channel, name, generation, *policy.args(), *codes[-policy.capacity :]]
        return snapshot_from(name, await self._script("record", self.keys(name), args))

    async def acquire(self, name: str, policy: Policy) -> Snapshot:
        args = [self.channel, name, *policy.args()]
        return snapshot_from(name, await self._script("acquire", self.keys(name)[:1], args))

    async def force(self, name: str, policy: Policy, mode: ForceMode) -> Snapshot:
        args = [self.channel, name, mode]
        return snapshot_from(name, await self._script("force", self.keys(name), args))

    async def listen(self, callback: Listener) -> None:

        def on_message(data: bytes) -> None:
            snap = snapshot_from_message(data)
            if snap is not None:
                callback(snap)

        # once subscribed, None: transitions may have been missed before
        await pubsub_listen(
            self.client, self.channel, on_message, on_subscribed=lambda: callback(None)
        )
