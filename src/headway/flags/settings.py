"""``HEADWAY_FLAGS_*``: how flags propagate and what the maintenance middleware does.

Storage is the SQL database (``HEADWAY_FLAGS_URL`` if it is a SQL URL, else
``HEADWAY_DATABASE_URL``); with ``HEADWAY_REDIS_URL`` (or a Redis ``HEADWAY_FLAGS_URL``)
changes are announced over Redis pub/sub, and every process also polls.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from headway import constants
from headway.settings import register_section


@register_section
class FlagsSettings(BaseSettings):
    """Every flags setting; environment variables are ``HEADWAY_FLAGS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_FLAGS_", env_file=".env", extra="ignore", validate_default=True
    )

    prefix: str = Field(
        constants.REDIS_KEY_PREFIX, min_length=1, max_length=64, description="Redis prefix."
    )
    poll_interval: float = Field(
        0.5, gt=0, le=60, description="Seconds between version checks (the fallback path)."
    )
    maintenance_flag: str = Field(
        "maintenance-mode", description="Flag that turns every request into a 503; empty = off."
    )
    maintenance_retry_after: int = Field(
        120, ge=1, description="Retry-After seconds of the maintenance 503."
    )
    maintenance_exempt: list[str] = Field(
        default_factory=lambda: ["/health", "/admin", "/metrics"],
        description="Path prefixes the maintenance 503 never applies to (JSON list).",
    )

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, v: str) -> str:
        if any(ch in v for ch in "{}*?[]\\ "):
            raise ValueError("must not contain braces, glob characters or spaces")
        return v
