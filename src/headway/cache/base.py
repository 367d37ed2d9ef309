"""The L2 backend contract: what memory, SQLite and Redis implement.

Semantics every backend keeps (``tests/cache/test_contract.py`` checks them all):

- Keys are full strings built by :class:`headway.cache.keys.KeyBuilder`; values are
  opaque bytes. An entry lives ``ttl`` seconds (the backend's clock), then reads as
  ``None``.
- ``set_many`` stores every entry and records it in the set of each of its tag keys;
  ``invalidate_tags`` deletes every entry recorded under the given tag keys, and the tag
  sets themselves, in one round trip, without scanning the keyspace.
- ``delete_matching`` takes a Redis ``MATCH`` glob over full keys: the slow path (Redis
  SCANs the keyspace); callers confine it to one tenant's space.
- ``add`` is SET-if-absent with a TTL (the loader lock); ``release`` deletes a key only
  while it still holds ``value`` (the lock's token).
- ``notify``, when given to a write, is published on the backend's invalidation channel
  together with the write; ``listen`` delivers those messages from other processes.
  A backend that is not shared between processes (memory) need not deliver anything.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from headway.connections import Connections


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    value: bytes
    ttl: float
    tags: tuple[str, ...] = ()


class CacheBackend(ABC):
    """One L2 store, constructed with its URL, the hub's connections and the channel."""

    shared: ClassVar[bool] = True  # visible to other processes

    def __init__(
        self, url: str, connections: Connections | None = None, *, channel: str = "hw:c:inval"
    ) -> None:
        self.url = url
        self.connections = connections
        self.channel = channel

    async def close(self) -> None:
        """Release what the backend opened itself (never a pool shared by the hub)."""
        return None

    async def listen(self, callback: Callable[[bytes], None]) -> None:
        """Deliver invalidation messages until cancelled (default: none ever arrive)."""
        await asyncio.Event().wait()

    async def info(self) -> dict[str, Any]:
        """Backend facts for ``headway cache stats`` (entry count, memory, policy...)."""
        return {}

    @abstractmethod
    async def ping(self) -> None:
        """Raise when the store cannot be reached."""

    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    @abstractmethod
    async def set_many(self, entries: Sequence[Entry], *, notify: bytes | None = None) -> None:
        """Store entries (and their tag memberships) in one round trip."""

    @abstractmethod
    async def delete_many(self, keys: Sequence[str], *, notify: bytes | None = None) -> int:
        """Delete keys; return how many existed."""

    @abstractmethod
    async def invalidate_tags(self, tags: Sequence[str], *, notify: bytes | None = None) -> int:
        """Delete every entry recorded under ``tags`` and the tag sets; return entries."""

    @abstractmethod
    async def delete_matching(self, pattern: str, *, notify: bytes | None = None) -> int:
        """Delete every key matching the glob (slow path); return how many."""

    @abstractmethod
    async def incr(self, key: str, delta: int, ttl: float | None) -> int:
        """Add ``delta`` to an integer (0 when absent); ``ttl`` is set when it is created."""

    @abstractmethod
    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` is absent; True when stored."""

    @abstractmethod
    async def release(self, key: str, value: bytes) -> bool:
        """Delete ``key`` only while it holds ``value``; True when deleted."""
