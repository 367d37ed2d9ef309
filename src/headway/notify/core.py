"""The ``hw.notify`` capability: per-user notifications on the channels the user chose.

::

    @hw.notify.recipient_loader
    async def load_user(tenant: str, user_id: str) -> Recipient | None: ...

    await hw.notify.send(user="42", tenant="acme", event="execution.completed",
                         context={"execution_id": 7, "agent_name": "Writer"})

``send`` looks up the user's preferences, applies the per-user rate limit and enqueues
one job per channel on the ``notifications`` queue; the job renders the templates and
sends, with the job system's retries.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from headway.capability import Capability, Readiness
from headway.jobs import Backoff, EnqueueCall
from headway.jobs.task import CallOptions
from headway.notify.channels import (
    Channel,
    DiscordChannel,
    EmailChannel,
    PushChannel,
    SlackChannel,
    SmsChannel,
    load_provider,
)
from headway.notify.models import (
    InvalidNotification,
    NotDeliverable,
    Queued,
    Recipient,
    Rendered,
)
from headway.notify.prefs import ANY_EVENT, Preferences
from headway.notify.settings import NotifySettings
from headway.notify.templates import Templates
from headway.settings import load_section

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter

    from headway.hub import Headway

log = logging.getLogger("headway.notify")
SEND_TASK = "headway.notify.send"
RATE_POLICY = "notify.user"
_EVENT = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
Loader = Callable[[str, str], Awaitable[Recipient | None]]


class Notify(Capability):
    """``hw.notify``: see the module docstring."""

    name = "notify"

    def __init__(self, hw: Headway, settings: NotifySettings | None = None) -> None:
        super().__init__(hw)
        self.settings = s = settings or load_section(NotifySettings)
        self.templates = Templates(s.templates_dir)
        self.channels: dict[str, Channel] = {}
        self.loader: Loader | None = None
        self.sent: Counter | None = None
        self.limited: Counter | None = None
        self._prefs: Preferences | None = None
        self._client: httpx.AsyncClient | None = None
        hw.limits.policy(RATE_POLICY, s.rate_limit, scope="user")
        self.send_task = hw.jobs.task(
            self._deliver, name=SEND_TASK, queue=s.queue, retries=s.retries,
            backoff=Backoff(base=s.retry_delay, cap=max(s.retry_delay, 3600.0)),
            no_retry_on=(NotDeliverable, InvalidNotification),
        )  # fmt: skip

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._prefs is not None:
            return
        prefs = Preferences(self.hw.connections.engine())
        await prefs.create()
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        for channel in self._builtin_channels(self._client):
            self.channels.setdefault(channel.name, channel)
        self._prefs = prefs

    def _builtin_channels(self, client: httpx.AsyncClient) -> list[Channel]:
        from headway.webhooks.settings import WebhooksSettings
        from headway.webhooks.ssrf import Guard

        s = self.settings
        webhooks = self.hw.capabilities.get("webhooks")
        # the webhooks' guard (same allow-list), else one from HEADWAY_WEBHOOKS_ALLOW_HOSTS
        guard = getattr(webhooks, "guard", None) or Guard(
            load_section(WebhooksSettings).allow_hosts
        )
        out: list[Channel] = [
            PushChannel(client, _secret(s.push_url), s.http_timeout, guard),
            SmsChannel(load_provider(s.sms_provider, s)),
        ]
        if s.smtp_host:
            out.append(EmailChannel(s))
        if s.slack_webhook_url:
            out.append(SlackChannel(client, _secret(s.slack_webhook_url), s.http_timeout))
        if s.discord_webhook_url:
            out.append(DiscordChannel(client, _secret(s.discord_webhook_url), s.http_timeout))
        return out

    async def stop(self) -> None:
        client, self._client, self._prefs = self._client, None, None
        for channel in self.channels.values():
            await channel.close()
        if client is not None:
            await client.aclose()

    @property
    def prefs(self) -> Preferences:
        if self._prefs is None:
            raise RuntimeError("notify is not started: use `async with hw:`")
        return self._prefs

    def register_metrics(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter

        self.sent = Counter(
            "headway_notify_sent_total", "Notification sends by channel and outcome.",
            ["channel", "outcome"], registry=registry,
        )  # fmt: skip
        self.limited = Counter(
            "headway_notify_rate_limited_total", "Notifications dropped by the per-user limit.",
            registry=registry,
        )  # fmt: skip

    async def check_ready(self) -> Readiness | None:
        await self.prefs.channels_for("-", "-", ANY_EVENT)
        return Readiness(ok=True, detail={"channels": sorted(self.channels)}, critical=False)

    # -- configuration ------------------------------------------------------------------

    def add_channel(self, channel: Channel) -> Channel:
        """Add or replace a channel (``channel.name`` is what preferences name)."""
        if not channel.name:
            raise ValueError("a channel needs a name")
        self.channels[channel.name] = channel
        return channel

    def recipient_loader(self, fn: Loader) -> Loader:
        """Decorator: ``async def load(tenant, user_id) -> Recipient | None`` (addresses of
        users that :meth:`send` gets by id)."""
        self.loader = fn
        return fn

    async def set_preferences(
        self, tenant: str, user: str, preferences: Mapping[str, Sequence[str]]
    ) -> dict[str, list[str]]:
        """Replace the user's preferences: ``{event or "*": [channel, ...]}``."""
        clean: dict[str, list[str]] = {}
        if len(preferences) > 200:
            raise InvalidNotification("at most 200 events per user")
        for event, channels in preferences.items():
            if event != ANY_EVENT:
                _check_event(event)
            clean[event] = self._check_channels(channels)
        await self.prefs.replace(_id(tenant, "tenant"), _id(user, "user"), clean)
        return clean

    async def get_preferences(self, tenant: str, user: str) -> dict[str, list[str]]:
        return await self.prefs.get(_id(tenant, "tenant"), _id(user, "user"))

    def _check_channels(self, channels: Sequence[str]) -> list[str]:
        if isinstance(channels, str) or not all(isinstance(c, str) for c in channels):
            raise InvalidNotification("channels are a list of names")
        known = set(self.channels) | {"email", "slack", "discord", "push", "sms"}
        unknown = sorted(set(channels) - known)
        if unknown:
            raise InvalidNotification(f"unknown channels {unknown}; known: {sorted(known)}")
        return list(dict.fromkeys(channels))

    # -- sending ------------------------------------------------------------------------

    async def send(
        self, *, user: Recipient | str | int, tenant: str | int, event: str,
        context: Mapping[str, Any] | None = None, channels: Sequence[str] | None = None,
    ) -> Queued:  # fmt: skip
        """Notify ``user`` of ``event``: one job per channel of the user's preferences
        (``channels`` overrides them), within the per-user rate limit."""
        tenant_id = _id(tenant, "tenant")
        _check_event(event)
        data = _context(context)
        recipient = await self._recipient(tenant_id, user)
        wanted = await self._wanted(tenant_id, recipient.id, event, channels)
        ready = [c for c in wanted if c in self.channels]
        skipped = [c for c in wanted if c not in self.channels]
        if not ready:
            return Queued([], skipped=skipped)
        decision = await self.hw.limits.hit(RATE_POLICY, recipient.id, tenant=tenant_id)
        if not decision.allowed:
            if self.limited is not None:
                self.limited.inc()
            log.info("notification %s to user %s of tenant %s dropped by the rate limit",
                     event, recipient.id, tenant_id)  # fmt: skip
            return Queued([], rate_limited=True, skipped=skipped)
        await self.hw.jobs.enqueue_many(
            EnqueueCall(SEND_TASK, (name, tenant_id, recipient.as_json(), event, data), {},
                        CallOptions(tenant=tenant_id, user_id=recipient.id))
            for name in ready
        )  # fmt: skip
        return Queued(ready, skipped=skipped)

    async def _recipient(self, tenant: str, user: Recipient | str | int) -> Recipient:
        if isinstance(user, Recipient):
            return user
        user_id = _id(user, "user")
        found = await self.loader(tenant, user_id) if self.loader is not None else None
        return found or Recipient(user_id)

    async def _wanted(
        self, tenant: str, user: str, event: str, channels: Sequence[str] | None
    ) -> list[str]:
        if channels is not None:
            return self._check_channels(channels)
        chosen = await self.prefs.channels_for(tenant, user, event)
        return list(self.settings.default_channels) if chosen is None else chosen

    def render(self, event: str, context: Mapping[str, Any], recipient: Recipient) -> Rendered:
        data = {"recipient_name": recipient.name, **context}
        return self.templates.render(event, data)

    async def _deliver(
        self, channel: str, tenant: str, recipient: dict[str, Any], event: str,
        context: dict[str, Any],
    ) -> dict[str, Any]:  # fmt: skip
        target = self.channels.get(channel)
        if target is None:
            raise NotDeliverable(f"no channel {channel!r} in this process")
        who = Recipient.from_json(recipient)
        try:
            await target.send(who, self.render(event, context, who), tenant)
        except NotDeliverable:
            self._count(channel, "not_deliverable")
            raise
        except Exception:
            self._count(channel, "error")
            raise
        self._count(channel, "sent")
        return {"channel": channel, "sent": True}

    def _count(self, channel: str, outcome: str) -> None:
        if self.sent is not None:
            self.sent.labels(channel, outcome).inc()


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value()) or None


def _id(value: Any, what: str) -> str:
    text = str(value)
    if not text or len(text) > 200:
        raise InvalidNotification(f"a {what} id is 1-200 characters")
    return text


def _check_event(event: str) -> None:
    if not isinstance(event, str) or not _EVENT.fullmatch(event):
        raise InvalidNotification(f"invalid event name {event!r}")


def _context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    data = dict(context or {})
    try:
        encoded = orjson.dumps(data)
    except TypeError as exc:
        raise InvalidNotification(f"the context is not JSON-serializable: {exc}") from None
    if len(encoded) > 64 * 1024:
        raise InvalidNotification("the context is larger than 64 KiB")
    return data
