"""The ``hw.webhooks`` capability: tenants' endpoints, signed deliveries as jobs, replay.

::

    endpoint = await hw.webhooks.create_endpoint("acme", "https://example.com/hook",
                                                 event_types=["execution.*"])
    await hw.webhooks.send("acme", "execution.completed", {"id": 42})

``send`` stores the message and enqueues one delivery job per subscribed endpoint on
the ``webhooks`` queue (job id = message + endpoint, so a repeated send enqueues
nothing twice). A delivery job makes one attempt; a failure raises
:class:`~headway.jobs.Retry` with the next delay of ``HEADWAY_WEBHOOKS_RETRY_SCHEDULE``.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from headway.capability import Capability, Readiness
from headway.jobs import EnqueueCall, Retry, current_job
from headway.jobs.task import CallOptions
from headway.settings import load_section
from headway.webhooks import delivery, signing
from headway.webhooks.models import (
    Delivery,
    Endpoint,
    EndpointNotFound,
    InvalidEndpoint,
    Message,
    MessageNotFound,
    TooManyEndpoints,
    WebhookError,
    subscribed,
)
from headway.webhooks.settings import WebhooksSettings
from headway.webhooks.ssrf import Guard, UnsafeURL
from headway.webhooks.store import WebhookStore

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from headway.hub import Headway
    from headway.webhooks.metrics import WebhookMetrics

log = logging.getLogger("headway.webhooks")
DELIVER_TASK = "headway.webhooks.deliver"
PRUNE_TASK = "headway.webhooks.prune"
DISABLED_EVENT = "webhook.endpoint_disabled"
MAX_REPLAY = 1000
_EVENT = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
_PATTERN = re.compile(r"\*|[A-Za-z0-9_.:-]{1,200}(\.\*)?")
OnDisabled = Callable[[Endpoint, str], Awaitable[None]]


class EndpointDisabled(WebhookError):
    """Replay asked of a disabled endpoint (enable it first)."""


class DeliveryFailed(WebhookError):
    """The last scheduled attempt failed; the job lands in the failed store."""


@dataclass(frozen=True, slots=True)
class Sent:
    """The outcome of :meth:`Webhooks.send`: the message id and the endpoints it goes to."""

    message_id: str
    endpoints: list[str]


class Webhooks(Capability):
    """``hw.webhooks``: see the module docstring."""

    name = "webhooks"

    def __init__(self, hw: Headway, settings: WebhooksSettings | None = None) -> None:
        super().__init__(hw)
        self.settings = s = settings or load_section(WebhooksSettings)
        self.guard = Guard(s.allow_hosts)
        self.on_disabled: list[OnDisabled] = [self._notify_owner]
        self.metrics: WebhookMetrics | None = None
        self._store: WebhookStore | None = None
        self._client: httpx.AsyncClient | None = None
        hw.notify  # noqa: B018  (created now: owners are told when an endpoint is disabled)
        self.deliver_task = hw.jobs.task(
            self._deliver, name=DELIVER_TASK, queue=s.queue,
            retries=len(s.retry_schedule) - 1, no_retry_on=(DeliveryFailed,),
        )  # fmt: skip
        hw.jobs.cron("17 * * * *", name=PRUNE_TASK, queue=s.queue)(self.prune)

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def store(self) -> WebhookStore:
        if self._store is None:
            raise RuntimeError("webhooks are not started: use `async with hw:`")
        return self._store

    async def start(self) -> None:
        if self._store is not None:
            return
        store = WebhookStore(self.hw.connections.engine())
        await store.create()
        self._client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=self.settings.timeout,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )  # fmt: skip
        self._store = store

    async def stop(self) -> None:
        client, self._client, self._store = self._client, None, None
        if client is not None:
            await client.aclose()

    def register_metrics(self, registry: CollectorRegistry) -> None:
        from headway.webhooks.metrics import WebhookMetrics

        self.metrics = WebhookMetrics(registry)

    async def refresh_metrics(self) -> None:
        if self.metrics is not None and self._store is not None:
            for state, count in (await self._store.count_endpoints()).items():
                self.metrics.endpoints.labels(state).set(count)

    async def check_ready(self) -> Readiness | None:
        counts = await self.store.count_endpoints()
        return Readiness(ok=True, detail={"endpoints": counts}, critical=False)

    # -- endpoints ----------------------------------------------------------------------

    async def create_endpoint(
        self, tenant: str, url: str, *, event_types: Sequence[str] | None = None,
        secret: str | None = None, description: str = "", owner: str | None = None,
    ) -> Endpoint:  # fmt: skip
        """Register an endpoint (URL checked by the SSRF guard); the answer holds its secret."""
        await self._check_url(url)
        now = time.time()
        values = {
            "id": "ep_" + secrets.token_hex(12), "tenant": _tenant(tenant), "url": url,
            "description": _description(description), "event_types": _types(event_types),
            "owner": _owner(owner), "secret": _secret(secret), "disabled": False,
            "failures": 0, "created_at": now, "updated_at": now,
        }  # fmt: skip
        if not await self.store.add_endpoint(values, self.settings.max_endpoints):
            raise TooManyEndpoints(
                f"a tenant has at most {self.settings.max_endpoints} webhook endpoints"
            )
        return await self.get_endpoint(tenant, str(values["id"]))

    async def get_endpoint(self, tenant: str, endpoint_id: str) -> Endpoint:
        endpoint = await self.store.get_endpoint(_tenant(tenant), str(endpoint_id))
        if endpoint is None:
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id!r}")
        return endpoint

    async def list_endpoints(self, tenant: str) -> list[Endpoint]:
        return await self.store.list_endpoints(_tenant(tenant))

    async def update_endpoint(
        self, tenant: str, endpoint_id: str, *, url: str | None = None,
        event_types: Sequence[str] | None = None, description: str | None = None,
        owner: str | None = None,
    ) -> Endpoint:  # fmt: skip
        """Change what is given (None = unchanged)."""
        values: dict[str, Any] = {}
        if url is not None:
            await self._check_url(url)
            values["url"] = url
        if event_types is not None:
            values["event_types"] = _types(event_types)
        if description is not None:
            values["description"] = _description(description)
        if owner is not None:
            values["owner"] = _owner(owner)
        return await self._update(tenant, endpoint_id, values)

    async def delete_endpoint(self, tenant: str, endpoint_id: str) -> None:
        """Delete the endpoint and its delivery log; its pending deliveries are skipped."""
        if not await self.store.delete_endpoint(_tenant(tenant), str(endpoint_id)):
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id!r}")

    async def rotate_secret(
        self, tenant: str, endpoint_id: str, secret: str | None = None
    ) -> Endpoint:
        """A new secret; the previous one keeps signing for ``rotation_overlap`` seconds."""
        current = await self.get_endpoint(tenant, endpoint_id)
        now = time.time()
        values = {
            "secret": _secret(secret), "previous_secret": current.secret,
            "previous_expires": now + self.settings.rotation_overlap,
        }  # fmt: skip
        return await self._update(tenant, endpoint_id, values)

    async def enable(self, tenant: str, endpoint_id: str) -> Endpoint:
        """Enable a disabled endpoint (consecutive failures reset); see :meth:`replay`."""
        values = {"disabled": False, "disabled_reason": None, "failures": 0}
        return await self._update(tenant, endpoint_id, values)

    async def disable(self, tenant: str, endpoint_id: str, reason: str = "manual") -> Endpoint:
        endpoint = await self.get_endpoint(tenant, endpoint_id)
        if await self.store.disable(endpoint.id, reason[:200], time.time()):
            self._count_disabled("manual")
        return await self.get_endpoint(tenant, endpoint_id)

    async def _update(self, tenant: str, endpoint_id: str, values: dict[str, Any]) -> Endpoint:
        values["updated_at"] = time.time()
        if not await self.store.update_endpoint(_tenant(tenant), str(endpoint_id), values):
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id!r}")
        return await self.get_endpoint(tenant, endpoint_id)

    async def _check_url(self, url: str) -> None:
        try:
            await self.guard.check(url)
        except UnsafeURL as exc:
            raise InvalidEndpoint(str(exc)) from None

    # -- sending ------------------------------------------------------------------------

    async def send(
        self, tenant: str, event_type: str, payload: Any, *, message_id: str | None = None
    ) -> Sent:
        """Deliver ``payload`` to every enabled endpoint of ``tenant`` subscribed to
        ``event_type``. ``message_id`` (``webhook-id``) makes a repeated call a no-op."""
        tenant = _tenant(tenant)
        if not isinstance(event_type, str) or not _EVENT.fullmatch(event_type):
            raise InvalidEndpoint(f"invalid event type {event_type!r}")
        msg_id = _message_id(message_id)
        endpoints = await self.store.list_endpoints(tenant)
        interested = [e for e in endpoints if e.subscribed(event_type)]
        if not interested:  # kept when only disabled endpoints want it: replay finds it
            return Sent(msg_id, [])
        message = Message(msg_id, tenant, event_type, self._body(event_type, payload), time.time())
        await self.store.add_message(message)
        targets = [e.id for e in interested if not e.disabled]
        await self._enqueue(tenant, msg_id, targets)
        if self.metrics is not None:
            self.metrics.messages.inc()
        return Sent(msg_id, targets)

    def _body(self, event_type: str, payload: Any) -> bytes:
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        try:
            body = orjson.dumps({"type": event_type, "timestamp": at, "data": payload})
        except TypeError as exc:
            raise InvalidEndpoint(f"the payload is not JSON-serializable: {exc}") from None
        if len(body) > self.settings.max_payload:
            raise InvalidEndpoint(f"the payload is larger than {self.settings.max_payload} bytes")
        return body

    async def _enqueue(
        self, tenant: str, msg_id: str, endpoint_ids: Sequence[str], suffix: str = ""
    ) -> None:
        delay = self.settings.retry_schedule[0]
        calls = [
            EnqueueCall(
                DELIVER_TASK, (tenant, endpoint_id, msg_id), {},
                CallOptions(job_id=f"wh-{msg_id}-{endpoint_id}{suffix}", tenant=tenant,
                            delay=delay),
            )
            for endpoint_id in endpoint_ids
        ]  # fmt: skip
        if calls:
            await self.hw.jobs.enqueue_many(calls)

    async def replay(
        self, tenant: str, endpoint_id: str, *, message_id: str | None = None,
        since: float | None = None, until: float | None = None,
    ) -> int:  # fmt: skip
        """Send one message again, or every subscribed message of [since, until) (UNIX
        seconds; at most 1000): the number of deliveries enqueued."""
        endpoint = await self.get_endpoint(tenant, endpoint_id)
        if endpoint.disabled:
            raise EndpointDisabled("the endpoint is disabled: enable it before a replay")
        if message_id is not None:
            message = await self.store.get_message(endpoint.tenant, message_id)
            if message is None:
                raise MessageNotFound(f"no message {message_id!r} (or it has expired)")
            found = [message]
        elif since is not None:
            end = time.time() + 1 if until is None else until
            batch = await self.store.messages_between(endpoint.tenant, since, end, MAX_REPLAY)
            found = [m for m in batch if subscribed(endpoint.event_types, m.event_type)]
        else:
            raise InvalidEndpoint("give message_id, or since (and optionally until)")
        suffix = "-r" + secrets.token_hex(6)
        for message in found:
            await self._enqueue(endpoint.tenant, message.id, [endpoint.id], suffix)
        return len(found)

    async def deliveries(
        self, tenant: str, endpoint_id: str, *, limit: int = 50, before: int | None = None,
        message_id: str | None = None,
    ) -> list[Delivery]:  # fmt: skip
        """The endpoint's delivery log, newest first (``before``: an id, for the next page)."""
        endpoint = await self.get_endpoint(tenant, endpoint_id)
        limit = max(1, min(int(limit), 500))
        return await self.store.deliveries(
            endpoint.tenant, endpoint.id, limit=limit, before=before, message_id=message_id
        )

    async def prune(self) -> int:
        """Apply the retention of the delivery log and messages (an hourly cron job)."""
        s = self.settings
        return await self.store.prune(time.time() - s.log_retention, s.log_keep)

    # -- the delivery job ---------------------------------------------------------------

    async def _deliver(self, tenant: str, endpoint_id: str, message_id: str) -> dict[str, Any]:
        endpoint = await self.store.get_endpoint(tenant, endpoint_id)
        if endpoint is None or endpoint.disabled:
            return {"outcome": "skipped", "reason": "endpoint deleted or disabled"}
        message = await self.store.get_message(tenant, message_id)
        if message is None:
            return {"outcome": "skipped", "reason": "message expired"}
        number = current_job().attempt
        result = await delivery.attempt(
            self._http(), self.guard, endpoint, message,
            limit=self.settings.timeout, excerpt=self.settings.excerpt_bytes,
        )  # fmt: skip
        await self._log(endpoint, message, number, result)
        if result.ok:
            if endpoint.failures:
                await self.store.record_success(endpoint.id)
            return {"outcome": "succeeded", "status": result.status_code}
        return await self._failed(endpoint, number, result)

    async def _failed(
        self, endpoint: Endpoint, number: int, result: delivery.Attempt
    ) -> dict[str, Any]:
        if result.kind == "gone":
            await self._disable(endpoint, "gone", "the endpoint answered 410 Gone")
            return {"outcome": "disabled", "status": 410}
        failures = await self.store.record_failure(endpoint.id, time.time())
        if failures >= self.settings.disable_after:
            reason = f"{failures} consecutive failed deliveries"
            await self._disable(endpoint, "failures", reason)
            return {"outcome": "disabled", "failures": failures}
        schedule = self.settings.retry_schedule
        if number < len(schedule):
            raise Retry(delay=schedule[number], reason=result.error or result.kind)
        raise DeliveryFailed(f"last attempt ({number}) failed: {result.error}")

    async def _log(
        self, endpoint: Endpoint, message: Message, number: int, result: delivery.Attempt
    ) -> None:
        row = {
            "endpoint_id": endpoint.id, "message_id": message.id,
            "event_type": message.event_type, "attempt": number, "outcome": result.outcome,
            "status_code": result.status_code, "latency_ms": result.latency * 1000,
            "response": result.response, "error": result.error, "created_at": time.time(),
        }  # fmt: skip
        await self.store.log(endpoint.tenant, [row])
        if self.metrics is not None:
            self.metrics.deliveries.labels(result.kind).inc()
            if result.status_code is not None:
                self.metrics.latency.observe(result.latency)

    async def _disable(self, endpoint: Endpoint, kind: str, reason: str) -> None:
        if not await self.store.disable(endpoint.id, reason, time.time()):
            return  # already disabled (by another worker): its owner was told then
        self._count_disabled(kind)
        log.warning("webhook endpoint %s of tenant %s disabled: %s", endpoint.id,
                    endpoint.tenant, reason)  # fmt: skip
        for hook in self.on_disabled:
            try:
                await hook(endpoint, reason)
            except Exception:
                log.exception("on_disabled hook %r raised", hook)

    async def _notify_owner(self, endpoint: Endpoint, reason: str) -> None:
        if endpoint.owner is None:
            return
        context = {"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason,
                   "description": endpoint.description}  # fmt: skip
        await self.hw.notify.send(
            user=endpoint.owner, tenant=endpoint.tenant, event=DISABLED_EVENT, context=context
        )

    def _count_disabled(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.disabled.labels(kind).inc()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("webhooks are not started: use `async with hw:`")
        return self._client


# -- validation ---------------------------------------------------------------------------


def _tenant(tenant: Any) -> str:
    value = str(tenant)
    if not value or len(value) > 200:
        raise InvalidEndpoint("a tenant is 1-200 characters")
    return value


def _types(event_types: Sequence[str] | None) -> str:
    values = list(event_types or [])
    if len(values) > 100:
        raise InvalidEndpoint("at most 100 event types per endpoint")
    for value in values:
        if not isinstance(value, str) or not _PATTERN.fullmatch(value):
            raise InvalidEndpoint(
                f"invalid event type {value!r}: a name, a prefix like `execution.*`, or `*`"
            )
    return orjson.dumps(sorted(set(values))).decode()


def _description(text: str) -> str:
    if not isinstance(text, str) or len(text) > 500:
        raise InvalidEndpoint("a description is at most 500 characters")
    return text


def _owner(owner: str | None) -> str | None:
    if owner is None:
        return None
    value = str(owner)
    if not value or len(value) > 200:
        raise InvalidEndpoint("an owner is 1-200 characters")
    return value


def _secret(secret: str | None) -> str:
    if secret is None:
        return signing.generate_secret()
    try:
        signing.secret_key(secret)
    except signing.InvalidSecret as exc:
        raise InvalidEndpoint(str(exc)) from None
    return secret


def _message_id(message_id: str | None) -> str:
    if message_id is None:
        return "msg_" + secrets.token_hex(12)
    if not isinstance(message_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", message_id):
        raise InvalidEndpoint("a message id is 1-64 of A-Z a-z 0-9 _ -")
    return message_id
