"""Local fan-out: the clients connected to this process, by channel.

The backend's feed calls :meth:`Fanout.deliver` once per message; each subscribed client
gets it in its own bounded buffer (:meth:`Client.offer`, never blocking). A client whose
buffer is full is marked dropped and its connection closed by its handler, so a client
that does not read costs the others nothing. Each client's sender puts messages back in
offset order per channel: duplicates are skipped, gaps are filled from history (or the
client is told the history was lost).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from headway.events.base import Message, Offset

SLOW_CONSUMER = "slow_consumer"


@dataclass(eq=False, slots=True)
class Client:
    """One connection's subscriptions, buffer and per-channel positions."""

    channels: tuple[str, ...]
    buffer: int
    tenant: str = "-"
    transport: str = "ws"
    last: dict[str, Offset | None] = field(default_factory=dict)
    queue: deque[Message] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: str | None = None
    catch_up: set[str] = field(default_factory=set)
    ping_due: bool = False
    busy: bool = False  # got a message since the last heartbeat tick

    def offer(self, msg: Message) -> None:
        """Queue ``msg`` (never blocks); a full buffer drops the client."""
        if self.dropped is not None:
            return
        if len(self.queue) >= self.buffer:
            self.drop(SLOW_CONSUMER)
            return
        self.queue.append(msg)
        self.busy = True
        self.wake.set()

    def drop(self, reason: str) -> None:
        if self.dropped is None:
            self.dropped = reason
            self.queue.clear()
        self.gone.set()
        self.wake.set()

    def cursor(self) -> str:
        """Every channel's position, as sent in SSE ``id:`` / read from ``Last-Event-ID``."""
        return ",".join(f"{c}={o}" for c, o in self.last.items() if o is not None)

    def accept(self, msg: Message) -> str:
        """``"send"``, ``"skip"`` (already sent) or ``"gap"`` (messages missing before it)."""
        last = self.last.get(msg.channel)
        if last is None or last.epoch != msg.offset.epoch:
            expected = 1 if last is not None else msg.offset.seq
        else:
            expected = last.seq + 1
        if last is not None and last.epoch == msg.offset.epoch and msg.offset.seq <= last.seq:
            return "skip"
        return "send" if msg.offset.seq <= expected else "gap"


def parse_cursor(text: str, channels: Iterable[str]) -> dict[str, Offset]:
    """``"tenant.1=ab12-5,agent.2=cd34-9"`` -> offsets of the wanted channels.

    A malformed cursor raises ValueError; channels it does not name start live.
    """
    wanted = set(channels)
    out: dict[str, Offset] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        channel, sep, offset = part.strip().partition("=")
        if not sep:
            raise ValueError(f"invalid cursor part {part[:60]!r}: expected channel=offset")
        if channel in wanted:
            out[channel] = Offset.parse(offset)
    return out


class Fanout:
    """Routes the feed's messages to this process's clients."""

    def __init__(self) -> None:
        self.subs: dict[str, set[Client]] = {}
        self.clients: set[Client] = set()
        self.on_change: Callable[[Client, int], None] | None = None

    def add(self, client: Client) -> None:
        self.clients.add(client)
        for channel in client.channels:
            self.subs.setdefault(channel, set()).add(client)
        if self.on_change is not None:
            self.on_change(client, 1)

    def remove(self, client: Client) -> None:
        if client not in self.clients:
            return
        self.clients.discard(client)
        for channel in client.channels:
            subs = self.subs.get(channel)
            if subs is not None:
                subs.discard(client)
                if not subs:
                    del self.subs[channel]
        if self.on_change is not None:
            self.on_change(client, -1)

    def deliver(self, msg: Message) -> None:
        for client in tuple(self.subs.get(msg.channel, ())):
            client.offer(msg)

    def resync(self) -> None:
        """The feed is live again: every client checks its channels against history."""
        for client in self.clients:
            client.catch_up.update(client.channels)
            client.wake.set()

    def heartbeat(self) -> None:
        """One tick: clients that got nothing since the last tick are sent a ping."""
        for client in self.clients:
            if client.busy:
                client.busy = False
            else:
                client.ping_due = True
                client.wake.set()

    async def beat(self, every: float) -> None:
        """Tick :meth:`heartbeat` every ``every`` seconds, until cancelled (one task for
        every connection of the process, rather than a timer per connection)."""
        while True:
            await asyncio.sleep(every)
            self.heartbeat()

    def close_all(self, reason: str) -> None:
        for client in tuple(self.clients):
            client.drop(reason)
