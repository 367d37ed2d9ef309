"""Operational helpers shared by the CLI, ``headway check`` and the dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headway.cache.core import Cache

GOOD_POLICIES = frozenset(
    {"allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu", "volatile-ttl"}
)


def eviction_warning(policy: str | None) -> str | None:
    """A warning when Redis would answer a full memory with errors instead of evicting."""
    if policy is None or policy in GOOD_POLICIES:
        return None
    return (
        f"Redis maxmemory-policy is {policy!r}: when memory is full, cache writes fail "
        "instead of evicting old entries; set it to allkeys-lru or allkeys-lfu"
    )


async def describe(cache: Cache) -> dict[str, Any]:
    """Backend facts plus this process's counters; a down backend is reported, not raised."""
    try:
        info = await cache.backend.info()
    except Exception as exc:
        info = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    warning = eviction_warning(info.get("maxmemory_policy"))
    return {"url": cache.url, "backend": info, "warning": warning, "process": cache.stats()}
