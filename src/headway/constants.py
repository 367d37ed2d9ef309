"""Defaults and names shared across the package (one place, as in arq's constants)."""

from __future__ import annotations

ENV_PREFIX = "HEADWAY_"
DEFAULT_DATA_DIR = ".headway"
REDIS_KEY_PREFIX = "hw"
# URL schemes of Redis as the registry sees them (``redis+cluster://`` and
# ``redis+sentinel://`` count as ``redis``: the connection factory tells them apart).
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})

# Connection pools: values from a production checklist (pool max 50, connect 3 s, idle 30 s).
DEFAULT_POOL_SIZE = 10
DEFAULT_POOL_MAX = 50
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_IDLE_TIMEOUT = 30.0

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_APP = "headway.demo.app:app"

# Built-in capabilities, reachable as ``hw.<name>``: created (and added) on first use.
# A new capability is one line here plus its annotation on Headway (hub.py).
BUILTIN_CAPABILITIES: dict[str, str] = {
    "jobs": "headway.jobs:Jobs",
    "cache": "headway.cache:Cache",
    "limits": "headway.ratelimit:RateLimits",
    "breakers": "headway.resilience:Breakers",
    "flags": "headway.flags:Flags",
    "observe": "headway.observe:Observe",
    "db": "headway.db:Database",
    "storage": "headway.storage:Storage",
    "events": "headway.events:Events",
    "webhooks": "headway.webhooks:Webhooks",
    "notify": "headway.notify:Notify",
    "workflows": "headway.workflows:Workflows",
}
