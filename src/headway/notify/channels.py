"""Notification channels: one small class each, behind the :class:`Channel` interface.

A channel sends one rendered notification to one recipient. It raises
:class:`NotDeliverable` when the recipient has no address for it (never retried) and
any other exception for a failure worth retrying (the job's backoff does that).
"""

from __future__ import annotations

import abc
import importlib
import logging
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
import orjson

from headway.notify.models import NotDeliverable, Recipient, Rendered
from headway.notify.settings import NotifySettings

log = logging.getLogger("headway.notify")
SLACK_MAX = 3000
DISCORD_MAX = 2000
SMS_MAX = 1600


class Channel(abc.ABC):
    """Sends rendered notifications somewhere; ``name`` is what preferences refer to."""

    name: str = ""

    @abc.abstractmethod
    async def send(self, recipient: Recipient, message: Rendered, tenant: str) -> None:
        """Deliver ``message`` or raise (NotDeliverable: do not retry)."""

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections (called when the hub stops)."""


class EmailChannel(Channel):
    """E-mail over SMTP (aiosmtplib): a text part and an HTML alternative."""

    name = "email"

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    def message(self, recipient: Recipient, message: Rendered) -> EmailMessage:
        if not recipient.email:
            raise NotDeliverable(f"recipient {recipient.id} has no e-mail address")
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.settings.smtp_from
        mail["To"] = recipient.email
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        return mail

    async def send(self, recipient: Recipient, message: Rendered, tenant: str) -> None:
        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        await aiosmtplib.send(
            self.message(recipient, message),
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user or None,
            password=password if s.smtp_user else None,
            use_tls=s.smtp_tls == "tls",
            start_tls=None if s.smtp_tls == "starttls" else False,
            timeout=s.smtp_timeout,
        )


class _HttpChannel(Channel):
    def __init__(self, client: httpx.AsyncClient, url: str | None, timeout: float) -> None:
        self.client = client
        self.url = url
        self.timeout = timeout

    def target(self, recipient: Recipient) -> str:
        if not self.url:
            raise NotDeliverable(f"the {self.name} channel has no URL configured")
        return self.url

    def body(self, recipient: Recipient, message: Rendered, tenant: str) -> dict[str, Any]:
        raise NotImplementedError

    async def send(self, recipient: Recipient, message: Rendered, tenant: str) -> None:
        url = self.target(recipient)
        payload = orjson.dumps(self.body(recipient, message, tenant))
        try:
            response = await self.client.post(
                url, content=payload, headers={"content-type": "application/json"},
                timeout=self.timeout,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            # the type only: the message of some errors quotes the URL (a credential)
            raise ConnectionError(f"{self.name} unreachable: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            # never the URL in the error: Slack / Discord webhook URLs are credentials
            raise RuntimeError(f"{self.name} answered HTTP {response.status_code}")


class SlackChannel(_HttpChannel):
    """Slack incoming webhook (``HEADWAY_NOTIFY_SLACK_WEBHOOK_URL``): text + one section."""

    name = "slack"

    def body(self, recipient: Recipient, message: Rendered, tenant: str) -> dict[str, Any]:
        text = f"*{message.subject}*\n{message.text}"[:SLACK_MAX]
        return {
            "text": message.subject,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        }


class DiscordChannel(_HttpChannel):
    """Discord webhook (``HEADWAY_NOTIFY_DISCORD_WEBHOOK_URL``): content + one embed."""

    name = "discord"

    def body(self, recipient: Recipient, message: Rendered, tenant: str) -> dict[str, Any]:
        return {
            "username": "headway",
            "content": message.subject[:DISCORD_MAX],
            "embeds": [{"title": message.subject[:256], "description": message.text[:4000]}],
        }


class PushChannel(_HttpChannel):
    """Generic HTTP push: the notification as JSON to the recipient's ``push_url`` (else
    ``HEADWAY_NOTIFY_PUSH_URL``). A recipient's URL goes through the webhooks SSRF guard."""

    name = "push"

    def __init__(
        self, client: httpx.AsyncClient, url: str | None, timeout: float, guard: Any
    ) -> None:
        super().__init__(client, url, timeout)
        self.guard = guard

    async def send(self, recipient: Recipient, message: Rendered, tenant: str) -> None:
        if recipient.push_url:
            from headway.webhooks.ssrf import UnsafeURL

            try:
                await self.guard.check(recipient.push_url)
            except UnsafeURL as exc:
                raise NotDeliverable(f"push URL refused: {exc}") from None
        await super().send(recipient, message, tenant)

    def target(self, recipient: Recipient) -> str:
        return recipient.push_url or super().target(recipient)

    def body(self, recipient: Recipient, message: Rendered, tenant: str) -> dict[str, Any]:
        return {
            "event": message.event, "tenant": tenant, "user": recipient.id,
            "subject": message.subject, "text": message.text, "context": message.context,
        }  # fmt: skip


class SmsProvider(abc.ABC):
    """Sends one SMS. Real SMS needs a provider (Twilio, Vonage, SNS...): subclass this and
    set ``HEADWAY_NOTIFY_SMS_PROVIDER=module:Class`` (built with the NotifySettings)."""

    @abc.abstractmethod
    async def send_sms(self, phone: str, text: str) -> None: ...


class LogSmsProvider(SmsProvider):
    """The default: writes the SMS to the ``headway.notify`` log (number masked)."""

    def __init__(self, settings: NotifySettings | None = None) -> None:
        self.sent = 0

    async def send_sms(self, phone: str, text: str) -> None:
        self.sent += 1
        log.info("SMS (log provider, not sent) to ***%s: %s", phone[-2:], text)


def load_provider(spec: str, settings: NotifySettings) -> SmsProvider:
    if spec == "log":
        return LogSmsProvider(settings)
    module, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    provider = cls(settings)
    if not isinstance(provider, SmsProvider):
        raise TypeError(f"{spec} is not an SmsProvider")
    return provider


class SmsChannel(Channel):
    name = "sms"

    def __init__(self, provider: SmsProvider) -> None:
        self.provider = provider

    async def send(self, recipient: Recipient, message: Rendered, tenant: str) -> None:
        if not recipient.phone:
            raise NotDeliverable(f"recipient {recipient.id} has no phone number")
        text = f"{message.subject}\n{message.text}".strip()[:SMS_MAX]
        await self.provider.send_sms(recipient.phone, text)
