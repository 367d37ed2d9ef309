"""The five algorithms in Python, step for step the same as the Lua scripts.

The memory backend runs these; each takes the key's state (``None`` for a new key),
the check and the time in ms, and returns the outcome, the new state and when that state
can be dropped (ms). A denied check returns the state unchanged.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from headway.ratelimit.base import Algorithm, Check, Outcome

EPS = 1e-9
State = Any
Step = Callable[[State, Check, int], tuple[Outcome, State, int]]


def fixed_window(state: State, c: Check, now: int) -> tuple[Outcome, State, int]:
    start, used = state if state is not None else (now, 0)
    if now >= start + c.period_ms:
        start, used = now, 0
    reset = start + c.period_ms - now
    if used + c.cost > c.limit:
        return Outcome(False, c.limit - used, reset, reset), state, start + c.period_ms
    used += c.cost
    return Outcome(True, c.limit - used, reset, 0), (start, used), start + c.period_ms


def _shift(state: State, period: int, now: int) -> tuple[int, int, int]:
    if state is None:
        return now, 0, 0
    start, cur, prev = state
    if now >= start + period:
        k = (now - start) // period
        prev = cur if k == 1 else 0
        cur, start = 0, start + k * period
    return start, cur, prev


def sliding_window(state: State, c: Check, now: int) -> tuple[Outcome, State, int]:
    period, limit, cost = c.period_ms, c.limit, c.cost
    start, cur, prev = _shift(state, period, now)
    elapsed = now - start
    used = prev * (period - elapsed) / period + cur
    reset = start + period - now
    if used + cost > limit:
        if cur + cost > limit:
            retry = reset + max(0.0, period * (1 - (limit - cost) / cur))
        else:
            retry = period * (1 - (limit - cur - cost) / prev) - elapsed
        remaining = max(0, math.floor(limit - used + EPS))
        return Outcome(False, remaining, reset, max(1, math.ceil(retry))), state, now + reset
    cur += cost
    remaining = max(0, math.floor(limit - used - cost + EPS))
    return Outcome(True, remaining, reset, 0), (start, cur, prev), start + 2 * period


def sliding_log(state: State, c: Check, now: int) -> tuple[Outcome, State, int]:
    log: deque[int] = state if state is not None else deque()
    while log and log[0] <= now - c.period_ms:
        log.popleft()
    n = len(log)
    if n + c.cost > c.limit:
        retry = log[n + c.cost - c.limit - 1] + c.period_ms - now
        reset = log[0] + c.period_ms - now
        return Outcome(False, c.limit - n, reset, max(1, retry)), log, now + c.period_ms
    log.extend([now] * c.cost)
    reset = log[0] + c.period_ms - now
    return Outcome(True, c.limit - n - c.cost, reset, 0), log, now + c.period_ms


def token_bucket(state: State, c: Check, now: int) -> tuple[Outcome, State, int]:
    burst, per_ms = c.capacity, c.limit / c.period_ms
    tokens, updated = state if state is not None else (float(burst), now)
    tokens = min(burst, tokens + max(0, now - updated) * per_ms)
    if tokens + EPS < c.cost:
        full = math.ceil((burst - tokens) / per_ms)
        retry = max(1, math.ceil((c.cost - tokens) / per_ms))
        return Outcome(False, math.floor(tokens + EPS), full, retry), state, now + full
    tokens -= c.cost
    full = math.ceil((burst - tokens) / per_ms)
    return Outcome(True, math.floor(tokens + EPS), full, 0), (tokens, now), now + max(1, full)


def gcra(state: State, c: Check, now: int) -> tuple[Outcome, State, int]:
    interval = c.period_ms / c.limit
    tolerance = interval * c.capacity
    tat = max(state if state is not None else now, now)
    new_tat = tat + c.cost * interval
    allow_at = new_tat - tolerance
    if now + 1e-6 < allow_at:
        remaining = max(0, math.floor((tolerance - (tat - now)) / interval + EPS))
        outcome = Outcome(False, remaining, math.ceil(tat - now), max(1, math.ceil(allow_at - now)))
        return outcome, state, math.ceil(tat)
    ttl = max(1, math.ceil(new_tat - now))
    remaining = max(0, math.floor((tolerance - (new_tat - now)) / interval + EPS))
    return Outcome(True, remaining, ttl, 0), new_tat, now + ttl


STEPS: dict[Algorithm, Step] = {
    Algorithm.FIXED_WINDOW: fixed_window,
    Algorithm.SLIDING_WINDOW: sliding_window,
    Algorithm.SLIDING_LOG: sliding_log,
    Algorithm.TOKEN_BUCKET: token_bucket,
    Algorithm.GCRA: gcra,
}

__all__ = ["STEPS", "Step"]
