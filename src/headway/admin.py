"""The hub's own admin endpoints (capabilities add theirs to ``hw.admin_router``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headway.hub import Headway


def add_core_routes(hw: Headway) -> None:
    router = hw.admin_router

    @router.get("/config", summary="Effective settings, secrets masked")
    async def admin_config() -> dict[str, Any]:
        return hw.settings.public_view()

    @router.get("/checks", summary="Reachability of every configured backend")
    async def admin_checks() -> dict[str, Any]:
        results = await hw.connections.check_all()
        return {
            "ok": all(r.ok for r in results),
            "checks": [asdict(r) for r in results],
            "capabilities": sorted(hw.capabilities),
        }
