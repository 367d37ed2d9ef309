"""Pure ASGI middleware: checks the rules' policies before the app sees the request.

No per-request object beyond the check itself: requests outside every rule pass straight
through; a limited request gets the rate-limit headers added to its response start. A
denied request is answered here (429 + Retry-After, or 503 for a fail-closed policy
whose backend is down) with the JSON error shape, and never reaches the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headway.ratelimit.decision import (
    Decision,
    RateLimitExceeded,
    RateLimitUnavailable,
    Result,
)
from headway.ratelimit.headers import RawHeaders, rate_limit_headers
from headway.web.errors import HTTPError, error_body

if TYPE_CHECKING:
    from headway.ratelimit.core import RateLimits

RESULTS_STATE = "headway.ratelimit.results"
MIDDLEWARE_STATE = "headway.ratelimit.middleware"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limits.rules:
            await self.app(scope, receive, send)
            return
        policies = self.limits.routed(scope["path"], scope["method"])
        if not policies:
            await self.app(scope, receive, send)
            return
        limits = self.limits
        plan = limits.plan_for(scope, policies)
        if plan is not None:  # the hot path
            answer = limits.take_local(plan) or await limits.check_plan(plan)
        else:
            answer = await limits.check_request(scope, policies)
        if isinstance(answer, Result):
            results = [answer]
        elif answer.allowed:
            results = list(answer.results)
        else:
            await send_error(send, self.error_for(answer))
            return
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[RESULTS_STATE] = results
        state[MIDDLEWARE_STATE] = True
        settings = self.limits.settings

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and (found := state[RESULTS_STATE]):
                headers = message.get("headers", ())
                for k, _ in headers:
                    if k == b"ratelimit" or k == b"x-ratelimit-limit":
                        break  # the app wrote its own
                else:
                    ours = rate_limit_headers(found, settings.headers, settings.legacy_headers)
                    message = {**message, "headers": [*headers, *ours]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def error_for(self, decision: Decision) -> HTTPError:
        s = self.limits.settings
        headers = rate_limit_headers(decision.results, s.headers, s.legacy_headers)
        as_map = {k.decode(): v.decode() for k, v in headers}
        if decision.refused:
            return RateLimitUnavailable(decision)
        return RateLimitExceeded(decision, as_map)


async def send_error(send: Send, error: HTTPError) -> None:
    body = orjson.dumps(error_body(error.code, error.message, error.details))
    headers: RawHeaders = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["MIDDLEWARE_STATE", "RESULTS_STATE", "RateLimitMiddleware", "send_error"]
