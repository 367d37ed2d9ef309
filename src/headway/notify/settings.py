"""``HEADWAY_NOTIFY_*``: SMTP server, Slack/Discord/push URLs, SMS provider, per-user limit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from headway.ratelimit.rate import Rate
from headway.settings import register_section

CHANNELS = ("email", "slack", "discord", "push", "sms")


@register_section
class NotifySettings(BaseSettings):
    """Every notification setting; environment variables are ``HEADWAY_NOTIFY_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_NOTIFY_", env_file=".env", extra="ignore", validate_default=True
    )

    smtp_host: str = Field("", description="SMTP server; empty = the email channel is off.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    smtp_user: str = Field("", description="SMTP login; empty = no authentication.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_from: str = Field("headway <noreply@localhost>", description="Sender of the e-mails.")
    smtp_tls: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="`starttls` (upgrade when offered), `tls` (TLS from the first byte, port "
        "465) or `none` (local relays only).",
    )
    smtp_timeout: float = Field(15.0, gt=0, le=300, description="Seconds per SMTP exchange.")
    slack_webhook_url: SecretStr | None = Field(
        None, description="Slack incoming-webhook URL (a credential); empty = Slack off."
    )
    discord_webhook_url: SecretStr | None = Field(
        None, description="Discord webhook URL (a credential); empty = Discord off."
    )
    push_url: SecretStr | None = Field(
        None, description="Default URL of the generic HTTP push (a recipient's own URL wins)."
    )
    sms_provider: str = Field(
        "log",
        description="SMS provider: `log` (writes to the log, sends nothing) or "
        "`module:attr` of an `SmsProvider` class.",
    )
    rate_limit: str = Field("30/hour", description="Notifications per user (per tenant).")
    default_channels: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["email"],
        description="Channels of an event the user set no preference for, comma-separated.",
    )
    queue: str = Field("notifications", description="Job queue of the sends.")
    retries: int = Field(5, ge=0, le=50, description="Retries of a failed send.")
    retry_delay: float = Field(
        10.0, ge=0, le=3600, description="Seconds before the first retry; doubles each time."
    )
    http_timeout: float = Field(10.0, gt=0, le=120, description="Seconds per HTTP push.")
    templates_dir: str = Field(
        "", description="Directory of templates that override the packaged ones."
    )

    @field_validator("default_channels", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("default_channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in CHANNELS:
                raise ValueError(f"unknown channel {name!r}; channels: {', '.join(CHANNELS)}")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        Rate.parse(value)
        return value
