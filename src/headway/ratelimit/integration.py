"""Per-route policies in FastAPI (a dependency and a decorator) and the identify helper.

::

    Upload = Depends(hw.limits.dependency("upload", cost=10))

    @router.post("/files", dependencies=[Upload])
    async def upload(...): ...

    @router.post("/login")
    @hw.limits.limit("auth")
    async def login(...): ...

With the middleware installed, the route's results join the middleware's in the one set
of headers; without it, the dependency writes the headers itself.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from headway.ratelimit.decision import Decision, RateLimitExceeded, RateLimitUnavailable
from headway.ratelimit.headers import rate_limit_headers
from headway.ratelimit.middleware import RESULTS_STATE, middleware_results
from headway.ratelimit.policy import Identity

if TYPE_CHECKING:
    from headway.ratelimit.core import RateLimits

P = ParamSpec("P")
R = TypeVar("R")
Dependency = Callable[[Request, Response], Awaitable[Decision]]


def make_dependency(limits: RateLimits, *policies: str, cost: int | None = None) -> Dependency:
    """A FastAPI dependency checking ``policies``; raises 429/503 when they refuse."""
    resolved = [limits.get_policy(p) for p in policies]

    async def rate_limit(request: Request, response: Response) -> Decision:
        decision = await limits.check_request(request.scope, resolved, cost)
        state = request.scope.setdefault("state", {})
        mine = middleware_results(state)
        results = [*(mine or ()), *decision.results]
        s = limits.settings
        if decision.refused:
            raise RateLimitUnavailable(decision)
        if not decision.allowed:
            headers = rate_limit_headers(results, s.headers, s.legacy_headers)
            raise RateLimitExceeded(decision, {k.decode(): v.decode() for k, v in headers})
        if mine is not None:  # the middleware writes the headers of them all
            state[RESULTS_STATE] = results
        else:
            for k, v in rate_limit_headers(results, s.headers, s.legacy_headers):
                response.headers[k.decode()] = v.decode()
        return decision

    return rate_limit


def make_decorator(
    limits: RateLimits,
    *policies: str,
    cost: int | None = None,
    key: Callable[..., str] | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate a FastAPI endpoint (``key=None``) or any async function (``key=fn``)."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        if key is not None:
            return _plain(limits, policies, cost, key, fn)
        return _endpoint(make_dependency(limits, *policies, cost=cost), fn)

    return decorate


def _plain(
    limits: RateLimits,
    policies: tuple[str, ...],
    cost: int | None,
    key: Callable[..., str],
    fn: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        k = key(*args, **kwargs)
        for policy in policies:
            (await limits.hit(policy, k, cost=cost)).raise_for_status()
        return await fn(*args, **kwargs)

    return wrapper


def _endpoint(dependency: Dependency, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        await dependency(kwargs.pop("_hw_request"), kwargs.pop("_hw_response"))
        return await fn(*args, **kwargs)

    sig = inspect.signature(fn)
    extra = [
        inspect.Parameter("_hw_request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter("_hw_response", inspect.Parameter.KEYWORD_ONLY, annotation=Response),
    ]
    params = list(sig.parameters.values())
    tail = [p for p in params if p.kind == inspect.Parameter.VAR_KEYWORD]
    head = [p for p in params if p.kind != inspect.Parameter.VAR_KEYWORD]
    setattr(wrapper, "__signature__", sig.replace(parameters=[*head, *extra, *tail]))  # noqa: B010
    return wrapper


def bearer_identity(
    lookup: Callable[[str], Awaitable[Identity | None]], ttl: float = 60.0, maxsize: int = 10_000
) -> Callable[[Scope], Awaitable[Identity | None]]:
    """An ``identify`` hook: ``Authorization: Bearer <token>`` -> ``lookup(token)``, cached.

    Answers (unknown tokens too) are kept ``ttl`` seconds per token digest, so that the
    middleware does not hit the database on every request; a revoked key keeps its
    identity for at most ``ttl`` seconds, which only matters for its rate limit.
    """
    cache: OrderedDict[str, tuple[float, Identity | None]] = OrderedDict()

    async def identify(scope: Scope) -> Identity | None:
        token = _bearer(scope)
        if token is None:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        now = time.monotonic()
        hit = cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        identity = await lookup(token)
        cache[digest] = (now + ttl, identity)
        cache.move_to_end(digest)
        while len(cache) > maxsize:
            cache.popitem(last=False)
        return identity

    return identify


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            text = str(value.decode("latin-1"))
            if text[:7].lower() == "bearer " and text[7:].strip():
                return text[7:].strip()
    return None


__all__ = ["Dependency", "bearer_identity", "make_decorator", "make_dependency"]
