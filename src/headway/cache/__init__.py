"""Caching: two levels (in-process L1, shared L2), tenant keys, tags, stampede
protection, decorators, SQLAlchemy helpers, stats and graceful fallback.

::

    hw = Headway()                          # L2 from HEADWAY_CACHE_URL / HEADWAY_REDIS_URL
    user = await hw.cache.get_or_set(f"user:{uid}", lambda: load_user(uid),
                                     tags=[f"user:{uid}"], tenant=tenant_id)
    await hw.cache.invalidate_tags(f"user:{uid}", tenant=tenant_id)

    @hw.cache.cached(ttl=60, tags=["posts"], tenant="{tenant_id}")
    async def list_posts(tenant_id: int, page: int) -> list[dict]: ...
    await list_posts.invalidate(3, 1)

L2 backends: ``memory://``, ``sqlite:///path.db`` (the embedded default to share between
the processes of one machine) and ``redis://`` (many machines; L1 coherence over pub/sub).
"""

from __future__ import annotations

from headway import registry
from headway.cache.base import CacheBackend, Entry
from headway.cache.codec import CorruptValue
from headway.cache.core import TTL, Cache
from headway.cache.decorator import CachedFactory, CachedFunction
from headway.cache.keys import Tenant
from headway.cache.loading import Loader
from headway.cache.settings import CacheSettings
from headway.constants import REDIS_SCHEMES

registry.register("cache", "memory", "headway.cache.backends.memory:MemoryCacheBackend")
registry.register("cache", "sqlite", "headway.cache.backends.sqlite:SqliteCacheBackend")
for _scheme in REDIS_SCHEMES:
    registry.register(
        "cache", _scheme, "headway.cache.backends.redis:RedisCacheBackend", extra="redis"
    )

__all__ = [
    "TTL",
    "Cache",
    "CacheBackend",
    "CacheSettings",
    "CachedFactory",
    "CachedFunction",
    "CorruptValue",
    "Entry",
    "Loader",
    "Tenant",
]
