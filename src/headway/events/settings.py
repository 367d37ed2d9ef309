"""``HEADWAY_EVENTS_*``: history bounds, client buffers, heartbeats and limits.

Which backend carries the fan-out is the core ``HEADWAY_EVENTS_URL`` (default: the shared
``HEADWAY_REDIS_URL``, else ``memory://``); this section only tunes it.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from headway.settings import register_section


@register_section
class EventsSettings(BaseSettings):
    """Every events setting; environment variables are ``HEADWAY_EVENTS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_EVENTS_", env_file=".env", extra="ignore", validate_default=True
    )

    history_size: int = Field(
        100, ge=0, le=100_000, description="Messages kept per channel for reconnecting clients."
    )
    history_ttl: float = Field(
        300.0, gt=0, le=7 * 86400, description="Seconds a channel's history is kept."
    )
    client_buffer: int = Field(
        256,
        ge=1,
        le=100_000,
        description="Messages queued per client; a client that falls further behind is dropped.",
    )
    heartbeat: float = Field(
        15.0, gt=0, le=3600, description="Seconds between heartbeats on idle connections."
    )
    max_payload: int = Field(
        65_536, ge=256, le=16 * 1024 * 1024, description="Largest encoded event, bytes."
    )
    max_channels: int = Field(
        20, ge=1, le=1000, description="Channels one connection may subscribe to."
    )
    path: str = Field(
        "/realtime", pattern=r"^/[A-Za-z0-9_/-]*$", description="URL prefix of `/ws` and `/sse`."
    )
    listener_queue: str = Field(
        "default",
        description="Default job queue of `queued=True` listeners (one every worker serves).",
    )
    listener_retries: int = Field(
        3, ge=0, le=100, description="Default retries of `queued=True` listeners."
    )
    redis_prefix: str = Field(
        "hw", pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Key prefix of the Redis backend."
    )
    tenant_metrics: bool = Field(
        True, description="Label the connection gauge by tenant (false: one `-` label)."
    )
