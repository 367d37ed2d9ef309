"""A breaker's rules: when it opens, how long it stays open, how it closes again."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from headway.resilience.settings import BreakersSettings

MAX_TIME_WINDOW_ENTRIES = 10_000  # a time window keeps at most this many outcomes


@dataclass(frozen=True, slots=True)
class Policy:
    failure_threshold: int = 5
    failure_rate: float = 0.5
    slow_call_rate: float = 0.0
    slow_call_duration: float = 5.0
    window: Literal["count", "time"] = "count"
    window_size: int = 100
    minimum_calls: int = 20
    open_timeout: float = 60.0
    half_open_calls: int = 2
    success_threshold: int = 2
    call_timeout: float | None = None

    def __post_init__(self) -> None:
        problems = [
            "failure_threshold must be >= 0" if self.failure_threshold < 0 else "",
            "failure_rate must be in [0, 1]" if not 0 <= self.failure_rate <= 1 else "",
            "slow_call_rate must be in [0, 1]" if not 0 <= self.slow_call_rate <= 1 else "",
            "slow_call_duration must be > 0" if self.slow_call_duration <= 0 else "",
            "window must be 'count' or 'time'" if self.window not in ("count", "time") else "",
            "window_size must be in [1, 10000]" if not 1 <= self.window_size <= 10_000 else "",
            "minimum_calls must be >= 1" if self.minimum_calls < 1 else "",
            "open_timeout must be > 0" if self.open_timeout <= 0 else "",
            "half_open_calls must be >= 1" if self.half_open_calls < 1 else "",
            "success_threshold must be >= 1" if self.success_threshold < 1 else "",
            "call_timeout must be > 0" if (self.call_timeout or 1) <= 0 else "",
        ]
        bad = [p for p in problems if p]
        if bad:
            raise ValueError("invalid breaker policy: " + "; ".join(bad))

    @classmethod
    def from_settings(cls, settings: BreakersSettings, **overrides: Any) -> Policy:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown breaker option(s): {', '.join(unknown)}")
        base = cls(**{n: getattr(settings, n) for n in names})
        return replace(base, **overrides)

    @property
    def capacity(self) -> int:
        """Outcomes the window holds at most."""
        return self.window_size if self.window == "count" else MAX_TIME_WINDOW_ENTRIES

    def args(self) -> list[Any]:
        """The policy as the Lua scripts' ARGV (times in milliseconds)."""
        return [
            self.failure_threshold,
            self.failure_rate,
            self.slow_call_rate,
            self.minimum_calls,
            0 if self.window == "count" else 1,
            self.window_size if self.window == "count" else self.window_size * 1000,
            self.capacity,
            round(self.open_timeout * 1000),
            self.half_open_calls,
            self.success_threshold,
        ]
