"""``HEADWAY_OBSERVE_*``: metrics, health, logs and alert settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from headway.settings import register_section


class RuleSpec(BaseModel):
    """An alert rule on any exported metric (see :mod:`headway.observe.alerts`)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    labels: dict[str, str] = Field(default_factory=dict, description="label -> regex")
    over: Literal["value", "max", "min", "rate_per_minute", "quantile"] = "value"
    quantile: float = Field(0.95, gt=0, lt=1)
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str = ""
    min_count: float = Field(0, ge=0, description="quantile: fewer observations = no data")


@register_section
class ObserveSettings(BaseSettings):
    """Every ``HEADWAY_OBSERVE_*`` variable."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_OBSERVE_", env_file=".env", extra="ignore", validate_default=True
    )

    enabled: bool = Field(True, description="Metrics, health routes and request logs.")
    metrics_path: str = Field("/metrics", pattern=r"^/", description="Prometheus scrape path.")
    metrics_token: SecretStr | None = Field(
        None, description="When set, /metrics needs `Authorization: Bearer <token>`."
    )
    health_path: str = Field(
        "/health", pattern=r"^/", description="Liveness path; readiness is `<path>/ready`."
    )
    check_timeout: float = Field(2.0, gt=0, le=60, description="Seconds per readiness check.")
    ready_cache: float = Field(
        1.0, ge=0, le=60, description="Seconds a readiness answer is reused (probe storms)."
    )
    logs: bool = Field(True, description="Configure structured logging when the hub starts.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto = console in development, JSON otherwise."
    )
    access_log: bool = Field(True, description="One log line per request.")
    alerts: bool = Field(True, description="Evaluate alert rules periodically.")
    alert_interval: float = Field(15.0, gt=0, le=3600, description="Seconds between evaluations.")
    alert_window: float = Field(300.0, gt=0, le=86400, description="Seconds rates look back.")
    alert_cooldown: float = Field(
        1800.0, ge=0, le=7 * 86400, description="Seconds before a firing alert is sent again."
    )
    alert_defaults: bool = Field(True, description="Include the built-in rules.")
    alert_rules: list[RuleSpec] = Field(
        default_factory=list, description="More rules, as a JSON list of RuleSpec objects."
    )
    slack_webhook_url: SecretStr | None = Field(None, description="Slack incoming webhook.")
    discord_webhook_url: SecretStr | None = Field(None, description="Discord webhook.")
    webhook_url: SecretStr | None = Field(None, description="Generic JSON webhook (POST).")
    webhook_secret: SecretStr | None = Field(
        None, description="Signs the generic webhook: `X-Headway-Signature: sha256=<hmac>`."
    )
    smtp_url: SecretStr | None = Field(
        None, description="smtp://user:password@host:587 (STARTTLS if offered) or smtps://."
    )
    email_from: str = Field("headway@localhost", description="Sender of alert e-mails.")
    email_to: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Recipients, comma-separated."
    )

    @field_validator("email_to", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [part.strip() for part in v.split(",") if part.strip()]
        return v

    @field_validator("slack_webhook_url", "discord_webhook_url", "webhook_url", "smtp_url")
    @classmethod
    def _url(cls, v: SecretStr | None, info: Any) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        allowed = (
            ("smtp://", "smtps://") if info.field_name == "smtp_url" else ("http://", "https://")
        )
        if not v.get_secret_value().startswith(allowed):
            raise ValueError(f"must start with {' or '.join(allowed)}")
        return v
