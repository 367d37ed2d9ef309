"""``sqlite:///path.db``: L2 in a SQLite file, the embedded default shared by every
process on one machine (schema in ``sql/sqlite_schema.sql``).

SQLite has no publish/subscribe: other processes' L1 entries are not told about an
invalidation and live out their (short) L1 TTL. Times are the machine's wall clock,
which every process that opens the file shares.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from headway.cache.base import CacheBackend, Entry
from headway.cache.keys import glob_regex

if TYPE_CHECKING:
    from headway.connections import Connections

SCHEMA = (Path(__file__).parent / "sql" / "sqlite_schema.sql").read_text(encoding="utf-8")
PURGE_EVERY = 500

_GET = text("SELECT key, value FROM headway_cache WHERE key IN :keys AND expires_at > :now")
_GET = _GET.bindparams(bindparam("keys", expanding=True))
_PUT = text(
    "INSERT INTO headway_cache (key, value, expires_at) VALUES (:key, :value, :exp) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)
_TAG = text(
    "INSERT INTO headway_cache_tags (tag, key, expires_at) VALUES (:tag, :key, :exp) "
    "ON CONFLICT (tag, key) DO UPDATE SET expires_at = excluded.expires_at"
)
_DEL = text("DELETE FROM headway_cache WHERE key IN :keys").bindparams(
    bindparam("keys", expanding=True)
)
_DEL_LIVE = text("DELETE FROM headway_cache WHERE key IN :keys AND expires_at > :now")
_DEL_LIVE = _DEL_LIVE.bindparams(bindparam("keys", expanding=True))
_TAGGED = text("SELECT DISTINCT key FROM headway_cache_tags WHERE tag IN :tags").bindparams(
    bindparam("tags", expanding=True)
)
_DEL_TAGS = text("DELETE FROM headway_cache_tags WHERE tag IN :tags").bindparams(
    bindparam("tags", expanding=True)
)
_ADD = text(
    "INSERT INTO headway_cache (key, value, expires_at) VALUES (:key, :value, :exp) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at "
    "WHERE headway_cache.expires_at <= :now"
)
_RELEASE = text(
    "DELETE FROM headway_cache WHERE key = :key AND value = :value AND expires_at > :now"
)
_DEL_EXPIRED = text("DELETE FROM headway_cache WHERE key = :key AND expires_at <= :now")
_ROW = text("SELECT value, expires_at FROM headway_cache WHERE key = :key")
_INT = re.compile(rb"-?\d+")


def _literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard, unescaped."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch in "*?[":
            break
        if ch == "\\" and i + 1 < len(pattern):
            i += 1
            ch = pattern[i]
        out.append(ch)
        i += 1
    return "".join(out)


class SqliteCacheBackend(CacheBackend):
    def __init__(self, url: str, connections: Connections | None = None, **kw: Any) -> None:
        super().__init__(url, connections, **kw)
        self._engine: AsyncEngine | None = None
        self._own_engine = connections is None
        self._ready = False
        self._lock = asyncio.Lock()
        self._writes = 0

    async def _db(self) -> AsyncEngine:
        if self._ready and self._engine is not None:
            return self._engine
        async with self._lock:
            if self._engine is None:
                self._engine = self._make_engine()
            if not self._ready:
                async with self._engine.begin() as conn:
                    for statement in _statements(SCHEMA):
                        await conn.exec_driver_sql(statement)
                self._ready = True
        return self._engine

    def _make_engine(self) -> AsyncEngine:
        if self.connections is not None:
            return self.connections.engine(self.url)
        from headway.connections.sql import make_engine
        from headway.settings import Settings

        return make_engine(self.url, Settings())

    async def close(self) -> None:
        if self._own_engine and self._engine is not None:
            await self._engine.dispose()
        self._engine, self._ready = None, False

    async def ping(self) -> None:
        await self._db()

    async def get(self, key: str) -> bytes | None:
        return (await self.get_many([key]))[0]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        async with (await self._db()).connect() as conn:
            rows = await conn.execute(_GET, {"keys": list(keys), "now": time.time()})
            found = {row[0]: bytes(row[1]) for row in rows}
        return [found.get(key) for key in keys]

    async def set_many(self, entries: Sequence[Entry], *, notify: bytes | None = None) -> None:
        if not entries:
            return
        db = await self._db()
        now = time.time()
        rows = [{"key": e.key, "value": e.value, "exp": now + e.ttl} for e in entries]
        tags = [{"tag": t, "key": e.key, "exp": now + e.ttl} for e in entries for t in e.tags]
        async with db.begin() as conn:
            await conn.execute(_PUT, rows)
            if tags:
                await conn.execute(_TAG, tags)
        await self._maybe_purge(len(rows))

    async def _maybe_purge(self, writes: int) -> None:
        self._writes += writes
        if self._writes < PURGE_EVERY:
            return
        self._writes = 0
        now = {"now": time.time()}
        async with (await self._db()).begin() as conn:
            await conn.execute(text("DELETE FROM headway_cache WHERE expires_at <= :now"), now)
            await conn.execute(text("DELETE FROM headway_cache_tags WHERE expires_at <= :now"), now)

    async def delete_many(self, keys: Sequence[str], *, notify: bytes | None = None) -> int:
        if not keys:
            return 0
        async with (await self._db()).begin() as conn:
            result = await conn.execute(_DEL_LIVE, {"keys": list(keys), "now": time.time()})
            await conn.execute(_DEL, {"keys": list(keys)})
        return int(result.rowcount)

    async def invalidate_tags(self, tags: Sequence[str], *, notify: bytes | None = None) -> int:
        if not tags:
            return 0
        async with (await self._db()).begin() as conn:
            keys = [k for (k,) in await conn.execute(_TAGGED, {"tags": list(tags)})]
            await conn.execute(_DEL_TAGS, {"tags": list(tags)})
        return await self.delete_many(keys) if keys else 0

    async def delete_matching(self, pattern: str, *, notify: bytes | None = None) -> int:
        lo = _literal_prefix(pattern)
        match = glob_regex(pattern).fullmatch
        bounds = {"lo": lo, "hi": lo + "\U0010ffff"}
        async with (await self._db()).begin() as conn:
            keys = await conn.execute(
                text("SELECT key FROM headway_cache WHERE key >= :lo AND key < :hi"), bounds
            )
            doomed = [k for (k,) in keys if match(k)]
            tags = await conn.execute(
                text("SELECT DISTINCT tag FROM headway_cache_tags WHERE tag >= :lo AND tag < :hi"),
                bounds,
            )
            doomed_tags = [t for (t,) in tags if match(t)]
            if doomed_tags:
                await conn.execute(_DEL_TAGS, {"tags": doomed_tags})
        return await self.delete_many(doomed) if doomed else 0

    async def incr(self, key: str, delta: int, ttl: float | None) -> int:
        db = await self._db()
        now = time.time()
        async with db.begin() as conn:
            # The DELETE opens the write transaction first, so concurrent incrs serialize.
            await conn.execute(_DEL_EXPIRED, {"key": key, "now": now})
            row = (await conn.execute(_ROW, {"key": key})).one_or_none()
            if row is not None and not _INT.fullmatch(bytes(row[0])):
                raise ValueError(f"the value under {key!r} is not an integer")
            value = delta + (int(bytes(row[0])) if row is not None else 0)
            exp = row[1] if row is not None else now + (ttl if ttl is not None else 1e12)
            await conn.execute(_PUT, {"key": key, "value": str(value).encode(), "exp": exp})
        return value

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        db = await self._db()
        now = time.time()
        params = {"key": key, "value": value, "exp": now + ttl, "now": now}
        async with db.begin() as conn:
            result = await conn.execute(_ADD, params)
        return bool(result.rowcount)

    async def release(self, key: str, value: bytes) -> bool:
        params = {"key": key, "value": value, "now": time.time()}
        async with (await self._db()).begin() as conn:
            result = await conn.execute(_RELEASE, params)
        return bool(result.rowcount)

    async def info(self) -> dict[str, Any]:
        async with (await self._db()).connect() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM headway_cache WHERE expires_at > :now"),
                {"now": time.time()},
            )
        return {"backend": "sqlite", "entries": int(count or 0)}


def _statements(script: str) -> list[str]:
    """The statements of a SQL file, comment lines removed."""
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in code.split(";") if part.strip()]
