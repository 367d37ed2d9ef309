"""Policies (a rate, an algorithm and a scope) and the scopes that key them.

A scope names whose quota a request uses: ``"global"``, ``"ip"``, ``"user"``,
``"tenant"``, ``"api_key"``, ``"endpoint"`` (the route template, e.g.
``GET /api/v2/posts/{post_id}``, never the raw path) or any function of the
:class:`Subject`. A tuple of scopes joins their keys (``("endpoint", "ip")``: per IP and
route). A scope that yields ``None`` (``"user"`` for an anonymous caller) does not apply.

Keys are per tenant whenever the caller has one: two tenants behind one NAT address do
not share an ``ip`` quota, and one tenant can never exhaust another's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headway.ratelimit.base import Algorithm
from headway.ratelimit.rate import Rate

if TYPE_CHECKING:
    from headway.ratelimit.subject import Subject

ScopeFn = Callable[["Subject"], "str | None"]
ScopePart = str | ScopeFn
BUILTIN_SCOPES = ("global", "ip", "user", "tenant", "api_key", "endpoint")
_UNSAFE = frozenset("{}\r\n ")
PLAN = "plan"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling, as the app's identify hook tells it (ids, never secrets)."""

    tenant: str | None = None
    plan: str | None = None
    user: str | None = None
    api_key: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """A named limit. ``tiers``: the rate follows the caller's plan (the ``plan`` policy)."""

    name: str
    rate: Rate
    algorithm: Algorithm = Algorithm.SLIDING_WINDOW
    scope: tuple[ScopePart, ...] = ("ip",)
    burst: int = 0
    cost: int = 1
    fail_open: bool = True
    tiers: Mapping[str, Rate] | None = field(default=None, compare=False)
    default_tier: str = "default"
    anonymous: Rate | None = None

    def __post_init__(self) -> None:
        for part in self.scope:
            if isinstance(part, str) and part not in BUILTIN_SCOPES:
                raise ValueError(f"unknown scope {part!r}; known: {', '.join(BUILTIN_SCOPES)}")
        if not self.name or _UNSAFE & set(self.name):
            raise ValueError(f"invalid policy name {self.name!r}")

    def rate_for(self, identity: Identity | None) -> Rate:
        """The rate for this caller: its plan's tier, the anonymous rate, or the rate."""
        if self.tiers is None:
            return self.rate
        if identity is None or identity.tenant is None:
            return self.anonymous or self.rate
        plan = identity.plan or self.default_tier
        return self.tiers.get(plan) or self.tiers.get(self.default_tier) or self.rate

    def scope_for(self, identity: Identity | None) -> tuple[ScopePart, ...]:
        if self.tiers is not None and (identity is None or identity.tenant is None):
            return ("ip",)
        return self.scope

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rate": str(self.rate),
            "algorithm": self.algorithm.value,
            "scope": [
                p if isinstance(p, str) else getattr(p, "__name__", "custom") for p in self.scope
            ],
            "burst": self.burst or self.rate.limit,
            "fail_open": self.fail_open,
            "tiers": {k: str(v) for k, v in (self.tiers or {}).items()} or None,
        }


def safe_key(raw: str) -> str:
    """A key fit for a Redis hash tag: short, no braces; longer or odd keys are hashed."""
    if len(raw) <= 96 and not (_UNSAFE & set(raw)):
        return raw
    return "h:" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def limit_key(policy: str, key: str, tenant: str | None = None) -> str:
    """``policy:key`` or ``policy:t=<tenant>/key``: the backend key of one quota."""
    if tenant is not None:
        return f"{policy}:t={safe_key(tenant)}/{safe_key(key)}"
    return f"{policy}:{safe_key(key)}"


def hashed(value: str) -> str:
    """A short, stable, non-reversible id for logs (keys may be addresses or tokens)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


__all__ = [
    "BUILTIN_SCOPES",
    "PLAN",
    "Identity",
    "Policy",
    "ScopeFn",
    "ScopePart",
    "hashed",
    "limit_key",
    "safe_key",
]
