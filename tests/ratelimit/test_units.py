"""Pure units: check validation, rate parsing, settings, the throttled log."""

from __future__ import annotations

import logging

import pytest

from headway.errors import ConfigError
from headway.ratelimit import Algorithm, Check, Rate, RateLimitSettings
from headway.ratelimit.base import validate
from headway.ratelimit.faults import ThrottledLog
from headway.settings import SECTIONS, load_section


def test_validate_rejects_impossible_checks() -> None:
    with pytest.raises(ValueError, match="capacity"):
        validate(Check(Algorithm.GCRA, "k", 5, 1000, cost=6))
    with pytest.raises(ValueError, match="cost"):
        validate(Check(Algorithm.GCRA, "k", 5, 1000, cost=0))
    with pytest.raises(ValueError, match="positive"):
        validate(Check(Algorithm.GCRA, "k", 0, 1000))
    validate(Check(Algorithm.TOKEN_BUCKET, "k", 1, 1000, cost=5, burst=5))


@pytest.mark.parametrize(
    ("text", "limit", "period"),
    [
        ("100/minute", 100, 60),
        ("10/min", 10, 60),
        ("1000 per hour", 1000, 3600),
        ("5/30s", 5, 30),
        ("10/second", 10, 1),
        ("500 per day", 500, 86400),
        ("2/hours", 2, 3600),
    ],
)
def test_rate_parse(text: str, limit: int, period: int) -> None:
    assert Rate.parse(text) == Rate(limit, period)


@pytest.mark.parametrize("text", ["", "100", "x/minute", "3/ms", "0/minute", "10/fortnight"])
def test_rate_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate.parse(text)


def test_settings_defaults_follow_the_issue() -> None:
    s = RateLimitSettings()
    assert s.plans == {
        "enterprise": "10000/minute",
        "professional": "1000/minute",
        "default": "500/minute",
        "free": "100/minute",
    }
    assert s.anonymous == "30/minute"
    assert s.policies == {
        "default": "100/minute",
        "auth": "10/minute",
        "api": "1000/hour",
        "upload": "10/minute",
        "admin": "500/minute",
    }
    assert s.mode == "coalesce" and s.headers and s.legacy_headers
    assert "HEADWAY_RATELIMIT_" in SECTIONS


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_RATELIMIT_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    monkeypatch.setenv("HEADWAY_RATELIMIT_FAIL_CLOSED", '["auth"]')
    monkeypatch.setenv("HEADWAY_RATELIMIT_POLICIES", '{"search": "20/minute"}')
    monkeypatch.setenv("HEADWAY_RATELIMIT_ALGORITHM", "gcra")
    s = load_section(RateLimitSettings)
    assert s.trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
    assert s.fail_closed == ["auth"]
    assert s.policies["search"] == "20/minute" and s.policies["auth"] == "10/minute"
    assert s.algorithm is Algorithm.GCRA


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HEADWAY_RATELIMIT_TRUSTED_PROXIES", "not-an-ip"),
        ("HEADWAY_RATELIMIT_PLANS", '{"free": "lots"}'),
        ("HEADWAY_RATELIMIT_MODE", "turbo"),
    ],
)
def test_settings_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_section(RateLimitSettings)


def test_throttled_log_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = ThrottledLog(60.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="headway.ratelimit"):
        assert log.log(logging.ERROR, "backend", "down: %s", "x")
        for _ in range(100):
            assert not log.log(logging.ERROR, "backend", "down: %s", "x")
        now[0] = 61.0
        assert log.log(logging.ERROR, "backend", "down: %s", "x")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["down: x", "down: x (100 more since the last report)"]
