"""The hub's own admin endpoints (capabilities add theirs to ``hw.admin_router``)."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from headway.constants import BUILTIN_CAPABILITIES
from headway.settings import SECTIONS, Settings, load_section, public_view

if TYPE_CHECKING:
    from headway.hub import Headway


def config_view(settings: Settings) -> dict[str, Any]:
    """Every effective setting, the capabilities' sections included, secrets masked."""
    for target in BUILTIN_CAPABILITIES.values():
        module = target.partition(":")[0]
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)  # registers the capability's settings section
    importlib.import_module("headway.dashboard")  # HEADWAY_DASHBOARD_*
    view = settings.public_view()
    for section in SECTIONS.values():
        view.update(public_view(load_section(section)))
    return view


def add_core_routes(hw: Headway) -> None:
    router = hw.admin_router

    @router.get("/config", summary="Effective settings, secrets masked")
    async def admin_config() -> dict[str, Any]:
        return config_view(hw.settings)

    @router.get("/checks", summary="Reachability of every configured backend")
    async def admin_checks() -> dict[str, Any]:
        results = await hw.connections.check_all()
        return {
            "ok": all(r.ok for r in results),
            "checks": [asdict(r) for r in results],
            "capabilities": sorted(hw.capabilities),
        }
