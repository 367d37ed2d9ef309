"""Pure ASGI middleware: checks the rules' policies before the app sees the request.

No per-request object beyond the check itself: requests outside every rule pass straight
through; a limited request gets the rate-limit headers added to its response start. A
denied request is answered here (429 + Retry-After, or 503 for a fail-closed policy
whose backend is down) with the JSON error shape, and never reaches the app.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headway.ratelimit.decision import (
    Decision,
    RateLimitExceeded,
    RateLimitUnavailable,
    Result,
)
from headway.ratelimit.headers import RawHeaders, rate_limit_headers
from headway.ratelimit.plan import SLOW, Answer
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
        limits = self.limits
        if scope["type"] != "http" or not limits.rules:
            await self.app(scope, receive, send)
            return
        plan = limits.fast_plan(scope)
        if plan is None:  # no rule applies
            await self.app(scope, receive, send)
            return
        if plan is SLOW:
            await self._checked(scope, receive, send)
            return
        lease = limits.lease  # the hot path: a unit of the local share, no await
        answer: Answer | Decision | None = (
            lease.take_answer(plan.check) if lease is not None else None
        )
        if answer is not None:
            plan.allowed[0] += 1
        else:
            answer = await limits.check_plan(plan)
        if type(answer) is not tuple:
            await self._decided(scope, receive, send, answer)  # type: ignore[arg-type]
            return
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[MIDDLEWARE_STATE] = (plan, answer)
        settings = limits.settings

        def send_with_headers(message: Message) -> Awaitable[None]:
            # a plain function handing back send's awaitable: no coroutine of its own
            if message["type"] == "http.response.start":
                found = state.get(RESULTS_STATE)  # a route's dependency added its own
                if found is None:
                    plan.add_headers(message, answer, settings.headers, settings.legacy_headers)
                else:
                    ours = rate_limit_headers(found, settings.headers, settings.legacy_headers)
                    _add_headers(message, ours)
            return send(message)

        await self.app(scope, receive, send_with_headers)

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The general path: the rules' policies, a plan when there is one."""
        limits = self.limits
        policies = limits.routed(scope["path"], scope["method"])
        if not policies:
            await self.app(scope, receive, send)
            return
        plan = limits.plan_for(scope, policies)
        answer: Decision
        if plan is None:
            answer = await limits.check_request(scope, policies)
        else:
            found = limits.take_local(plan) or await limits.check_plan(plan)
            answer = found if isinstance(found, Decision) else Decision([plan.result(found)])
        await self._decided(scope, receive, send, answer)

    async def _decided(self, scope: Scope, receive: Receive, send: Send, answer: Decision) -> None:
        """The app behind a decision of the slow path (several policies, an identity)."""
        if not answer.allowed:
            await send_error(send, self.error_for(answer))
            return
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[RESULTS_STATE] = list(answer.results)
        state[MIDDLEWARE_STATE] = True
        settings = self.limits.settings

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and (found := state[RESULTS_STATE]):
                _add_headers(
                    message, rate_limit_headers(found, settings.headers, settings.legacy_headers)
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def error_for(self, decision: Decision) -> HTTPError:
        s = self.limits.settings
        headers = rate_limit_headers(decision.results, s.headers, s.legacy_headers)
        as_map = {k.decode(): v.decode() for k, v in headers}
        if decision.refused:
            return RateLimitUnavailable(decision)
        return RateLimitExceeded(decision, as_map)


def _add_headers(message: Message, ours: RawHeaders) -> None:
    """Append ``ours`` to a response start, unless the app wrote rate-limit headers."""
    headers = message.get("headers", ())
    for k, _ in headers:
        if k == b"ratelimit" or k == b"x-ratelimit-limit":
            return  # the app wrote its own
    message["headers"] = [*headers, *ours]


def middleware_results(state: dict[str, Any]) -> list[Result] | None:
    """The results whose headers the middleware will write for this request (None when
    the middleware did not check it)."""
    found: list[Result] | None = state.get(RESULTS_STATE)
    if found is not None:
        return found
    mine = state.get(MIDDLEWARE_STATE)
    if isinstance(mine, tuple):  # the hot path's (plan, answer)
        plan, answer = mine
        return [plan.result(answer)]
    return [] if mine else None


async def send_error(send: Send, error: HTTPError) -> None:
    body = orjson.dumps(error_body(error.code, error.message, error.details))
    headers: RawHeaders = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = [
    "MIDDLEWARE_STATE",
    "RESULTS_STATE",
    "RateLimitMiddleware",
    "middleware_results",
    "send_error",
]
