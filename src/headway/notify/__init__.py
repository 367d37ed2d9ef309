"""Notifications: email, Slack, Discord, HTTP push and SMS, sent as jobs.

::

    await hw.notify.set_preferences("acme", "42", {"execution.failed": ["email", "slack"]})
    await hw.notify.send(user="42", tenant="acme", event="execution.failed",
                         context={"execution_id": 7, "error": "timeout"})

A worker must serve the ``notifications`` queue.
"""

from __future__ import annotations

from headway.notify.channels import (
    Channel,
    DiscordChannel,
    EmailChannel,
    LogSmsProvider,
    PushChannel,
    SlackChannel,
    SmsChannel,
    SmsProvider,
)
from headway.notify.core import Notify
from headway.notify.models import (
    InvalidNotification,
    NotDeliverable,
    NotifyError,
    Queued,
    Recipient,
    Rendered,
)
from headway.notify.settings import NotifySettings

__all__ = [
    "Channel",
    "DiscordChannel",
    "EmailChannel",
    "InvalidNotification",
    "LogSmsProvider",
    "NotDeliverable",
    "Notify",
    "NotifyError",
    "NotifySettings",
    "PushChannel",
    "Queued",
    "Recipient",
    "Rendered",
    "SlackChannel",
    "SmsChannel",
    "SmsProvider",
]
