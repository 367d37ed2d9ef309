"""Rates as people write them: ``"100/minute"``, ``"10/min"``, ``"1000 per hour"``, ``"5/30s"``."""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS: dict[str, int] = {
    "s": 1, "sec": 1, "second": 1,
    "m": 60, "min": 60, "minute": 60,
    "h": 3600, "hr": 3600, "hour": 3600,
    "d": 86400, "day": 86400,
}  # fmt: skip
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d*)\s*([a-z]+)\s*$", re.IGNORECASE)


def _unit(word: str) -> int | None:
    word = word.lower()
    return UNITS.get(word) or (UNITS.get(word[:-1]) if len(word) > 2 and word[-1] == "s" else None)


@dataclass(frozen=True, slots=True)
class Rate:
    """``limit`` units per ``period`` seconds (a whole number of seconds)."""

    limit: int
    period: int

    @classmethod
    def parse(cls, text: str | Rate) -> Rate:
        """``"100/minute"`` -> ``Rate(100, 60)``; raise ValueError naming the accepted forms."""
        if isinstance(text, Rate):
            return text
        match = _RATE.match(text)
        unit = _unit(match.group(3)) if match else None
        if match is None or unit is None:
            raise ValueError(
                f"invalid rate {text!r}; write e.g. '100/minute', '10/second', '1000/hour', "
                "'5/30s' or '500 per day'"
            )
        rate = cls(int(match.group(1)), int(match.group(2) or 1) * unit)
        if rate.limit < 1 or rate.period < 1:
            raise ValueError(f"invalid rate {text!r}: limit and period must be positive")
        return rate

    @property
    def period_ms(self) -> int:
        return self.period * 1000

    def __str__(self) -> str:
        return f"{self.limit}/{self.period}s"


__all__ = ["UNITS", "Rate"]
