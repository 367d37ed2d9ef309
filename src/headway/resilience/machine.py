"""The breaker state machine in Python: the memory backend's, and the reference for the
Redis scripts in ``backends/lua`` (the contract suite holds both to the same answers).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from headway.resilience.base import CLOSED, FAILURE, HALF_OPEN, OPEN, SLOW, ForceMode, Snapshot
from headway.resilience.policy import Policy


@dataclass(slots=True)
class Machine:
    state: str = CLOSED
    generation: int = 0
    opened_at: float = 0.0
    forced: bool = False
    consecutive: int = 0
    half_successes: int = 0
    trials: int = 0
    trial_at: float = 0.0
    window: deque[tuple[float, int]] = field(default_factory=deque)

    def snapshot(self, name: str, now: float, *, permitted: bool = True) -> Snapshot:
        failures = sum(1 for _, c in self.window if c & FAILURE)
        slow = sum(1 for _, c in self.window if c & SLOW)
        return Snapshot(
            name,
            self.state,
            self.generation,
            self.opened_at,
            self.forced,
            self.consecutive,
            now,
            len(self.window),
            failures,
            slow,
            permitted,
        )


def trim(m: Machine, policy: Policy, now: float) -> None:
    if policy.window == "time":
        horizon = now - policy.window_size
        while m.window and m.window[0][0] <= horizon:
            m.window.popleft()
    while len(m.window) > policy.capacity:
        m.window.popleft()


def should_trip(m: Machine, policy: Policy) -> bool:
    if policy.failure_threshold and m.consecutive >= policy.failure_threshold:
        return True
    calls = len(m.window)
    if calls < policy.minimum_calls:
        return False
    failures = sum(1 for _, c in m.window if c & FAILURE)
    slow = sum(1 for _, c in m.window if c & SLOW)
    if policy.failure_rate and failures >= policy.failure_rate * calls:
        return True
    return bool(policy.slow_call_rate and slow >= policy.slow_call_rate * calls)


def _open(m: Machine, now: float) -> None:
    m.state, m.opened_at, m.generation = OPEN, now, m.generation + 1
    m.half_successes = m.trials = 0


def _close(m: Machine, *, forced: bool = False) -> None:
    m.state, m.generation, m.forced = CLOSED, m.generation + 1, forced
    m.consecutive = m.half_successes = m.trials = 0
    m.opened_at = 0.0
    m.window.clear()


def record(m: Machine, policy: Policy, codes: Sequence[int], generation: int, now: float) -> bool:
    """Apply outcomes; True when the state changed."""
    if generation != m.generation:
        return False
    if m.state == CLOSED:
        for code in codes:
            m.window.append((now, code))
            m.consecutive = m.consecutive + 1 if code & FAILURE else 0
        trim(m, policy, now)
        if not m.forced and should_trip(m, policy):
            _open(m, now)
            return True
        return False
    if m.state == HALF_OPEN:
        return _trial_results(m, policy, codes, now)
    return False


def _trial_results(m: Machine, policy: Policy, codes: Sequence[int], now: float) -> bool:
    for code in codes:
        m.trials = max(0, m.trials - 1)
        if code & FAILURE:
            _open(m, now)
            return True
        m.half_successes += 1
        if m.half_successes >= policy.success_threshold:
            _close(m)
            return True
    return False


def acquire(m: Machine, policy: Policy, now: float) -> tuple[bool, bool]:
    """(permitted, changed)."""
    if m.state == CLOSED:
        return True, False
    changed = False
    if m.state == OPEN:
        if m.forced or now < m.opened_at + policy.open_timeout:
            return False, False
        m.state, m.generation, m.half_successes, m.trials = HALF_OPEN, m.generation + 1, 0, 0
        changed = True
    if m.trials >= policy.half_open_calls and now - m.trial_at > policy.open_timeout:
        m.trials = 0  # trials that never reported (their process died): grant new ones
    if m.trials < policy.half_open_calls:
        m.trials, m.trial_at = m.trials + 1, now
        return True, changed
    return False, changed


def force(m: Machine, mode: ForceMode, now: float) -> None:
    if mode == "open":
        _open(m, now)
        m.forced = True
    else:
        _close(m, forced=mode == "closed")
