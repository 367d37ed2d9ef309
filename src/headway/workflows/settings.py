"""``HEADWAY_WORKFLOWS_*``: where workflow state lives and the engine's defaults."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from headway.settings import register_section
from headway.workflows import constants as c


@register_section
class WorkflowsSettings(BaseSettings):
    """Every workflow setting; environment variables are ``HEADWAY_WORKFLOWS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_WORKFLOWS_", env_file=".env", extra="ignore", validate_default=True
    )

    url: str | None = Field(
        None,
        description="Workflow state store (`memory://`, `sqlite:///...`, `postgresql://...`, "
        "`redis://...`); empty = `HEADWAY_REDIS_URL`, else the database.",
    )
    queue: str = Field(
        c.DEFAULT_QUEUE,
        min_length=1,
        max_length=100,
        description="Queue of step jobs whose task keeps the default queue.",
    )
    approval_expiry: float = Field(
        c.DEFAULT_APPROVAL_EXPIRY,
        gt=0,
        description="Seconds an approval request stays open unless the step says otherwise.",
    )
    sweep_interval: float = Field(
        c.DEFAULT_SWEEP_INTERVAL,
        ge=0,
        description="Seconds between sweeps that expire approvals and repair runs whose "
        "advance was interrupted; 0 = no background sweep.",
    )
    retention: float = Field(
        c.DEFAULT_RETENTION,
        ge=0,
        description="Seconds an ended run (and its approvals) is kept after it finished; "
        "the background sweep deletes older ones; 0 = keep forever.",
    )
    redis_prefix: str = Field(
        c.REDIS_PREFIX,
        min_length=1,
        max_length=64,
        description="First segment of every Redis workflow key (a `?prefix=` in the URL wins).",
    )

    @field_validator("redis_prefix")
    @classmethod
    def _plain_prefix(cls, v: str) -> str:
        if any(ch in v for ch in "{}*?[]\\ :"):
            raise ValueError("must not contain braces, colons, glob characters or spaces")
        return v
