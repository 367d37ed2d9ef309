"""``HEADWAY_RATELIMIT_*``: plan tiers, named policies, proxies, headers, faults, hot path.

Maps and lists are read from the environment as JSON
(``HEADWAY_RATELIMIT_PLANS='{"free": "60/minute"}'``) or, for lists, comma-separated
(``HEADWAY_RATELIMIT_TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1``). The backend URL is not here:
it is ``HEADWAY_LIMITS_URL``, else ``HEADWAY_REDIS_URL``, else ``memory://``.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from headway.ratelimit.base import Algorithm
from headway.ratelimit.rate import Rate
from headway.settings import register_section

DEFAULT_PLANS = {
    "enterprise": "10000/minute",
    "professional": "1000/minute",
    "default": "500/minute",
    "free": "100/minute",
}
DEFAULT_POLICIES = {
    "default": "100/minute",
    "auth": "10/minute",
    "api": "1000/hour",
    "upload": "10/minute",
    "admin": "500/minute",
}
Mode = Literal["direct", "coalesce", "lease"]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import orjson

            return orjson.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


@register_section
class RateLimitSettings(BaseSettings):
    """Every rate-limit setting; environment variables are ``HEADWAY_RATELIMIT_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_RATELIMIT_", env_file=".env", extra="ignore", validate_default=True
    )

    enabled: bool = Field(True, description="Off = every check passes (no backend calls).")
    algorithm: Algorithm = Field(
        Algorithm.SLIDING_WINDOW, description="Algorithm of policies that do not name one."
    )
    plans: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_PLANS),
        description="Tenant plan -> rate of the `plan` policy (JSON object).",
    )
    default_plan: str = Field("default", description="Tier used for a plan not in PLANS.")
    anonymous: str = Field(
        "30/minute", description="`plan` rate of callers without a tenant, per IP."
    )
    policies: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_POLICIES),
        description="Named policies: name -> rate (JSON object); merged over the defaults.",
    )
    fail_closed: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Policies answering 503 when the backend is down (others let requests in).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Proxies (IPs or CIDRs) whose X-Forwarded-For / Forwarded are believed.",
    )
    ipv6_prefix: int = Field(64, ge=32, le=128, description="IPv6 clients are limited per /N.")
    headers: bool = Field(True, description="Send RateLimit-Policy and RateLimit (IETF draft 11).")
    legacy_headers: bool = Field(True, description="Send X-RateLimit-Limit/-Remaining/-Reset.")
    mode: Mode = Field(
        "coalesce",
        description="direct: one call per check; coalesce: concurrent checks share one "
        "pipelined round trip; lease: each process takes small shares of a key's quota.",
    )
    lease_size: int = Field(
        256, ge=1, le=10000, description="Most units one lease takes (lease mode)."
    )
    lease_ttl: float = Field(1.0, gt=0, le=60, description="Seconds an unused lease is kept.")
    log_interval: float = Field(
        60.0, gt=0, description="Backend errors / violations are logged once per interval."
    )
    key_prefix: str = Field("hw", min_length=1, description="Prefix of every Redis key.")

    @field_validator("plans", "policies")
    @classmethod
    def _rates(cls, value: dict[str, str]) -> dict[str, str]:
        for rate in value.values():
            Rate.parse(rate)
        return value

    @field_validator("policies")
    @classmethod
    def _merge_defaults(cls, value: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_POLICIES, **value}

    @field_validator("anonymous")
    @classmethod
    def _anonymous(cls, value: str) -> str:
        Rate.parse(value)
        return value

    @field_validator("fail_closed", "trusted_proxies", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value


__all__ = ["DEFAULT_PLANS", "DEFAULT_POLICIES", "Mode", "RateLimitSettings"]
