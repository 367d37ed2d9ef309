"""Standard Webhooks signatures (https://www.standardwebhooks.com).

``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``, the key
being the base64-decoded part of the ``whsec_`` secret. During a secret rotation the
header carries one signature per live secret, separated by spaces; a receiver accepts
the message when any of them matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable

PREFIX = "whsec_"
KEY_BYTES = 24  # 192 bits, as the spec's examples


class InvalidSecret(ValueError):
    """A secret that is not ``whsec_`` + base64 of 24-64 bytes."""


def generate_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; InvalidSecret when malformed."""
    if not isinstance(secret, str) or not secret.startswith(PREFIX):
        raise InvalidSecret("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("a webhook secret is 'whsec_' + base64") from None
    if not 24 <= len(key) <= 64:
        raise InvalidSecret("a webhook secret holds 24 to 64 bytes (base64)")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` for ``msg_id`` sent at ``timestamp``."""
    to_sign = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    digest = hmac.new(secret_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per live secret, space-separated."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


def headers(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, msg_id, timestamp, body),
    }
