"""Login credentials, the signed session cookie and CSRF tokens of the dashboard.

The session is a cookie holding ``{nonce, actor, expires}`` signed with HMAC-SHA256 under
a key derived from the hub's secret key *and* the configured credentials: rotating
``HEADWAY_ADMIN_TOKEN`` or the password hash ends every session. A visitor who has not
logged in gets an anonymous session (no actor), so that the login form carries a CSRF
token too. The CSRF token is an HMAC of the session's nonce; logging in issues a new
nonce (no session fixation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

HASH_SCHEME = "pbkdf2_sha256"
HASH_ITERATIONS = 600_000
COOKIE = "headway_admin"
FLASH_COOKIE = "headway_admin_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


# -- passwords -------------------------------------------------------------------------


def hash_password(password: str, *, iterations: int = HASH_ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hash>``, the form HEADWAY_DASHBOARD_PASSWORD_HASH
    takes."""
    if len(password) < 12:
        raise ValueError("use a password of at least 12 characters")
    salt = secrets.token_bytes(16)
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{HASH_SCHEME}${iterations}${_b64(salt)}${_b64(derived)}"


def parse_password_hash(text: str) -> tuple[int, bytes, bytes]:
    """``(iterations, salt, hash)``; ValueError naming the expected form otherwise."""
    parts = text.split("$")
    try:
        if len(parts) != 4 or parts[0] != HASH_SCHEME:
            raise ValueError
        iterations = int(parts[1])
        salt, derived = _unb64(parts[2]), _unb64(parts[3])
        if iterations < 1000 or len(salt) < 8 or len(derived) != 32:
            raise ValueError
    except ValueError:
        raise ValueError(
            "expected pbkdf2_sha256$<iterations>$<salt>$<hash> "
            "(print one with `python -m headway.dashboard hash-password`)"
        ) from None
    return iterations, salt, derived


def verify_password(password: str, stored: str) -> bool:
    iterations, salt, expected = parse_password_hash(stored)
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return hmac.compare_digest(derived, expected)


# -- sessions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    nonce: str
    actor: str | None  # None: not logged in (a login form's session)
    expires: float

    @property
    def authenticated(self) -> bool:
        return self.actor is not None and self.expires > time.time()


class Signer:
    """Signs sessions, flash messages and CSRF tokens with one derived key."""

    def __init__(self, secret: bytes, credentials: bytes) -> None:
        self.key = hmac.new(secret, b"headway.dashboard|" + credentials, hashlib.sha256).digest()

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self.key, purpose + b"|" + data, hashlib.sha256).digest()

    def sign(self, purpose: bytes, payload: object) -> str:
        body = orjson.dumps(payload)
        return f"{_b64(body)}.{_b64(self._mac(purpose, body))}"

    def unsign(self, purpose: bytes, token: str) -> object | None:
        body_b64, _, mac_b64 = token.partition(".")
        try:
            body, mac = _unb64(body_b64), _unb64(mac_b64)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return None
        try:
            data: object = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return data

    def new_session(self, actor: str | None, lifetime: float) -> Session:
        return Session(secrets.token_urlsafe(18), actor, time.time() + lifetime)

    def dump_session(self, session: Session) -> str:
        return self.sign(b"session", [session.nonce, session.actor, session.expires])

    def load_session(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 1000:
            return None
        data = self.unsign(b"session", cookie)
        if not isinstance(data, list) or len(data) != 3:
            return None
        nonce, actor, expires = data
        if not isinstance(nonce, str) or not isinstance(expires, int | float):
            return None
        if expires <= time.time():
            return None
        return Session(nonce, actor if isinstance(actor, str) else None, float(expires))

    def csrf_token(self, session: Session) -> str:
        return _b64(self._mac(b"csrf", session.nonce.encode()))

    def csrf_ok(self, session: Session, supplied: str | None) -> bool:
        if not supplied:
            return False
        return hmac.compare_digest(supplied.encode(), self.csrf_token(session).encode())


class LoginThrottle:
    """Failed logins per client address in this process: ``limit`` in ``window`` seconds,
    then refused until the oldest failure leaves the window (bounded memory)."""

    def __init__(self, limit: int = 10, window: float = 300.0, max_addresses: int = 10_000):
        self.limit, self.window, self.max_addresses = limit, window, max_addresses
        self.failures: dict[str, list[float]] = {}

    def _recent(self, address: str, now: float) -> list[float]:
        kept = [t for t in self.failures.get(address, ()) if now - t < self.window]
        if kept:
            self.failures[address] = kept
        else:
            self.failures.pop(address, None)
        return kept

    def wait(self, address: str) -> float:
        """Seconds before ``address`` may try again (0: now)."""
        now = time.time()
        recent = self._recent(address, now)
        return max(0.0, recent[0] + self.window - now) if len(recent) >= self.limit else 0.0

    def failed(self, address: str) -> None:
        if address not in self.failures and len(self.failures) >= self.max_addresses:
            self.failures.pop(next(iter(self.failures)))  # the oldest address seen
        self.failures.setdefault(address, []).append(time.time())

    def succeeded(self, address: str) -> None:
        self.failures.pop(address, None)
