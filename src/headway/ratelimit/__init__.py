"""Rate limiting: five algorithms, scopes and plan tiers, ASGI middleware, standard headers.

::

    hw = Headway()                                   # HEADWAY_LIMITS_URL / REDIS_URL / memory://
    hw.limits.protect("/api/", "plan")               # tenant plan quotas on /api/*
    hw.limits.identify = bearer_identity(lookup)     # who is calling (tenant, plan, ...)
    hw.limits.policy("search", "20/minute", algorithm="gcra", scope=("endpoint", "ip"))

    @router.post("/login", dependencies=[Depends(hw.limits.dependency("auth"))])
    async def login(...): ...

    decision = await hw.limits.hit("auth", email, tenant="acme")   # jobs, webhooks, logins
    decision.raise_for_status()                                     # 429 as an exception

Algorithms: fixed window, sliding window (weighted two-window counter), sliding log
(exact, small limits), token bucket with burst, GCRA; each check takes a ``cost``. On
Redis each check is one Lua script (one round trip, Redis time). Hot path modes
(``HEADWAY_RATELIMIT_MODE``): ``coalesce`` (default: concurrent checks share one
pipelined round trip), ``lease`` (each process takes small shares of a quota; bound in
:mod:`headway.ratelimit.lease`) and ``direct``.
"""

from __future__ import annotations

from headway import registry
from headway.ratelimit.base import Algorithm, Check, LimitBackend, Outcome
from headway.ratelimit.clientip import ClientIP
from headway.ratelimit.core import RateLimits, Rule
from headway.ratelimit.decision import Decision, RateLimitExceeded, RateLimitUnavailable, Result
from headway.ratelimit.headers import rate_limit_headers
from headway.ratelimit.integration import bearer_identity
from headway.ratelimit.middleware import RateLimitMiddleware
from headway.ratelimit.policy import Identity, Policy
from headway.ratelimit.rate import Rate
from headway.ratelimit.settings import RateLimitSettings
from headway.ratelimit.subject import Subject

registry.register("limits", "memory", "headway.ratelimit.backends.memory:MemoryLimitBackend")
for _scheme in ("redis", "rediss", "unix"):
    registry.register(
        "limits", _scheme, "headway.ratelimit.backends.redis:RedisLimitBackend", extra="redis"
    )

__all__ = [
    "Algorithm",
    "Check",
    "ClientIP",
    "Decision",
    "Identity",
    "LimitBackend",
    "Outcome",
    "Policy",
    "Rate",
    "RateLimitExceeded",
    "RateLimitMiddleware",
    "RateLimitSettings",
    "RateLimitUnavailable",
    "RateLimits",
    "Result",
    "Rule",
    "Subject",
    "bearer_identity",
    "rate_limit_headers",
]
