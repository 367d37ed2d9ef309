"""Cron expressions (UTC): ``minute hour day-of-month month day-of-week``.

A sixth, leading field makes it ``second minute hour ...`` (for sub-minute schedules).

Fields take ``*``, numbers, ranges ``a-b``, steps ``*/n`` / ``a-b/n`` / ``a/n``, lists
``a,b`` and names (``jan``..``dec``, ``sun``..``sat``; 7 is Sunday too). Shortcuts:
``@hourly @daily @midnight @weekly @monthly @yearly @annually``. As in Vixie cron, when
both day fields are restricted a day matches if either does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_SHORTCUTS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, low, high, names mapped to numbers)
_SECONDS: tuple[str, int, int, dict[str, int]] = ("second", 0, 59, {})
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),
)
_MAX_YEARS = 8  # Feb 29 on a Monday can be years away; anything further is impossible.


class CronError(ValueError):
    """An invalid cron expression; the message says which field and why."""


def _number(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(text.lower())
    if value is None:
        if not text.isdigit():
            raise CronError(f"{name}: {text!r} is not a number")
        value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is outside {low}-{high}")
    return value


def _parse_part(part: str, spec: tuple[str, int, int, dict[str, int]]) -> set[int]:
    name, low, high, names = spec
    body, _, step_text = part.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"{name}: step {step_text!r} must be a positive number")
        step = int(step_text)
    if body == "*":
        start, end = low, high
    elif "-" in body:
        a, _, b = body.partition("-")
        start, end = (_number(x, name, low, high, names) for x in (a, b))
        if start > end:
            raise CronError(f"{name}: range {body!r} is reversed")
    else:
        start = _number(body, name, low, high, names)
        end = high if step_text else start
    return set(range(start, end + 1, step))


def _parse_field(text: str, spec: tuple[str, int, int, dict[str, int]]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{spec[0]}: empty list item in {text!r}")
        values |= _parse_part(part, spec)
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class Cron:
    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        text = _SHORTCUTS.get(expression.strip().lower(), expression)
        parts = text.split()
        if len(parts) not in (5, 6):
            raise CronError(f"cron expression {expression!r} needs 5 fields, got {len(parts)}")
        seconds = frozenset({0})
        if len(parts) == 6:
            seconds = _parse_field(parts.pop(0), _SECONDS)
        m, h, d, mo, wd = (_parse_field(p, s) for p, s in zip(parts, _FIELDS, strict=True))
        wd = frozenset(0 if x == 7 else x for x in wd)
        return cls(expression, seconds, m, h, d, mo, wd, parts[2] == "*", parts[4] == "*")

    def _day_matches(self, day: datetime) -> bool:
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, moment: datetime) -> datetime:
        """The first matching time strictly after ``moment`` (aware; returned in UTC)."""
        t = moment.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        limit = t.year + _MAX_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                start = t.replace(day=1, hour=0, minute=0, second=0)
                t = (start + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t
        raise CronError(f"cron expression {self.expression!r} never matches")

    def next_timestamp(self, after: float) -> float:
        return self.next_after(datetime.fromtimestamp(after, UTC)).timestamp()
