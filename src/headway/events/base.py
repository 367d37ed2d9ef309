"""The fan-out backend contract: per-channel offsets, bounded history, one live feed.

A backend does three things for :mod:`headway.events`:

- :meth:`EventBackend.publish` gives a message the next offset of its channel, appends it
  to the channel's history (trimmed to ``history_size`` messages and ``history_ttl``
  seconds) and sends it to every process listening — atomically, so history order is
  publication order;
- :meth:`EventBackend.listen` calls back with every message published by any process,
  on every channel (the caller routes them to its local clients);
- :meth:`EventBackend.replay` answers what a channel holds after an offset, or that the
  messages after it are gone (trimmed, expired, or the channel was started over).

Offsets are ``"<epoch>-<seq>"``: ``seq`` counts a channel's messages from 1, ``epoch`` is
a random token chosen when the channel's state was created, so an offset from a channel
that was forgotten and started over is recognised instead of being mistaken for a
position in the new sequence.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from headway.connections import Connections
    from headway.events.settings import EventsSettings

_OFFSET = re.compile(r"([0-9a-f]{1,32})-([0-9]{1,19})")
CHANNEL = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
NAME_RE = CHANNEL  # event names: the same characters


@dataclass(frozen=True, slots=True, order=True)
class Offset:
    epoch: str
    seq: int

    def __str__(self) -> str:
        return f"{self.epoch}-{self.seq}"

    @classmethod
    def parse(cls, text: str) -> Offset:
        match = _OFFSET.fullmatch(text)
        if match is None:
            raise ValueError(f"invalid offset {text[:60]!r}: expected '<epoch>-<seq>'")
        return cls(match[1], int(match[2]))


@dataclass(frozen=True, slots=True)
class Message:
    """One published message; ``data`` is the event's JSON, encoded once."""

    channel: str
    offset: Offset
    event: str
    data: bytes
    ts: float  # server time of publication, seconds


@dataclass(frozen=True, slots=True)
class Replay:
    """What :meth:`EventBackend.replay` answers.

    ``head``: the channel's latest offset (None: the channel has no state).
    ``lost``: messages after the asked offset are gone; ``messages`` is then empty and
    the client should reload. Otherwise ``messages`` are those after the offset, oldest
    first (empty when the client is up to date).
    """

    head: Offset | None
    messages: tuple[Message, ...] = ()
    lost: bool = False


def missed_since(after: Offset, head: Offset | None, oldest: int | None) -> bool:
    """True when messages after ``after`` are gone: shared by every backend's replay.

    ``oldest`` is the seq of the oldest message still kept (None: none kept).
    """
    if head is None:
        return after.seq > 0
    if after.epoch != head.epoch or after.seq > head.seq:
        return True
    if after.seq == head.seq:
        return False
    return oldest is None or oldest > after.seq + 1


class EventBackend(abc.ABC):
    """One fan-out backend; opened once per hub, used from one event loop."""

    def __init__(self, url: str, connections: Connections | None, settings: EventsSettings) -> None:
        self.url = url
        self.connections = connections
        self.settings = settings
        self.history_size = settings.history_size
        self.history_ttl = settings.history_ttl

    async def open(self) -> None:
        """Create tables / load scripts. Idempotent."""
        return None

    async def close(self) -> None:
        """Release what :meth:`open` and :meth:`listen` hold. Idempotent."""
        return None

    @abc.abstractmethod
    async def publish(self, channel: str, event: str, data: bytes) -> Message:
        """Append to ``channel``'s history and send to every listener; returns the message."""

    @abc.abstractmethod
    async def listen(
        self, on_message: Callable[[Message], None], on_ready: Callable[[], None]
    ) -> None:
        """Call ``on_message`` for every message published on any channel, until cancelled.

        ``on_ready()`` runs each time the feed is (again) live: messages published while
        it was down were not delivered, so the caller catches up through :meth:`replay`.
        A lost connection is retried, never raised.
        """

    @abc.abstractmethod
    async def replay(self, channel: str, after: Offset | None) -> Replay:
        """The channel's messages after ``after`` (None: only the head), or ``lost``."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """One round trip to the server (readiness); raises when it is unreachable."""
