"""L1 coherence across processes: invalidation messages over the backend's channel.

Every write publishes (in the same round trip as the write) a small JSON message::

    {"o": origin, "k": [full keys]}      delete / set
    {"o": origin, "t": [tag keys]}       invalidate_tags
    {"o": origin, "m": glob}             invalidate_pattern
    {"o": origin, "p": tenant space}     invalidate_tenant
    {"o": origin, "a": 1}                clear

Each process's listener drops the matching L1 entries (its own messages are skipped).
When the subscription is lost, and again when it is back, L1 is emptied: a message
may have been missed in between. Pub/sub was chosen over RESP3 client-side caching
(tracking) because redis-py's asyncio client does not route tracking invalidations, and
because pub/sub also carries tag, pattern and tenant invalidations, not only keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from headway.cache.core import Cache

log = logging.getLogger("headway.cache")


def message(origin: str, **fields: Any) -> bytes:
    return orjson.dumps({"o": origin, **fields})


class Listener:
    """The background task that applies other processes' invalidations to L1."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.connected = False
        self.received = 0
        self.last_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._backoff = 0.1
        self._lost = False

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="headway-cache-coherence")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected = False

    async def _run(self) -> None:
        while True:
            try:
                await self.cache.backend.listen(self.on_message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected:
                    log.warning("cache invalidation channel lost (%s); emptying L1", exc)
                self.connected, self._lost = False, True
                self.cache.l1.clear()
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, 5.0)

    def on_message(self, data: bytes) -> None:
        l1 = self.cache.l1
        if not data:  # subscribed; after a loss, messages may have been missed
            if self._lost:
                l1.clear()
            self.connected, self._lost, self._backoff = True, False, 0.1
            return
        try:
            msg = orjson.loads(data)
            if not isinstance(msg, dict) or msg.get("o") == self.cache.origin:
                return
            self._apply(msg)
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            log.debug("ignored a malformed invalidation message")
            return
        self.received += 1
        self.last_at = time.time()
        self.cache.counters.invalidations_received += 1

    def _apply(self, msg: dict[str, Any]) -> None:
        l1 = self.cache.l1
        if "k" in msg:
            l1.pop([str(k) for k in msg["k"]])
        if "t" in msg:
            l1.pop_tags([str(t) for t in msg["t"]])
        if "m" in msg:
            l1.pop_matching(str(msg["m"]))
        if "p" in msg:
            l1.pop_prefix(str(msg["p"]))
        if "a" in msg:
            l1.clear()

    def status(self) -> dict[str, Any]:
        return {
            "listening": self.connected,
            "received": self.received,
            "last_at": self.last_at,
        }
