"""The one interface through which a capability plugs into the hub.

The hub knows nothing about jobs, caches or limits: it starts, stops and installs
whatever :class:`Capability` objects were added to it, in the order they were added
(and stops them in reverse).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from headway.hub import Headway


class Capability:
    """Base class of a capability: override what you need, every hook is optional."""

    name: ClassVar[str] = ""

    def __init__(self, hw: Headway) -> None:
        self.hw = hw

    async def start(self) -> None:
        """Open backends, start background tasks. Called by ``async with hw``."""

    async def stop(self) -> None:
        """Undo :meth:`start`; must not raise for a capability that never started."""

    def install(self, app: Starlette) -> None:
        """Add routes (admin ones on ``self.hw.admin_router``) and middleware to ``app``."""
