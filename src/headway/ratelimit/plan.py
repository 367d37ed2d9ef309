"""The middleware's hot path: a request's one check, prepared once per policy and client.

A :class:`Plan` is made the first time a client address meets a policy whose key depends
on that address alone, and kept (bounded cache). It holds everything a request needs
that does not change from one request to the next: the check, the key, the header bytes
of the policy (``RateLimit-Policy``, the start of ``RateLimit``, ``X-RateLimit-Limit``)
and the cell that counts its allowed decisions. What is left per request is the check
itself and two numbers, ``remaining`` and ``reset``, rendered into the headers with
``%d``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from headway.ratelimit.base import Check
from headway.ratelimit.decision import Result
from headway.ratelimit.headers import RawHeaders, policy_field
from headway.ratelimit.policy import Policy

if TYPE_CHECKING:
    from starlette.types import Message

# what a request served on the hot path answers: (remaining, reset seconds)
Answer = tuple[int, int]
SLOW: Any = object()  # RateLimits.fast_plan: the request needs the general path
# the headers that say the app wrote rate-limit headers of its own
_OWN = frozenset({b"ratelimit", b"x-ratelimit-limit"})


class Plan:
    """One policy's check for one client, with its pre-rendered header parts."""

    __slots__ = (
        "allowed",
        "check",
        "checks",
        "cost",
        "key",
        "limit",
        "limit_bytes",
        "policies",
        "policy",
        "policy_bytes",
        "state_head",
        "window",
    )

    def __init__(self, check: Check, policy: Policy, window: int, allowed: list[int]) -> None:
        self.check = check
        self.checks = (check,)
        self.policy = policy
        self.policies = (policy,)
        self.key = check.key
        self.cost = check.cost
        self.limit = check.limit
        self.window = window
        self.allowed = allowed  # Metrics.allowed_cell(policy.name)
        probe = Result(policy.name, check.limit, window, 0, 0, 0, True)
        self.policy_bytes = policy_field((probe,))
        self.state_head = f'"{policy.name}";r='.encode()
        self.limit_bytes = b"%d" % check.limit

    def headers(self, answer: Answer, ietf: bool, legacy: bool) -> RawHeaders:
        """What :func:`~headway.ratelimit.headers.rate_limit_headers` writes for the
        allowed result ``answer`` of this plan (the same bytes)."""
        remaining, reset = answer
        if ietf and legacy:
            left = b"%d" % remaining
            return [
                (b"ratelimit-policy", self.policy_bytes),
                (b"ratelimit", b"%b%b;t=%d" % (self.state_head, left, reset)),
                (b"x-ratelimit-limit", self.limit_bytes),
                (b"x-ratelimit-remaining", left),
                (b"x-ratelimit-reset", b"%d" % reset),
            ]
        out: RawHeaders = []
        if ietf:
            out.append((b"ratelimit-policy", self.policy_bytes))
            out.append((b"ratelimit", b"%b%d;t=%d" % (self.state_head, remaining, reset)))
        if legacy:
            out.append((b"x-ratelimit-limit", self.limit_bytes))
            out.append((b"x-ratelimit-remaining", b"%d" % remaining))
            out.append((b"x-ratelimit-reset", b"%d" % reset))
        return out

    def add_headers(self, message: Message, answer: Answer, ietf: bool, legacy: bool) -> None:
        """Append :meth:`headers` to the response start ``message`` in one list, unless
        the app wrote rate-limit headers of its own."""
        headers = message.get("headers", ())
        for k, _ in headers:
            if k in _OWN:
                return  # the app wrote its own
        if ietf and legacy:  # the default: no intermediate list
            remaining, reset = answer
            left = b"%d" % remaining
            message["headers"] = [
                *headers,
                (b"ratelimit-policy", self.policy_bytes),
                (b"ratelimit", b"%b%b;t=%d" % (self.state_head, left, reset)),
                (b"x-ratelimit-limit", self.limit_bytes),
                (b"x-ratelimit-remaining", left),
                (b"x-ratelimit-reset", b"%d" % reset),
            ]
        else:
            message["headers"] = [*headers, *self.headers(answer, ietf, legacy)]

    def result(self, answer: Answer) -> Result:
        """``answer`` as the :class:`Result` the slow path would have made."""
        return Result(self.policy.name, self.limit, self.window, answer[0], answer[1], 0, True)


__all__ = ["SLOW", "Answer", "Plan"]
