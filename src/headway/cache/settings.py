"""``HEADWAY_CACHE_*``: the cache's own settings (the L2 URL is ``HEADWAY_CACHE_URL``).

The backend URL is not here: :meth:`headway.settings.Settings.backend_url` resolves it
(``HEADWAY_CACHE_URL``, else ``HEADWAY_REDIS_URL``, else ``memory://``).
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from headway import constants
from headway.settings import register_section

DEFAULT_PRESETS: dict[str, float] = {
    "user": 1800.0,
    "company": 3600.0,
    "sector": 7200.0,
    "api": 300.0,
    "row": 3600.0,
    "collection": 1800.0,
}


@register_section
class CacheSettings(BaseSettings):
    """Every cache setting; environment variables are ``HEADWAY_CACHE_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_CACHE_", env_file=".env", extra="ignore", validate_default=True
    )

    prefix: str = Field(
        constants.REDIS_KEY_PREFIX,
        min_length=1,
        max_length=64,
        description="First segment of every L2 key and of the invalidation channel.",
    )
    default_ttl: float = Field(300.0, gt=0, description="Seconds a value stays fresh.")
    ttl_presets: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_PRESETS),
        description='TTL per key type (JSON); `ttl="user"` or a key `user:...` uses it.',
    )
    l1_max_entries: int = Field(
        10_000, ge=0, description="In-process (L1) entries; 0 turns L1 off."
    )
    l1_max_bytes: int = Field(32 * 1024 * 1024, ge=0, description="L1 size bound (bytes).")
    l1_ttl: float = Field(2.0, ge=0, description="Seconds an L1 entry lives at most.")
    compress_min_bytes: int = Field(
        4096, ge=0, description="Values at least this large are zlib-compressed; 0 = never."
    )
    max_key_length: int = Field(
        200, ge=32, le=10_000, description="Longer keys are replaced by their SHA-256."
    )
    lock_ttl: float = Field(10.0, gt=0, description="Cross-process loader lock lifetime.")
    lock_wait: float = Field(5.0, ge=0, description="Seconds a waiter waits for the loader.")
    stale_while_revalidate: float = Field(
        0.0, ge=0, description="Seconds past expiry a value is served while it reloads."
    )
    stale_if_error: float = Field(
        0.0, ge=0, description="Seconds past expiry a value is served when the loader fails."
    )
    early_refresh_beta: float = Field(
        0.0, ge=0, description="Probabilistic early refresh (XFetch beta, ~1.0); 0 = off."
    )
    retry_after: float = Field(
        1.0, ge=0, description="After an L2 error, seconds the cache uses L1 + loader only."
    )
    coherence: bool = Field(
        True, description="Invalidate other processes' L1 through the backend's channel."
    )

    @field_validator("ttl_presets")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(name for name, ttl in v.items() if ttl <= 0)
        if bad:
            raise ValueError(f"TTL presets must be > 0 seconds: {', '.join(bad)}")
        return v

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, v: str) -> str:
        if any(ch in v for ch in "{}*?[]\\ "):
            raise ValueError("must not contain braces, glob characters or spaces")
        return v
