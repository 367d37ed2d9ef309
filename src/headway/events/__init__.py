"""Domain events, listeners and realtime fan-out (WebSocket / SSE)."""

from __future__ import annotations

from headway.events.core import Events

__all__ = ["Events"]
