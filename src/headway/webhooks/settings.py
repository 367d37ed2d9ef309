"""``HEADWAY_WEBHOOKS_*``: retry schedule, timeouts, auto-disable, SSRF allow-list, log size."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from headway.settings import register_section

# Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (the schedule Svix publishes).
DEFAULT_SCHEDULE = [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


@register_section
class WebhooksSettings(BaseSettings):
    """Every webhook setting; environment variables are ``HEADWAY_WEBHOOKS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_WEBHOOKS_", env_file=".env", extra="ignore", validate_default=True
    )

    retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SCHEDULE),
        description="Seconds before each attempt, comma-separated: the first is the first "
        "attempt's delay, one attempt per entry.",
    )
    timeout: float = Field(
        15.0, gt=0, le=300, description="Seconds an endpoint has to answer 2xx (else a failure)."
    )
    disable_after: int = Field(
        10, ge=1, le=10_000, description="Consecutive failed attempts that disable an endpoint."
    )
    allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names, IPs or CIDRs exempt from the SSRF guard (e.g. `127.0.0.1`).",
    )
    queue: str = Field("webhooks", description="Job queue of the deliveries.")
    max_payload: int = Field(
        256 * 1024, ge=1, le=16 * 1024 * 1024, description="Largest JSON payload, bytes."
    )
    excerpt_bytes: int = Field(
        1024, ge=0, le=65536, description="Bytes of each response body kept in the delivery log."
    )
    log_retention: float = Field(
        30 * 86400.0, gt=0, description="Seconds delivery-log rows and messages are kept."
    )
    log_keep: int = Field(
        1000, ge=1, le=1_000_000, description="Delivery-log rows kept per endpoint (newest)."
    )
    rotation_overlap: float = Field(
        86400.0, ge=0, le=30 * 86400, description="Seconds the previous secret keeps signing."
    )
    max_endpoints: int = Field(
        100, ge=1, le=100_000, description="Endpoints one tenant may register."
    )

    @field_validator("retry_schedule", "allow_hosts", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("retry_schedule")
    @classmethod
    def _schedule(cls, value: list[float]) -> list[float]:
        if not value or len(value) > 50 or any(v < 0 for v in value):
            raise ValueError("give 1-50 delays in seconds, each >= 0 (e.g. `0,5,300,1800`)")
        return value

    @field_validator("allow_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                out.append(item.lower().rstrip("."))
        return out
