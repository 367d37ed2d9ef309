"""``memory://``: L2 in this process's memory (tests, single-process apps).

Bounded by ``?max_entries=`` (default 100,000; the oldest write goes first). Nothing is
shared with other processes, so there is no invalidation channel to listen to.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from headway.cache.base import CacheBackend, Entry
from headway.cache.keys import glob_regex

if TYPE_CHECKING:
    from headway.connections import Connections


class MemoryCacheBackend(CacheBackend):
    shared = False

    def __init__(
        self, url: str = "memory://", connections: Connections | None = None, **kw: Any
    ) -> None:
        super().__init__(url, connections, **kw)
        query = parse_qs(urlsplit(url).query)
        self.max_entries = int(query.get("max_entries", ["100000"])[0])
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._tags: dict[str, set[str]] = {}

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item[0]

    def _put(self, key: str, value: bytes, ttl: float) -> None:
        self._data.pop(key, None)
        self._data[key] = (value, time.monotonic() + ttl)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    async def ping(self) -> None:
        return None

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self._live(key) for key in keys]

    async def set_many(self, entries: Sequence[Entry], *, notify: bytes | None = None) -> None:
        for entry in entries:
            self._put(entry.key, entry.value, entry.ttl)
            for tag in entry.tags:
                self._tags.setdefault(tag, set()).add(entry.key)

    async def delete_many(self, keys: Sequence[str], *, notify: bytes | None = None) -> int:
        return sum(self._data.pop(key, None) is not None for key in keys)

    async def invalidate_tags(self, tags: Sequence[str], *, notify: bytes | None = None) -> int:
        keys = {key for tag in tags for key in self._tags.pop(tag, set())}
        return await self.delete_many(sorted(keys))

    async def delete_matching(self, pattern: str, *, notify: bytes | None = None) -> int:
        match = glob_regex(pattern).fullmatch
        doomed = [k for k in self._data if match(k)]
        for tag in [t for t in self._tags if match(t)]:
            del self._tags[tag]
        return await self.delete_many(doomed)

    async def incr(self, key: str, delta: int, ttl: float | None) -> int:
        item = self._live(key)
        if item is not None and not item.lstrip(b"-").isdigit():
            raise ValueError(f"the value under {key!r} is not an integer")
        value = int(item) + delta if item is not None else delta
        expires = self._data[key][1] if item is not None else None
        remaining = (expires - time.monotonic()) if expires is not None else (ttl or 1e12)
        self._put(key, str(value).encode(), remaining)
        return value

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        self._put(key, value, ttl)
        return True

    async def release(self, key: str, value: bytes) -> bool:
        if self._live(key) != value:
            return False
        del self._data[key]
        return True

    async def info(self) -> dict[str, Any]:
        return {"backend": "memory", "entries": len(self._data), "tags": len(self._tags)}
