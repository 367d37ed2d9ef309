"""Outgoing webhooks to tenants' endpoints, signed per the Standard Webhooks spec.

::

    ep = await hw.webhooks.create_endpoint("acme", "https://example.com/hook",
                                           event_types=["execution.*"], owner="42")
    await hw.webhooks.send("acme", "execution.completed", {"execution_id": 7})
    await hw.webhooks.replay("acme", ep.id, since=time.time() - 3600)

Deliveries run as jobs on the ``webhooks`` queue (a worker must serve it).
"""

from __future__ import annotations

from headway.webhooks.core import DeliveryFailed, EndpointDisabled, Sent, Webhooks
from headway.webhooks.models import (
    Delivery,
    Endpoint,
    EndpointNotFound,
    InvalidEndpoint,
    Message,
    MessageNotFound,
    TooManyEndpoints,
    WebhookError,
)
from headway.webhooks.settings import WebhooksSettings
from headway.webhooks.signing import generate_secret, sign, signature_header
from headway.webhooks.ssrf import Guard, UnsafeURL

__all__ = [
    "Delivery",
    "DeliveryFailed",
    "Endpoint",
    "EndpointDisabled",
    "EndpointNotFound",
    "Guard",
    "InvalidEndpoint",
    "Message",
    "MessageNotFound",
    "Sent",
    "TooManyEndpoints",
    "UnsafeURL",
    "WebhookError",
    "Webhooks",
    "WebhooksSettings",
    "generate_secret",
    "sign",
    "signature_header",
]
