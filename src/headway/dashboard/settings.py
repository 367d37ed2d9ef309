"""``HEADWAY_DASHBOARD_*``: the admin dashboard's login and refresh options.

The dashboard exists only when ``HEADWAY_ADMIN_TOKEN`` is set (like every admin
endpoint); that token always opens it. ``password_hash`` adds a password login
(``python -m headway.dashboard hash-password`` prints one).
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from headway.settings import register_section


@register_section
class DashboardSettings(BaseSettings):
    """Every dashboard setting; environment variables are ``HEADWAY_DASHBOARD_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_DASHBOARD_", env_file=".env", extra="ignore", validate_default=True
    )

    enabled: bool = Field(
        True, description="Serve the dashboard at /admin/ui (it also needs HEADWAY_ADMIN_TOKEN)."
    )
    password_hash: SecretStr | None = Field(
        None,
        description="PBKDF2 hash of an admin password (`python -m headway.dashboard "
        "hash-password`); empty = only the admin token logs in.",
    )
    session_lifetime: int = Field(
        8 * 3600, ge=60, le=30 * 86400, description="Seconds a dashboard login lasts."
    )
    refresh_interval: float = Field(
        5.0, ge=1, le=300, description="Seconds between live updates of the pages."
    )
    history: int = Field(
        120, ge=10, le=10_000, description="Samples kept for the overview's charts."
    )

    @field_validator("password_hash")
    @classmethod
    def _hash_shape(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or v.get_secret_value() == "":
            return None
        from headway.dashboard.security import parse_password_hash

        parse_password_hash(v.get_secret_value())  # raises ValueError with the expected form
        return v
