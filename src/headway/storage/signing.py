"""HMAC-signed URLs for the ``file://`` backend, served by headway's own route.

``/_headway/storage/<key>?method=GET&expires=<unix>&sig=<hex>``: the signature covers the
method, the key and the expiry with the hub's secret (``hw.settings.secret_bytes()``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

ROUTE_PREFIX = "/_headway/storage"


def signature(secret: bytes, method: str, key: str, expires: int) -> str:
    message = f"{method}\n{key}\n{expires}".encode("utf-8", "surrogatepass")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signed_path(
    secret: bytes, method: str, key: str, expires_in: int, now: float | None = None
) -> str:
    expires = int((time.time() if now is None else now) + expires_in)
    sig = signature(secret, method, key, expires)
    return f"{ROUTE_PREFIX}/{quote(key)}?method={method}&expires={expires}&sig={sig}"


def verify(secret: bytes, method: str, key: str, expires: str, sig: str) -> bool:
    """True when ``sig`` is this key's signature for ``method`` and it has not expired."""
    try:
        when = int(expires)
    except ValueError:
        return False
    expected = signature(secret, method, key, when)
    return hmac.compare_digest(expected, sig) and when >= time.time()
