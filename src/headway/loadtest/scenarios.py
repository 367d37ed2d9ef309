"""The load-test scenarios: how many users, how fast they act, for how long.

A user of every scenario does the same things (see ``_locust_driver.py``): list posts
with their author and tags, read a post, submit an agent execution and poll it until it
completes, upload a small file. A scenario decides how many of them there are over time
(its *plan*: ``(until_second, users, spawn_rate)`` stages) and how many actions per second
each takes (its *pace*). ``stress`` also stops by itself at the first moment the latency
or error criterion breaks, and reports the load it held until then.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["SCENARIOS", "Scenario", "Stage", "scenario"]

Stage = tuple[float, int, float]  # (until second, users, spawn rate per second)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One scenario. ``rate`` is the target actions per second of all users together;
    ``ramp`` the seconds to reach ``users``; ``stress`` ramps to ``users`` over the whole
    duration and stops when the criteria break."""

    name: str
    description: str
    users: int
    rate: float
    ramp: float
    duration: float
    stress: bool = False

    @property
    def pace(self) -> float:
        """Actions per second of one user."""
        return self.rate / self.users

    def plan(self) -> list[Stage]:
        """The stages: reach ``users`` in ``ramp`` seconds, hold until ``duration``."""
        ramp = max(self.ramp, 1.0)
        return [(self.duration, self.users, self.users / ramp)]

    def shortened(self, duration: float | None, users: int | None, rate: float | None) -> Scenario:
        """The same shape, shorter / with fewer users: the ramp shrinks in proportion,
        and with ``users`` alone the rate follows so that each user keeps its pace."""
        changed = self
        if users is not None:
            changed = replace(changed, users=users, rate=self.pace * users)
        if rate is not None:
            changed = replace(changed, rate=rate)
        if duration is not None:
            share = self.ramp / self.duration
            changed = replace(changed, duration=duration, ramp=max(1.0, duration * share))
        return changed


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "baseline",
            "100 users, 10 actions/s together, for 5 minutes (10 s ramp).",
            users=100,
            rate=10,
            ramp=10,
            duration=300,
        ),
        Scenario(
            "spike",
            "0 to 500 users in 1 minute (each at 0.1 action/s), then held for 1 minute.",
            users=500,
            rate=50,
            ramp=60,
            duration=120,
        ),
        Scenario(
            "sustained",
            "500 users, 50 actions/s together, for 30 minutes (30 s ramp).",
            users=500,
            rate=50,
            ramp=30,
            duration=1800,
        ),
        Scenario(
            "stress",
            "Users added steadily up to 2,000 (1 action/s each) over 10 minutes; stops when the "
            "p95 or error rate of the last 10 s breaks the criteria 3 seconds in a row.",
            users=2000,
            rate=2000,
            ramp=600,
            duration=600,
            stress=True,
        ),
    )
}


def scenario(name: str) -> Scenario:
    """The scenario called ``name``; KeyError names the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
