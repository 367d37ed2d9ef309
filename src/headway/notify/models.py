"""Recipients, rendered messages and the notification errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from headway.errors import HeadwayError


class NotifyError(HeadwayError):
    """Base class of the notification errors."""


class InvalidNotification(NotifyError, ValueError):
    """A bad event name, channel, preference or context (the message says which)."""


class NotDeliverable(NotifyError):
    """The recipient has no address for this channel, or the channel is not configured;
    the send is not retried."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a notification goes to. Addresses are optional: a channel without its address
    is skipped. ``push_url``: this user's generic HTTP push endpoint."""

    id: str
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    push_url: str | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recipient:
        def opt(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(str(data["id"]), opt("email"), opt("phone"), opt("name"), opt("push_url"))


@dataclass(frozen=True, slots=True)
class Rendered:
    """A notification rendered from its templates."""

    event: str
    subject: str
    text: str
    html: str
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Queued:
    """The outcome of :meth:`Notify.send`: the channels enqueued, or why none were."""

    channels: list[str]
    rate_limited: bool = False
    skipped: list[str] = field(default_factory=list)  # wanted, but not configured
