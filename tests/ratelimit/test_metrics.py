"""Rate-limit decisions at /metrics agree with what was decided; readiness criticality."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.observe.scrape import ready, scrape, serve, value

from headway import Headway
from headway.errors import BackendUnavailableError
from headway.ratelimit import RateLimits, RateLimitSettings
from headway.ratelimit.base import Check, Outcome


def limits_with(**settings: Any) -> Callable[[Headway], None]:
    def add(hw: Headway) -> None:
        limits = hw.add(RateLimits(hw, RateLimitSettings(key_prefix="metrics", **settings)))
        limits.policy("login", "3/minute")
        limits.policy("search", "2/minute")
        limits.protect("/search", "search")

    return add


def break_backend(limits: RateLimits, monkeypatch: pytest.MonkeyPatch) -> None:
    async def unavailable(checks: Sequence[Check]) -> list[Outcome]:
        raise BackendUnavailableError("rate-limit backend down")

    async def refused() -> None:
        raise BackendUnavailableError("rate-limit backend down")

    monkeypatch.setattr(limits.backend, "hit", unavailable)
    monkeypatch.setattr(limits.backend, "ping", refused)


async def test_decisions_per_policy_and_outcome(tmp_path: Path) -> None:
    async with serve(tmp_path, limits_with()) as (hw, client):
        for _ in range(5):
            await hw.limits.hit("login", "alice")
        statuses = [(await client.get("/search")).status_code for _ in range(3)]
        assert statuses.count(429) == 1  # 404 from the app for the two allowed ones

        m = await scrape(client)
        assert value(m, "headway_limits_decisions_total", policy="login", outcome="allowed") == 3
        assert value(m, "headway_limits_decisions_total", policy="login", outcome="denied") == 2
        assert value(m, "headway_limits_decisions_total", policy="search", outcome="allowed") == 2
        assert value(m, "headway_limits_decisions_total", policy="search", outcome="denied") == 1
        assert value(m, "headway_limits_backend_errors_total") == 0
        for policy, outcomes in hw.limits.metrics.snapshot().items():
            for outcome, n in outcomes.items():
                got = value(m, "headway_limits_decisions_total", policy=policy, outcome=outcome)
                assert got == n


async def test_backend_outage_is_counted_and_fail_open_only_degrades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve(tmp_path, limits_with(mode="direct")) as (hw, client):
        status, body = await ready(client)
        assert status == 200 and body["status"] == "ok"
        assert body["checks"]["limits"]["critical"] is False  # every policy fails open

        break_backend(hw.limits, monkeypatch)
        for _ in range(4):
            assert (await hw.limits.hit("login", "bob")).allowed
        m = await scrape(client)
        assert value(m, "headway_limits_decisions_total", policy="login", outcome="fail_open") == 4
        assert value(m, "headway_limits_backend_errors_total") == 4

        status, body = await ready(client)
        assert status == 200 and body["status"] == "degraded"
        check = body["checks"]["limits"]
        assert not check["ok"] and check["critical"] is False
        assert "down" in check["error"]


async def test_a_fail_closed_policy_makes_an_outage_critical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve(tmp_path, limits_with(mode="direct", fail_closed="login")) as (hw, client):
        status, body = await ready(client)
        assert status == 200 and body["checks"]["limits"]["critical"] is True
        assert body["checks"]["limits"]["detail"]["fail_closed"] == ["login"]

        break_backend(hw.limits, monkeypatch)
        assert not (await hw.limits.hit("login", "carol")).allowed
        m = await scrape(client)
        assert (
            value(m, "headway_limits_decisions_total", policy="login", outcome="fail_closed") == 1
        )
        status, body = await ready(client)
        assert status == 503 and body["status"] == "down"


async def test_disabled_limits_have_no_readiness_check(tmp_path: Path) -> None:
    async with serve(tmp_path, limits_with(enabled=False)) as (_hw, client):
        _, body = await ready(client)
        assert "limits" not in body["checks"]
