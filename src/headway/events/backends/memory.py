"""``memory://``: channels, history and fan-out inside one process.

Backends opened with the same URL in one process share one bus (``memory://`` and
``memory://name`` are two buses), as Redis or PostgreSQL would across processes.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from headway.events.base import EventBackend, Message, Offset, Replay, missed_since

if TYPE_CHECKING:
    from headway.connections import Connections
    from headway.events.settings import EventsSettings


STATE_TTL = 86_400.0  # a channel's offsets are forgotten after a day without messages


@dataclass(slots=True)
class _Channel:
    epoch: str
    seq: int = 0
    log: deque[Message] = field(default_factory=deque)
    last: float = 0.0


@dataclass(slots=True)
class _Bus:
    channels: dict[str, _Channel] = field(default_factory=dict)
    listeners: list[Callable[[Message], None]] = field(default_factory=list)


_BUSES: dict[str, _Bus] = {}


class MemoryEventBackend(EventBackend):
    def __init__(self, url: str, connections: Connections | None, settings: EventsSettings) -> None:
        super().__init__(url, connections, settings)
        bus = _BUSES.setdefault(url, _Bus())
        self._channels = bus.channels
        self._listeners = bus.listeners

    async def publish(self, channel: str, event: str, data: bytes) -> Message:
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel(os.urandom(4).hex())
        state.seq += 1
        now = state.last = time.time()
        msg = Message(channel, Offset(state.epoch, state.seq), event, data, now)
        if self.history_size:
            state.log.append(msg)
        self._trim(state, now)
        for deliver in list(self._listeners):
            deliver(msg)
        if len(self._channels) > 1000 and state.seq % 100 == 0:
            self._forget(now - max(STATE_TTL, self.history_ttl))
        return msg

    def _forget(self, before: float) -> None:
        for name in [n for n, c in self._channels.items() if c.last < before]:
            del self._channels[name]

    def _trim(self, state: _Channel, now: float) -> None:
        log, cutoff = state.log, now - self.history_ttl
        while len(log) > self.history_size or (log and log[0].ts < cutoff):
            log.popleft()

    async def listen(
        self, on_message: Callable[[Message], None], on_ready: Callable[[], None]
    ) -> None:
        self._listeners.append(on_message)
        try:
            on_ready()
            await asyncio.Event().wait()  # until cancelled
        finally:
            self._listeners.remove(on_message)

    async def replay(self, channel: str, after: Offset | None) -> Replay:
        state = self._channels.get(channel)
        if state is None:
            return Replay(None, lost=after is not None and after.seq > 0)
        self._trim(state, time.time())
        head = Offset(state.epoch, state.seq)
        if after is None:
            return Replay(head)
        oldest = state.log[0].offset.seq if state.log else None
        if missed_since(after, head, oldest):
            return Replay(head, lost=True)
        return Replay(head, tuple(m for m in state.log if m.offset.seq > after.seq))

    async def ping(self) -> None:
        return None
