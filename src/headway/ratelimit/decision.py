"""What a check answers: one :class:`Result` per policy, combined into a :class:`Decision`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from headway.ratelimit.base import Outcome
from headway.web.errors import HTTPError


@dataclass(frozen=True, slots=True)
class Result:
    """One policy's answer, in the units the headers use (seconds)."""

    policy: str
    limit: int
    window: int
    remaining: int
    reset: int
    retry_after: int
    allowed: bool

    @classmethod
    def of(cls, policy: str, limit: int, window: int, outcome: Outcome) -> Result:
        retry = math.ceil(outcome.retry_after_ms / 1000) if not outcome.allowed else 0
        reset = max(0, math.ceil(outcome.reset_ms / 1000))
        return cls(
            policy=policy,
            limit=limit,
            window=window,
            remaining=max(0, outcome.remaining),
            reset=max(reset, retry),
            retry_after=max(1, retry) if not outcome.allowed else 0,
            allowed=outcome.allowed,
        )


@dataclass(slots=True)
class Decision:
    """All policies of one check. ``refused``: a fail-closed policy's backend was down."""

    results: list[Result] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    refused: bool = False

    @property
    def allowed(self) -> bool:
        return not self.refused and all(r.allowed for r in self.results)

    @property
    def violated(self) -> Result | None:
        """The denying policy that stays exhausted longest (largest Retry-After)."""
        denied = [r for r in self.results if not r.allowed]
        return max(denied, key=lambda r: r.retry_after) if denied else None

    @property
    def retry_after(self) -> int:
        violated = self.violated
        return violated.retry_after if violated else 0

    def raise_for_status(self) -> None:
        """Raise :class:`RateLimitExceeded` (429) or :class:`RateLimitUnavailable` (503)."""
        if self.refused:
            raise RateLimitUnavailable(self)
        if not self.allowed:
            raise RateLimitExceeded(self)


class RateLimitExceeded(HTTPError):
    """A limit is exhausted: answered as 429 with Retry-After and the rate-limit headers."""

    def __init__(self, decision: Decision, headers: dict[str, str] | None = None) -> None:
        violated = decision.violated
        assert violated is not None
        super().__init__(
            429,
            "rate_limited",
            f"rate limit {violated.policy!r} exceeded: retry in {violated.retry_after} s",
            details={
                "policy": violated.policy,
                "limit": violated.limit,
                "window": violated.window,
                "retry_after": violated.retry_after,
            },
            headers=headers,
        )
        self.decision = decision


class RateLimitUnavailable(HTTPError):
    """A fail-closed policy could not be checked: answered as 503."""

    def __init__(self, decision: Decision, headers: dict[str, str] | None = None) -> None:
        super().__init__(
            503,
            "rate_limit_unavailable",
            "rate limiting is unavailable; try again shortly",
            details={"policies": decision.unavailable},
            headers=headers or {"Retry-After": "1"},
        )
        self.decision = decision


__all__ = ["Decision", "RateLimitExceeded", "RateLimitUnavailable", "Result"]
