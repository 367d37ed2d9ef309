"""What the webhook API returns: endpoints, messages, delivery-log rows, and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from headway.errors import HeadwayError

ALL_EVENTS = "*"


class WebhookError(HeadwayError):
    """Base class of the webhook capability's typed errors."""


class EndpointNotFound(WebhookError, LookupError):
    """No endpoint with this id for this tenant (another tenant's endpoint included)."""


class MessageNotFound(WebhookError, LookupError):
    """No message with this id for this tenant."""


class InvalidEndpoint(WebhookError, ValueError):
    """A bad URL, event type list, secret or description (the message says which)."""


class TooManyEndpoints(WebhookError):
    """The tenant already has ``HEADWAY_WEBHOOKS_MAX_ENDPOINTS`` endpoints."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A tenant's endpoint. ``secret`` never appears in reprs or logs."""

    id: str
    tenant: str
    url: str
    description: str
    event_types: list[str]
    owner: str | None
    disabled: bool
    disabled_reason: str | None
    failures: int
    created_at: float
    updated_at: float
    secret: str = field(repr=False)
    previous_secret: str | None = field(default=None, repr=False)
    previous_expires: float | None = None

    def subscribed(self, event_type: str) -> bool:
        return subscribed(self.event_types, event_type)

    def live_secrets(self, now: float) -> list[str]:
        """The current secret, plus the previous one while the rotation overlap lasts."""
        out = [self.secret]
        if self.previous_secret and (self.previous_expires or 0) > now:
            out.append(self.previous_secret)
        return out

    def as_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "description": self.description,
            "event_types": self.event_types,
            "owner": self.owner,
            "disabled": self.disabled,
            "disabled_reason": self.disabled_reason,
            "consecutive_failures": self.failures,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if with_secret:
            data["secret"] = self.secret
        return data


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    tenant: str
    event_type: str
    payload: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to deliver a message to an endpoint (a delivery-log row)."""

    id: int
    endpoint_id: str
    message_id: str
    event_type: str
    attempt: int
    outcome: str  # succeeded | failed
    status_code: int | None
    latency_ms: float
    response: str
    error: str | None
    created_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint_id": self.endpoint_id,
            "message_id": self.message_id,
            "event_type": self.event_type,
            "attempt": self.attempt,
            "outcome": self.outcome,
            "status_code": self.status_code,
            "latency_ms": round(self.latency_ms, 3),
            "response": self.response,
            "error": self.error,
            "created_at": self.created_at,
        }


def subscribed(event_types: list[str], event_type: str) -> bool:
    """``*`` (or no filter) = every event; ``execution.*`` = a prefix; else an exact name."""
    if not event_types:
        return True
    for pattern in event_types:
        if pattern in (ALL_EVENTS, event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False
