"""The reference service's breakers and default flags (public API only).

Called from :func:`headway.demo.app.create_app` before ``hub.install(app)``.
"""

from __future__ import annotations

from typing import Any

from headway import Headway

DEFAULT_FLAGS: list[dict[str, Any]] = [
    {"key": "core-api", "enabled": True, "description": "The public API."},
    {"key": "authentication", "enabled": True, "description": "API-key authentication."},
    {"key": "ai-recommendations", "enabled": False, "description": "AI recommendations."},
    {"key": "advanced-analytics", "enabled": False, "description": "Analytics dashboards."},
    {"key": "bulk-operations", "enabled": False, "description": "Bulk endpoints."},
    {"key": "vision-analysis", "rollout": 10, "description": "Image analysis (10 %)."},
    {"key": "mobile-app", "rollout": 5, "description": "Mobile app API (5 %)."},
    {"key": "use-read-replicas", "enabled": False, "description": "Route reads to replicas."},
    {"key": "enable-caching", "enabled": True, "description": "Response caching."},
    {"key": "maintenance-mode", "enabled": False, "description": "503 for all but health."},
]

# name -> policy options (the rest from HEADWAY_BREAKERS_*)
BREAKERS: dict[str, dict[str, Any]] = {
    "database": {"failure_threshold": 5, "open_timeout": 30, "call_timeout": 10},
    "external-api": {"failure_threshold": 5, "open_timeout": 60, "call_timeout": 15},
    "ai-provider": {
        "failure_threshold": 3,
        "open_timeout": 60,
        "call_timeout": 60,
        "slow_call_rate": 0.5,
        "slow_call_duration": 30,
    },
    "storage": {"failure_threshold": 5, "open_timeout": 30, "call_timeout": 30},
}


def install_resilience(hub: Headway) -> None:
    """Declare the four breakers and the default flags (seeded when absent)."""
    for name, options in BREAKERS.items():
        hub.breakers.breaker(name, **options)
    hub.flags.defaults(DEFAULT_FLAGS)
