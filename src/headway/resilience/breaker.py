"""One circuit breaker: ``await breaker.call(fn, ...)``, ``@breaker`` and ``async with``.

The state a call checks is the breaker's local copy of the shared state (kept current by
the backend's answers and its transition messages), so a call on a closed breaker costs
no round trip: its success is buffered and flushed in the background; a failure is sent
at once (with the buffered successes before it, so the order holds).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from headway.resilience.base import CLOSED, FAILURE, HALF_OPEN, OPEN, SLOW, Snapshot
from headway.resilience.policy import Policy
from headway.web.errors import HTTPError

if TYPE_CHECKING:
    from headway.resilience.core import Breakers

P = ParamSpec("P")
R = TypeVar("R")
MISSING: Any = object()
Permit = tuple[int, bool]  # (generation, is a half-open trial)
_perf = time.perf_counter


class CircuitOpenError(HTTPError):
    """The breaker is open: the call was not made. In a request: 503 with Retry-After."""

    def __init__(self, name: str, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            503,
            "circuit_open",
            f"circuit breaker {name!r} is open",
            {"breaker": name, "retry_after": seconds},
            {"Retry-After": str(seconds)},
        )
        self.breaker = name
        self.retry_after = retry_after


class UnknownBreakerError(HTTPError):
    def __init__(self, name: str) -> None:
        super().__init__(404, "not_found", f"no circuit breaker named {name!r}")


class Breaker:
    """Protects calls to one dependency; declared with ``hw.breakers.breaker(name, ...)``."""

    def __init__(
        self,
        owner: Breakers,
        name: str,
        policy: Policy,
        *,
        exceptions: tuple[type[BaseException], ...] = (Exception,),
        ignore: tuple[type[BaseException], ...] = (),
        fallback: Any = MISSING,
    ) -> None:
        self.owner, self.name, self.policy = owner, name, policy
        self.exceptions, self.ignore, self.fallback = exceptions, ignore, fallback
        self.snap = Snapshot(name)
        self.local = False  # the snapshot comes from the local fallback state
        self.offset = 0.0  # backend clock - local clock
        self.pending: list[int] = []
        self.pending_gen = 0
        self.stats = {"success": 0, "failure": 0, "ignored": 0, "rejected": 0, "fallback": 0}
        self._active: ContextVar[tuple[tuple[Permit, float, Any], ...]] = ContextVar(
            f"breaker-{name}", default=()
        )

    def __repr__(self) -> str:
        return f"<Breaker {self.name!r} {self.state}>"

    @property
    def state(self) -> str:
        return self.snap.state

    # -- admission ------------------------------------------------------------------------

    async def _admit(self) -> Permit:
        snap = self.snap
        if snap.state == CLOSED:
            return snap.generation, False
        if snap.state == OPEN:
            remaining = snap.opened_at + self.policy.open_timeout - self.owner.clock()
            remaining -= self.offset
            if snap.forced or remaining > 0:
                raise self._rejected(remaining if not snap.forced else self.policy.open_timeout)
        snap = await self.owner.op(self, "acquire")
        if not snap.permitted:
            raise self._rejected(self.policy.open_timeout if snap.state == OPEN else 1.0)
        return snap.generation, snap.state == HALF_OPEN

    def _rejected(self, retry_after: float) -> CircuitOpenError:
        self.stats["rejected"] += 1
        return CircuitOpenError(self.name, retry_after)

    # -- outcomes -------------------------------------------------------------------------

    def _code(self, exc: BaseException | None, elapsed: float) -> int | None:
        """Outcome code of a finished call; None = not counted (an ignored exception)."""
        slow = SLOW if elapsed >= self.policy.slow_call_duration else 0
        if exc is None:
            return slow
        if isinstance(exc, self.ignore):
            return None
        if isinstance(exc, (TimeoutError, *self.exceptions)):
            return FAILURE | slow
        return slow  # an exception the breaker does not count: the dependency answered

    async def _outcome(self, permit: Permit, exc: BaseException | None, started: float) -> bool:
        """Record a call's outcome; True when it counted as a failure."""
        code = self._code(exc, _perf() - started)
        if code is None:
            self.stats["ignored"] += 1
            return False
        failed = bool(code & FAILURE)
        self.stats["failure" if failed else "success"] += 1
        gen, trial = permit
        if trial or failed:
            await self.flush([code], gen)
        else:
            self._buffer(code, gen)
        return failed

    def _buffer(self, code: int, generation: int) -> None:
        if generation != self.pending_gen:
            self.pending.clear()
            self.pending_gen = generation
        self.pending.append(code)
        if len(self.pending) > 2 * self.policy.capacity:
            del self.pending[: -self.policy.capacity]

    async def flush(self, extra: list[int] | None = None, generation: int | None = None) -> None:
        """Send buffered outcomes (and ``extra``) to the backend in one operation."""
        gen = self.snap.generation if generation is None else generation
        codes = self.pending if gen == self.pending_gen else []
        self.pending = []
        if extra:
            codes = [*codes, *extra]
        if codes:
            await self.owner.op(self, "record", codes, gen)

    # -- the three ways to use a breaker ---------------------------------------------------

    async def call(self, fn: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any) -> R:
        """``await fn(*args, **kwargs)`` under the breaker (with its timeout and fallback)."""
        try:
            permit = await self._admit()
        except CircuitOpenError as exc:
            if self.fallback is MISSING:
                raise
            return cast("R", await self._fallback(exc))
        started = _perf()
        try:
            if self.policy.call_timeout is None:
                result = await fn(*args, **kwargs)
            else:
                async with asyncio.timeout(self.policy.call_timeout):
                    result = await fn(*args, **kwargs)
        except Exception as exc:
            failed = await self._outcome(permit, exc, started)
            if failed and self.fallback is not MISSING:
                return cast("R", await self._fallback(exc))
            raise
        if permit[1]:
            await self._outcome(permit, None, started)
        else:  # the happy path: no await, no round trip
            self.stats["success"] += 1
            slow = _perf() - started >= self.policy.slow_call_duration
            self._buffer(SLOW if slow else 0, permit[0])
        return result

    async def _fallback(self, exc: BaseException) -> Any:
        self.stats["fallback"] += 1
        fb = self.fallback
        if not callable(fb):
            return fb
        result = fb(exc)
        return await result if inspect.isawaitable(result) else result

    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Decorate an async function: every call goes through :meth:`call`."""
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@breaker needs an async function, got {fn!r}")

        @functools.wraps(fn)
        async def protected(*args: P.args, **kwargs: P.kwargs) -> R:
            return await self.call(fn, *args, **kwargs)

        return protected

    async def __aenter__(self) -> Breaker:
        permit = await self._admit()
        timer = None
        if self.policy.call_timeout is not None:
            timer = asyncio.timeout(self.policy.call_timeout)
            await timer.__aenter__()
        self._active.set((*self._active.get(), (permit, _perf(), timer)))
        return self

    async def __aexit__(self, et: Any, exc: BaseException | None, tb: Any) -> bool:
        stack = self._active.get()
        permit, started, timer = stack[-1]
        self._active.set(stack[:-1])
        if timer is not None:
            try:
                await timer.__aexit__(et, exc, tb)
            except TimeoutError as timeout:
                await self._outcome(permit, timeout, started)
                raise
        if exc is None or isinstance(exc, Exception):
            await self._outcome(permit, exc, started)
        return False
