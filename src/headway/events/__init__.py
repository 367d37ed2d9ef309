"""Domain events, listeners and realtime fan-out (WebSocket / SSE).

::

    class PostPublished(Event):
        tenant_id: int
        post_id: int

        def channels(self) -> list[str]:
            return [f"tenant.{self.tenant_id}"]

    @hw.events.listener(PostPublished, queued=True, queue="events")
    async def update_sitemap(event: PostPublished) -> None: ...

    await hw.events.dispatch(PostPublished(tenant_id=1, post_id=7), session=session)

The fan-out backend is ``HEADWAY_EVENTS_URL`` (``memory://``, ``redis://``,
``postgresql://``); clients connect to ``/realtime/ws`` or ``/realtime/sse``.
"""

from __future__ import annotations

from headway import registry
from headway.events.base import EventBackend, Message, Offset, Replay
from headway.events.core import Events, Listener, UnknownListener
from headway.events.model import Event, EventError, encode, event_name, register_event
from headway.events.settings import EventsSettings

registry.register("events", "memory", "headway.events.backends.memory:MemoryEventBackend")
for _scheme in ("redis", "rediss", "unix"):
    registry.register(
        "events", _scheme, "headway.events.backends.redis:RedisEventBackend", extra="redis"
    )
for _scheme in ("postgresql", "postgres"):
    registry.register(
        "events", _scheme, "headway.events.backends.postgres:PostgresEventBackend", extra="postgres"
    )

__all__ = [
    "Event",
    "EventBackend",
    "EventError",
    "Events",
    "EventsSettings",
    "Listener",
    "Message",
    "Offset",
    "Replay",
    "UnknownListener",
    "encode",
    "event_name",
    "register_event",
]
