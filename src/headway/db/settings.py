"""``HEADWAY_DB_*``: the query monitor, slow-query log, N+1 detection and read replicas.

The primary database and its pool are core settings (``HEADWAY_DATABASE_URL``,
``HEADWAY_POOL_SIZE``, ``HEADWAY_POOL_MAX``); this section adds what ``headway.db`` does
on top of them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from headway.settings import _SQL_SCHEMES, SQL_FORMS, _check_url, register_section


@register_section
class DbSettings(BaseSettings):
    """Every ``headway.db`` setting; environment variables are ``HEADWAY_DB_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_DB_", env_file=".env", extra="ignore", validate_default=True
    )

    monitor: bool = Field(True, description="Record every statement's fingerprint and timing.")
    max_fingerprints: int = Field(
        500, ge=10, le=100_000, description="Distinct fingerprints kept (least costly evicted)."
    )
    slow_threshold: float = Field(
        1.0, ge=0, le=3600, description="Seconds after which a statement is logged as slow."
    )
    slow_log_size: int = Field(100, ge=1, le=10_000, description="Slow statements kept.")
    explain_slow: bool = Field(
        True, description="Attach an EXPLAIN plan to slow SELECTs (PostgreSQL only)."
    )
    explain_analyze: bool = Field(
        False,
        description="Use EXPLAIN (ANALYZE, BUFFERS) for slow SELECTs: runs the query again.",
    )
    n_plus_one_threshold: int = Field(
        10, ge=2, le=100_000, description="Same fingerprint this many times in one request/job."
    )
    n_plus_one_mode: Literal["off", "log", "raise"] = Field(
        "log", description="What an N+1 detection does: log it, raise NPlusOneError, or nothing."
    )
    n_plus_one_log_size: int = Field(100, ge=1, le=10_000, description="N+1 reports kept.")
    replica_urls: list[str] = Field(
        default_factory=list,
        description="Read replicas (JSON list) used by `hw.db.read_session()`.",
    )
    replica_flag: str = Field(
        "use-read-replicas",
        description="Feature flag switching replica reads at run time (undefined flag = on).",
    )
    replica_retry: float = Field(
        5.0, gt=0, le=3600, description="Seconds an unreachable replica is skipped."
    )
    index_min_rows: int = Field(
        10_000, ge=0, description="Tables smaller than this never get an index suggestion."
    )

    @field_validator("replica_urls")
    @classmethod
    def _replicas(cls, v: list[str]) -> list[str]:
        for url in v:
            _check_url(url, _SQL_SCHEMES, SQL_FORMS)
        return v
