"""Where alerts go: Slack, Discord, a generic JSON webhook, e-mail.

Each notifier turns an :class:`AlertEvent` into its service's own message format. A
delivery that fails is logged (without the URL: webhook URLs are credentials) and does
not stop the others.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import httpx
import orjson

from headway.observe.alerts import AlertEvent

__all__ = [
    "DiscordNotifier",
    "EmailNotifier",
    "Notifier",
    "SlackNotifier",
    "WebhookNotifier",
    "send_all",
]

log = logging.getLogger("headway.observe.alerts")
TIMEOUT = 10.0
_COLORS = {"resolved": 0x2EB67D, "critical": 0xE01E5A, "warning": 0xECB22E, "info": 0x36C5F0}
_EMOJI = {"resolved": ":white_check_mark:", "critical": ":rotating_light:", "warning": ":warning:"}


class Notifier(Protocol):
    name: str

    async def send(self, event: AlertEvent) -> None: ...


def _color(event: AlertEvent) -> int:
    return _COLORS["resolved"] if event.status == "resolved" else _COLORS.get(event.severity, 0)


def _value(event: AlertEvent) -> str:
    return "no data" if event.value is None else f"{event.value:.4g}"


class _HttpNotifier:
    name = "webhook"

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url
        self.client = client

    def body(self, event: AlertEvent) -> dict[str, Any]:
        raise NotImplementedError

    def headers(self, payload: bytes) -> dict[str, str]:
        return {"content-type": "application/json"}

    async def send(self, event: AlertEvent) -> None:
        payload = orjson.dumps(self.body(event))
        response = await self.client.post(
            self.url, content=payload, headers=self.headers(payload), timeout=TIMEOUT
        )
        response.raise_for_status()


class SlackNotifier(_HttpNotifier):
    """Slack incoming webhook: ``text`` (fallback) plus Block Kit blocks."""

    name = "slack"

    def body(self, event: AlertEvent) -> dict[str, Any]:
        key = "resolved" if event.status == "resolved" else event.severity
        fields = [
            {"type": "mrkdwn", "text": f"*Severity*\n{event.severity}"},
            {"type": "mrkdwn", "text": f"*Value*\n{_value(event)}"},
            {"type": "mrkdwn", "text": f"*Threshold*\n{event.op} {event.threshold:g}"},
            {"type": "mrkdwn", "text": f"*Status*\n{event.status}"},
        ]
        return {
            "text": event.text(),
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"{_EMOJI.get(key, '')} *{event.title()}*"},
                },
                {"type": "section", "fields": fields},
            ],
        }


class DiscordNotifier(_HttpNotifier):
    """Discord webhook: ``content`` plus one embed, colored by severity."""

    name = "discord"

    def body(self, event: AlertEvent) -> dict[str, Any]:
        data = event.as_json()
        return {
            "username": "headway",
            "content": event.title(),
            "embeds": [
                {
                    "title": event.title()[:256],
                    "description": event.summary or event.rule,
                    "color": _color(event),
                    "timestamp": data["at"],
                    "fields": [
                        {"name": "Severity", "value": event.severity, "inline": True},
                        {"name": "Value", "value": _value(event), "inline": True},
                        {
                            "name": "Threshold",
                            "value": f"{event.op} {event.threshold:g}",
                            "inline": True,
                        },
                    ],
                }
            ],
        }


class WebhookNotifier(_HttpNotifier):
    """Generic JSON webhook: the event as JSON, optionally HMAC-SHA256 signed."""

    name = "webhook"

    def __init__(self, url: str, client: httpx.AsyncClient, secret: str | None = None) -> None:
        super().__init__(url, client)
        self.secret = secret

    def body(self, event: AlertEvent) -> dict[str, Any]:
        return {"source": "headway", **event.as_json()}

    def headers(self, payload: bytes) -> dict[str, str]:
        headers = super().headers(payload)
        if self.secret:
            digest = hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()
            headers["x-headway-signature"] = f"sha256={digest}"
        return headers


class EmailNotifier:
    """E-mail through SMTP (stdlib smtplib, in a thread).

    ``smtp://user:password@host:port``: STARTTLS when the server offers it;
    ``smtps://...``: TLS from the first byte.
    """

    name = "email"

    def __init__(self, url: str, sender: str, recipients: list[str]) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.recipients = recipients

    def message(self, event: AlertEvent) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = event.title()
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        lines = [f"{k}: {v}" for k, v in event.as_json().items()]
        msg.set_content(event.text() + "\n\n" + "\n".join(lines) + "\n")
        return msg

    async def send(self, event: AlertEvent) -> None:
        await asyncio.to_thread(self._send, self.message(event))

    def _send(self, msg: EmailMessage) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
        with smtp:
            smtp.ehlo()
            if not self.tls and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.user is not None:
                smtp.login(self.user, self.password or "")
            smtp.send_message(msg)


async def send_all(notifiers: list[Notifier], event: AlertEvent) -> dict[str, bool]:
    """Send ``event`` through every notifier concurrently; ``{name: delivered}``."""
    results = await asyncio.gather(*(n.send(event) for n in notifiers), return_exceptions=True)
    delivered: dict[str, bool] = {}
    for notifier, result in zip(notifiers, results, strict=True):
        delivered[notifier.name] = not isinstance(result, BaseException)
        if isinstance(result, BaseException):
            # never the exception text of an HTTP error: it quotes the (secret) URL
            log.warning(
                "alert %s (%s) not delivered by %s: %s",
                event.rule,
                event.status,
                notifier.name,
                type(result).__name__,
            )
    return delivered
