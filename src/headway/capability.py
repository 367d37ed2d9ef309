"""The one interface through which a capability plugs into the hub.

The hub knows nothing about jobs, caches or limits: it starts, stops and installs
whatever :class:`Capability` objects were added to it, in the order they were added
(and stops them in reverse).

Observability goes through the same interface: :mod:`headway.observe` knows no
capability, it calls :meth:`Capability.register_metrics`, :meth:`Capability.refresh_metrics`
and :meth:`Capability.check_ready` on each one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from starlette.applications import Starlette

    from headway.hub import Headway


@dataclass(frozen=True, slots=True)
class Readiness:
    """What a capability's readiness check answers (see :meth:`Capability.check_ready`).

    ``ok``: the backend answered. ``detail``: small JSON-able facts shown to admins
    (``{"queues": {"default": 12}}``). ``critical``: when False, a failure makes the
    service *degraded* instead of *down* (a cache outage slows requests, it does not
    break them). Latency and the capability's name are added by ``headway.observe``.
    """

    ok: bool
    detail: Mapping[str, Any] = field(default_factory=dict)
    critical: bool = True


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

    # -- observability hooks (called by headway.observe; all optional) ----------------

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """Create this capability's Prometheus metrics on ``registry``; called once per hub.

        Use prometheus_client's own classes with ``registry=registry`` and keep them on
        ``self``; names start with ``headway_<capability>_``, labels stay bounded (queue,
        policy, namespace: never a tenant, key or id). Metric objects are correct across
        several worker processes (multiprocess mode): give a Gauge the
        ``multiprocess_mode`` that merges it right (``"livesum"`` for per-process amounts,
        ``"mostrecent"`` for a shared value read from Redis/SQL)::

            def register_metrics(self, registry: CollectorRegistry) -> None:
                self.m_done = Counter("headway_jobs_completed_total", "Jobs finished.",
                                      ["queue", "outcome"], registry=registry)
                self.m_pending = Gauge("headway_jobs_pending", "Jobs waiting per queue.",
                                       ["queue"], registry=registry,
                                       multiprocess_mode="mostrecent")

            # hot path:
            self.m_done.labels(queue, "ok").inc()

        A custom collector (an object with ``collect()``) may be registered with
        ``registry.register(collector)``; it is read in the scraping process only.
        """

    async def refresh_metrics(self) -> None:
        """Update sampled gauges (queue sizes, breaker states) before a scrape or an alert
        evaluation; the I/O-bound counterpart of :meth:`register_metrics`. Bounded by
        ``HEADWAY_OBSERVE_CHECK_TIMEOUT``; an exception is logged and the scrape goes on::

            async def refresh_metrics(self) -> None:
                for queue, size in (await self.backend.sizes()).items():
                    self.m_pending.labels(queue).set(size)
        """

    async def check_ready(self) -> Readiness | None:
        """Readiness of this capability's backend, for ``/health/ready``; None = nothing
        to check (the default). Cheap (one round trip), never more than
        ``HEADWAY_OBSERVE_CHECK_TIMEOUT``: a timeout or an exception counts as not ok::

            async def check_ready(self) -> Readiness | None:
                sizes = await self.backend.sizes()
                return Readiness(ok=True, detail={"queues": sizes})
        """
        return None
