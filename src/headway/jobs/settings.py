"""``HEADWAY_JOBS_*``: the job system's own settings.

The backend URL is not here: :meth:`headway.settings.Settings.backend_url` resolves it
(``HEADWAY_JOBS_URL``, else ``HEADWAY_REDIS_URL``, else the database / a SQLite file).
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from headway.jobs import constants as c
from headway.settings import register_section


@register_section
class JobsSettings(BaseSettings):
    """Every job-system setting; environment variables are ``HEADWAY_JOBS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_JOBS_", env_file=".env", extra="ignore", validate_default=True
    )

    redis_prefix: str = Field(
        c.REDIS_PREFIX,
        min_length=1,
        max_length=64,
        description="First segment of every Redis job key (a `?prefix=` in the URL wins).",
    )
    pg_schema: str = Field(
        "headway_jobs",
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="PostgreSQL schema of the job tables (a `?jobs_schema=` in the URL wins; "
        "unset with a `?schema=X` database URL: `X_jobs`).",
    )
    pg_notify: bool = Field(
        True,
        description="PostgreSQL: wake idle workers with LISTEN/NOTIFY; false = they poll "
        "every poll_interval.",
    )
    keep_succeeded: int = Field(
        c.KEEP_SUCCEEDED, ge=0, description="Succeeded jobs kept per queue (newest first)."
    )
    keep_failed: int = Field(
        c.KEEP_FAILED, ge=0, description="Failed jobs kept per queue (the failed store)."
    )
    max_age: float | None = Field(
        None, gt=0, description="Also delete finished jobs older than this (seconds); empty = no."
    )
    concurrency: int = Field(
        c.DEFAULT_CONCURRENCY, ge=1, le=10_000, description="Jobs a worker process runs at once."
    )
    lease: float = Field(
        c.DEFAULT_LEASE,
        ge=0.5,
        le=86_400,
        description="Seconds a running job's lease lasts; the worker renews it every third.",
    )
    poll_interval: float = Field(
        c.DEFAULT_POLL_INTERVAL,
        gt=0,
        le=60,
        description="Most seconds an idle worker waits before looking again "
        "(Redis wakes it at once on enqueue; delayed jobs and expired leases wait this long).",
    )
    grace: float = Field(
        c.DEFAULT_GRACE, ge=0, description="Seconds a stopping worker lets running jobs finish."
    )

    @field_validator("redis_prefix")
    @classmethod
    def _plain_prefix(cls, v: str) -> str:
        if any(ch in v for ch in "{}*?[]\\ :"):
            raise ValueError("must not contain braces, colons, glob characters or spaces")
        return v
