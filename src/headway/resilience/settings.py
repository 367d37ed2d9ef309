"""``HEADWAY_BREAKERS_*``: defaults of every circuit breaker, and how state is shared.

The backend URL is not here: :meth:`headway.settings.Settings.backend_url` resolves it
(``HEADWAY_RESILIENCE_URL``, else ``HEADWAY_REDIS_URL``, else ``memory://``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from headway import constants
from headway.settings import register_section


@register_section
class BreakersSettings(BaseSettings):
    """Every breaker setting; environment variables are ``HEADWAY_BREAKERS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_BREAKERS_", env_file=".env", extra="ignore", validate_default=True
    )

    prefix: str = Field(
        constants.REDIS_KEY_PREFIX, min_length=1, max_length=64, description="Redis key prefix."
    )
    failure_threshold: int = Field(
        5, ge=0, description="Consecutive failures that open a breaker; 0 = rule off."
    )
    failure_rate: float = Field(
        0.5, ge=0, le=1, description="Failure share of the window that opens it; 0 = rule off."
    )
    slow_call_rate: float = Field(
        0.0, ge=0, le=1, description="Slow-call share of the window that opens it; 0 = off."
    )
    slow_call_duration: float = Field(5.0, gt=0, description="Seconds from which a call is slow.")
    window: Literal["count", "time"] = Field(
        "count", description="Sliding window of the last N calls or of the last N seconds."
    )
    window_size: int = Field(100, ge=1, le=10_000, description="N calls or N seconds.")
    minimum_calls: int = Field(
        20, ge=1, description="Calls in the window before the rate rules apply."
    )
    open_timeout: float = Field(60.0, gt=0, description="Seconds a breaker stays open.")
    half_open_calls: int = Field(
        2, ge=1, description="Trial calls let through at once while half-open."
    )
    success_threshold: int = Field(
        2, ge=1, description="Trial successes that close a half-open breaker."
    )
    call_timeout: float | None = Field(
        None, gt=0, description="Seconds after which a call fails (a timeout); empty = none."
    )
    flush_interval: float = Field(
        0.2, gt=0, le=10, description="Seconds between flushes of buffered successes."
    )
    sync_interval: float = Field(
        5.0, gt=0, description="Seconds between full re-reads of the shared state."
    )
    retry_after: float = Field(
        2.0, gt=0, description="After a shared-state error, seconds on local state only."
    )

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, v: str) -> str:
        if any(ch in v for ch in "{}*?[]\\ "):
            raise ValueError("must not contain braces, glob characters or spaces")
        return v
