"""L1: the in-process level. LRU, bounded by entries and bytes, with a short TTL.

Values are kept decoded, so a hit costs a dict lookup; treat them as read-only (a
caller that mutates a cached dict changes what the next caller gets from this process).
An index from tag key to entry keys lets a tag invalidation drop entries without a scan.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Final

from headway.cache.keys import glob_regex


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class _Item:
    __slots__ = ("expires", "size", "tags", "value")

    def __init__(self, value: Any, expires: float, size: int, tags: tuple[str, ...]) -> None:
        self.value = value
        self.expires = expires
        self.size = size
        self.tags = tags


class L1:
    """A bounded LRU map of key -> decoded value with per-entry expiry."""

    def __init__(self, max_entries: int, max_bytes: int, ttl: float) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.enabled = max_entries > 0 and max_bytes > 0 and ttl > 0
        self.bytes = 0
        self.evictions = 0
        # public for the cache's hit fast path (``Cache.get``); everything else goes
        # through the methods below
        self.data: OrderedDict[str, _Item] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self.data)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not MISSING

    def get(self, key: str) -> Any:
        item = self.data.get(key)
        if item is None:
            return MISSING
        if item.expires <= time.monotonic():
            self._drop(key)
            return MISSING
        self.data.move_to_end(key)
        return item.value

    def put(self, key: str, value: Any, size: int, ttl: float, tags: tuple[str, ...]) -> None:
        """Keep ``value`` for ``min(ttl, self.ttl)`` seconds; too large a value is skipped."""
        if not self.enabled or size > self.max_bytes or ttl <= 0:
            return
        self._drop(key)
        self.data[key] = _Item(value, time.monotonic() + min(ttl, self.ttl), size, tags)
        self.bytes += size
        for tag in tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self.data) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self.data)))
            self.evictions += 1

    def _drop(self, key: str) -> bool:
        item = self.data.pop(key, None)
        if item is None:
            return False
        self.bytes -= item.size
        for tag in item.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]
        return True

    def pop(self, keys: Iterable[str]) -> int:
        return sum(self._drop(key) for key in keys)

    def pop_tags(self, tags: Iterable[str]) -> int:
        keys = {key for tag in tags for key in self._by_tag.get(tag, ())}
        return self.pop(keys)

    def pop_prefix(self, prefix: str) -> int:
        return self.pop([key for key in self.data if key.startswith(prefix)])

    def pop_matching(self, pattern: str) -> int:
        """Drop keys matching a Redis-style glob over full keys."""
        match = glob_regex(pattern).fullmatch
        return self.pop([key for key in self.data if match(key)])

    def clear(self) -> None:
        self.data.clear()
        self._by_tag.clear()
        self.bytes = 0
