"""``hw.limits.most_limited()``: the keys refused most, bounded in memory."""

from __future__ import annotations

from headway import Headway
from headway.ratelimit import core


async def test_heavy_hitters_survive_a_flood_of_distinct_keys(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(core, "MOST_LIMITED_KEEP", 10)
    hw = Headway()
    hw.limits.policy("login", "1/minute")
    async with hw:
        for _ in range(30):
            await hw.limits.hit("login", "user=mallory")
        for i in range(200):  # one denial each (the first hit of a key is allowed)
            await hw.limits.hit("login", f"user=u{i}")
            await hw.limits.hit("login", f"user=u{i}")
        assert len(hw.limits.denied_keys) <= 2 * 10
        top = hw.limits.most_limited(3)
        assert top[0]["key"].endswith("user=mallory") and top[0]["denied"] == 29
        assert hw.limits.describe()["most_limited"][0] == top[0]
