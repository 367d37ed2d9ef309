"""The ``hw.events`` capability: listeners, dispatch (after commit), realtime fan-out."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from headway import registry
from headway.capability import Capability, Readiness
from headway.errors import BackendUnavailableError
from headway.events.base import CHANNEL, NAME_RE, EventBackend, Message
from headway.events.fanout import Client, Fanout
from headway.events.model import EventError, Prepared, decode, known_event, prepare, register_event
from headway.events.settings import EventsSettings
from headway.settings import load_section, mask_url

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from starlette.applications import Starlette
    from starlette.requests import HTTPConnection

    from headway.events.metrics import EventMetrics
    from headway.hub import Headway

log = logging.getLogger("headway.events")
F = TypeVar("F", bound=Callable[..., Any])
Authorizer = Callable[["HTTPConnection", str], "bool | Awaitable[bool]"]
LISTENER_TASK = "headway.events.listener"


def _unavailable(exc: BaseException) -> bool:
    """A connection-level failure (server down, reset) rather than a bug."""
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    names = {k.__name__ for k in type(exc).__mro__}
    return any("Connection" in n for n in names) or bool(
        names & {"OperationalError", "InterfaceError", "CannotConnectNowError"}
    )


class UnknownListener(LookupError):
    """A queued listener's job names a listener this process does not declare."""


@dataclass(frozen=True, slots=True)
class Listener:
    fn: Callable[[Any], Any]
    event_type: type
    name: str
    queued: bool = False
    queue: str | None = None
    task: str | None = None


class Events(Capability):
    """Typed events, their listeners, and realtime channels (``hw.events``)."""

    name = "events"

    def __init__(
        self, hw: Headway, url: str | None = None, *, settings: EventsSettings | None = None
    ) -> None:
        super().__init__(hw)
        self.settings = settings or load_section(EventsSettings)
        self.url = url or hw.settings.backend_url("events")
        self.listeners: dict[str, Listener] = {}
        self.fanout = Fanout()
        self.metrics: EventMetrics | None = None
        self._by_type: dict[type, list[Listener]] = {}
        self._authorizer: Authorizer | None = None
        self._backend: EventBackend | None = None
        self._feed: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._outbox: deque[Prepared] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._installed: set[int] = set()
        self.fanout.on_change = self._connections_changed

    # -- lifecycle --------------------------------------------------------------------

    @property
    def backend(self) -> EventBackend:
        if self._backend is None:
            raise RuntimeError("events are not started: use `async with hw:` or `await hw.start()`")
        return self._backend

    async def start(self) -> None:
        if self._backend is not None:
            return
        cls = registry.resolve("events", self.url)
        backend: EventBackend = cls(self.url, self.hw.connections, self.settings)
        await backend.open()
        ready = asyncio.Event()

        def on_ready() -> None:
            ready.set()
            self.fanout.resync()

        self._feed = asyncio.create_task(backend.listen(self.fanout.deliver, on_ready))
        self._beat = asyncio.create_task(self.fanout.beat(self.settings.heartbeat))
        self._backend = backend
        wait = max(1.0, 2 * self.hw.settings.connect_timeout)
        try:
            async with asyncio.timeout(wait):
                await ready.wait()
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, TimeoutError):
                raise BackendUnavailableError(
                    f"events backend {mask_url(self.url)} did not answer within {wait:.0f} s"
                ) from None
            raise

    async def stop(self) -> None:
        self.fanout.close_all("shutdown")
        await self.drain()
        tasks = [t for t in (self._feed, self._beat) if t is not None]
        self._feed = self._beat = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        backend, self._backend = self._backend, None
        if backend is not None:
            await backend.close()

    def install(self, app: Starlette) -> None:
        """Add ``<HEADWAY_EVENTS_PATH>/ws`` and ``/sse`` to ``app``."""
        if id(app) in self._installed:
            return
        from headway.events.realtime import routes

        self._installed.add(id(app))
        app.router.routes.extend(routes(self))

    # -- declaring --------------------------------------------------------------------

    def listener(
        self,
        *event_types: type,
        queued: bool = False,
        queue: str | None = None,
        retries: int | None = None,
        name: str | None = None,
    ) -> Callable[[F], F]:
        """``@hw.events.listener(PostPublished)``; ``queued=True`` runs it as a job.

        A queued listener runs on ``queue`` (default ``HEADWAY_EVENTS_LISTENER_QUEUE``)
        with ``retries`` (default ``HEADWAY_EVENTS_LISTENER_RETRIES``) through ``hw.jobs``;
        the worker process must declare the same listener (import the same module).
        """
        if not event_types:
            raise TypeError("give the event class(es): @hw.events.listener(PostPublished)")
        for event_type in event_types:
            if not isinstance(event_type, type):
                raise TypeError(f"{event_type!r} is not an event class")
            register_event(event_type)
        if queue is not None:
            from headway.jobs.core import check_queue

            check_queue(queue)
        task = self._listener_task(retries) if queued or queue or retries is not None else None

        def register(fn: F) -> F:
            base = name or f"{fn.__module__}.{fn.__qualname__}"
            for i, event_type in enumerate(event_types):
                key = base if i == 0 else f"{base}[{event_type.__name__}]"
                if key in self.listeners:
                    raise ValueError(f"a listener named {key!r} is already registered")
                q = queue or self.settings.listener_queue
                self.listeners[key] = Listener(fn, event_type, key, task is not None, q, task)
            self._by_type.clear()
            return fn

        return register

    def _listener_task(self, retries: int | None) -> str:
        """The generic job task running queued listeners (one per retry count)."""
        from headway.jobs.core import check_queue

        check_queue(self.settings.listener_queue)
        retries = self.settings.listener_retries if retries is None else retries
        default = retries == self.settings.listener_retries
        task_name = LISTENER_TASK if default else f"{LISTENER_TASK}.r{retries}"
        jobs = self.hw.jobs
        if task_name not in jobs.tasks:
            jobs.task(
                self._run_listener,
                name=task_name,
                queue=self.settings.listener_queue,
                retries=retries,
                no_retry_on=(UnknownListener, EventError),
            )
        return task_name

    def authorize(self, fn: Authorizer) -> Authorizer:
        """``@hw.events.authorize``: ``fn(conn, channel) -> bool`` (sync or async).

        ``conn`` is the Starlette WebSocket or Request. Without an authorizer every
        channel is refused. Set ``conn.state.headway_tenant`` to label the connection
        gauge by tenant.
        """
        self._authorizer = fn
        return fn

    # -- dispatching ------------------------------------------------------------------

    async def dispatch(self, event: Any, *, session: Any = None) -> None:
        """Run the listeners of ``event`` and publish it to its channels.

        With ``session`` (an SQLAlchemy ``AsyncSession`` or ``Session``) nothing happens
        now: the event is delivered after that session's next commit, and discarded if
        it rolls back. Encoding and channel problems raise :class:`EventError` here.
        """
        prepared = prepare(event, self.settings.max_payload)
        if session is not None:
            self._defer(session, prepared)
            return
        await self._deliver(prepared)

    async def publish(self, channel: str, event: str, data: Any) -> Message:
        """Publish raw JSON-able ``data`` as ``event`` on ``channel`` (no listeners run)."""
        import orjson

        if not isinstance(channel, str) or not CHANNEL.fullmatch(channel):
            raise EventError(f"invalid channel {channel!r}: 1-100 of A-Z a-z 0-9 _ . : -")
        if not isinstance(event, str) or not NAME_RE.fullmatch(event):
            raise EventError(f"invalid event name {event!r}: 1-100 of A-Z a-z 0-9 _ . : -")
        try:
            raw = orjson.dumps(data) if not isinstance(data, bytes) else data
            if isinstance(data, bytes):
                orjson.loads(data)  # bytes must already be JSON
        except (TypeError, orjson.JSONDecodeError) as exc:
            raise EventError(f"the data of {event} is not JSON: {exc}") from None
        if len(raw) > self.settings.max_payload:
            raise EventError(f"{event} is {len(raw)} bytes, above HEADWAY_EVENTS_MAX_PAYLOAD")
        return await self._publish(channel, event, raw)

    async def _publish(self, channel: str, event: str, data: bytes) -> Message:
        try:
            msg = await self.backend.publish(channel, event, data)
        except Exception as exc:
            if _unavailable(exc):
                raise BackendUnavailableError(f"events backend unavailable: {exc}") from exc
            raise
        if self.metrics is not None:
            self.metrics.published.inc()
        return msg

    async def drain(self) -> None:
        """Wait for the deliveries scheduled by commits so far (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)

    def _defer(self, session: Any, prepared: Prepared) -> None:
        from sqlalchemy import event as sa_event

        sync = getattr(session, "sync_session", session)
        if not isinstance(getattr(sync, "info", None), dict):
            raise TypeError(f"session= takes an SQLAlchemy AsyncSession or Session, not {sync!r}")
        key = f"headway.events.{id(self)}"
        if key not in sync.info:
            sync.info[key] = []
            sa_event.listen(sync, "after_commit", lambda s: self._committed(s, key))
            sa_event.listen(sync, "after_rollback", lambda s: s.info[key].clear())
        sync.info[key].append(prepared)

    def _committed(self, sync: Any, key: str) -> None:
        pending = list(sync.info[key])
        sync.info[key].clear()
        if not pending:
            return
        self._outbox.extend(pending)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_committed())
            self._tasks.add(self._sender)
            self._sender.add_done_callback(self._tasks.discard)

    async def _send_committed(self) -> None:
        """Deliver committed events one at a time, in commit order (one task per hub)."""
        while self._outbox:
            prepared = self._outbox.popleft()
            try:
                await self._deliver(prepared)
            except Exception:
                log.exception("could not deliver %s after commit", prepared.name)

    async def _deliver(self, prepared: Prepared) -> None:
        if self.metrics is not None:
            self.metrics.dispatched.labels(prepared.name).inc()
        for channel in prepared.channels:
            await self._publish(channel, prepared.name, prepared.data)
        listeners = self._listeners_for(type(prepared.event))
        queued = [lis for lis in listeners if lis.queued]
        if queued:
            await self._enqueue(prepared, queued)
        for lis in listeners:
            if not lis.queued:
                await self._call_inline(lis, prepared)

    def _listeners_for(self, cls: type) -> list[Listener]:
        found = self._by_type.get(cls)
        if found is None:
            found = [lis for lis in self.listeners.values() if issubclass(cls, lis.event_type)]
            self._by_type[cls] = found
        return found

    async def _enqueue(self, prepared: Prepared, queued: list[Listener]) -> None:
        import orjson

        from headway.jobs import EnqueueCall
        from headway.jobs.task import CallOptions

        data = orjson.loads(prepared.data)
        tenant = getattr(prepared.event, "tenant_id", None)
        calls = [
            EnqueueCall(
                str(lis.task),
                (lis.name, prepared.name, data),
                {},
                CallOptions(queue=lis.queue, tenant=None if tenant is None else str(tenant)),
            )
            for lis in queued
        ]
        await self.hw.jobs.enqueue_many(calls)

    async def _call_inline(self, lis: Listener, prepared: Prepared) -> None:
        try:
            out = lis.fn(prepared.event)
            if inspect.isawaitable(out):
                await out
        except Exception:
            log.exception("listener %s raised on %s", lis.name, prepared.name)
            if self.metrics is not None:
                self.metrics.listener_errors.labels(prepared.name).inc()

    async def _run_listener(self, listener: str, event: str, data: dict[str, Any]) -> None:
        """The body of the generic job task: decode the event, call the listener."""
        lis = self.listeners.get(listener)
        if lis is None:
            raise UnknownListener(
                f"no listener {listener!r} in this process: declare it in the worker's app"
            )
        cls = known_event(event) or lis.event_type
        out = lis.fn(decode(cls, data))
        if inspect.isawaitable(out):
            await out

    # -- realtime helpers (used by headway.events.realtime) ---------------------------

    async def is_allowed(self, conn: HTTPConnection, channel: str) -> bool:
        if self._authorizer is None:
            log.warning("no @hw.events.authorize registered: channel %s refused", channel)
            return False
        out = self._authorizer(conn, channel)
        if inspect.isawaitable(out):
            out = await out
        return out is True

    def tenant_label(self, conn: HTTPConnection) -> str:
        if not self.settings.tenant_metrics:
            return "-"
        tenant = getattr(conn.state, "headway_tenant", None)
        return "-" if tenant is None else str(tenant)[:64]

    def connection_counts(self) -> dict[str, int]:
        """Open realtime connections in this process, per tenant label."""
        counts: dict[str, int] = {}
        for client in self.fanout.clients:
            counts[client.tenant] = counts.get(client.tenant, 0) + 1
        return counts

    def _connections_changed(self, client: Client, delta: int) -> None:
        if self.metrics is not None:
            self.metrics.connections.labels(client.transport, client.tenant).inc(delta)

    def count_drop(self, client: Client) -> None:
        if self.metrics is not None and client.dropped is not None:
            self.metrics.dropped.labels(client.transport, client.dropped).inc()

    def count_reset(self) -> None:
        if self.metrics is not None:
            self.metrics.resets.inc()

    # -- observability ----------------------------------------------------------------

    def register_metrics(self, registry: CollectorRegistry) -> None:
        from headway.events.metrics import EventMetrics

        self.metrics = EventMetrics(registry)

    async def check_ready(self) -> Readiness | None:
        await self.backend.ping()
        detail = {"backend": registry.scheme_of(self.url), "connections": len(self.fanout.clients)}
        return Readiness(ok=True, detail=detail, critical=False)
