"""Configuration: every ``HEADWAY_*`` environment variable, with its default.

One shared URL per kind of server (``HEADWAY_DATABASE_URL``, ``HEADWAY_REDIS_URL``,
``HEADWAY_STORAGE_URL``) and an optional override per capability
(``HEADWAY_JOBS_URL``, ``HEADWAY_CACHE_URL``, ...). :meth:`Settings.backend_url` resolves
which URL a capability uses. An invalid value raises :class:`~headway.errors.ConfigError`
naming the variable and the forms it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from headway import constants, registry
from headway.errors import ConfigError

# Accepted URL forms per setting, shown in error messages and in the README.
SQL_FORMS = ("sqlite:///path/to/file.db", "postgresql://user:password@host:5432/dbname")
REDIS_FORMS = (
    "redis://host:6379/0",
    "rediss://host:6380/0",
    "unix:///path/to/redis.sock",
    "redis+cluster://host:7000",
    "redis+sentinel://host:26379/mymaster/0",
)
STORAGE_FORMS = ("file:///path/to/dir", "file://relative/dir", "s3://bucket")
MEMORY_FORMS = ("memory://",)

_SQL_SCHEMES = {"sqlite", "sqlite+aiosqlite", "postgresql", "postgresql+asyncpg", "postgres"}
_REDIS_SCHEMES = {
    *constants.REDIS_SCHEMES,
    *(f"{s}+{kind}" for s in ("redis", "rediss") for kind in ("cluster", "sentinel")),
}
_STORAGE_SCHEMES = {"file", "s3"}

# Capability -> (accepted schemes, accepted forms, which shared URL is its default).
_SQL = (frozenset(_SQL_SCHEMES), SQL_FORMS)
_REDIS = (frozenset(_REDIS_SCHEMES), REDIS_FORMS)
_MEMORY = (frozenset({"memory"}), MEMORY_FORMS)


def _accepts(
    *kinds: tuple[frozenset[str], tuple[str, ...]],
) -> tuple[frozenset[str], tuple[str, ...]]:
    schemes = frozenset().union(*(k[0] for k in kinds))
    forms = tuple(form for k in kinds for form in k[1])
    return schemes, forms


CAPABILITY_URLS: dict[str, tuple[frozenset[str], tuple[str, ...], str]] = {
    "jobs": (*_accepts(_MEMORY, _SQL, _REDIS), "redis_or_database"),
    "cache": (*_accepts(_MEMORY, _REDIS, _SQL), "redis_or_memory"),
    "limits": (*_accepts(_MEMORY, _REDIS), "redis_or_memory"),
    "resilience": (*_accepts(_MEMORY, _REDIS), "redis_or_memory"),
    "flags": (*_accepts(_MEMORY, _SQL, _REDIS), "redis_or_database"),
    "events": (*_accepts(_MEMORY, _REDIS, _SQL), "redis_or_memory"),
}

SECRET_FIELDS = frozenset({"admin_token", "secret_key"})


def env_name(field: str) -> str:
    """``database_url`` -> ``HEADWAY_DATABASE_URL``."""
    return f"{constants.ENV_PREFIX}{field.upper()}"


def _check_url(
    value: str | None, schemes: set[str] | frozenset[str], forms: tuple[str, ...]
) -> None:
    if value is None or value == "":
        return
    scheme = urlsplit(value).scheme.lower()
    if scheme not in schemes:
        shown = mask_url(value)
        raise ValueError(f"{shown!r} is not an accepted URL; accepted forms: {', '.join(forms)}")


def mask_url(url: str) -> str:
    """Hide the password of a URL (``redis://:secret@host`` -> ``redis://:***@host``).

    The user info ends at the *last* ``@`` (as SQLAlchemy reads it), so a password holding
    ``#``, ``/`` or ``?`` is still hidden; when in doubt this masks more, never less.
    """
    scheme, sep, rest = url.partition("://")
    at = rest.rfind("@")
    if not sep or at < 0:
        return url
    user, colon, _ = rest[:at].partition(":")
    return f"{scheme}://{user}:***{rest[at:]}" if colon else url


class Settings(BaseSettings):
    """Every setting headway reads. Environment variables are ``HEADWAY_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix=constants.ENV_PREFIX, env_file=".env", extra="ignore", validate_default=True
    )

    env: Literal["development", "test", "production"] = Field(
        "development", description="Deployment environment; production refuses insecure defaults."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    data_dir: Path = Field(
        Path(constants.DEFAULT_DATA_DIR),
        description="Directory of the embedded defaults (SQLite file, local storage, secret key).",
    )

    database_url: str = Field(
        "", description="SQL database; empty = SQLite file `<data_dir>/headway.db`."
    )
    redis_url: str | None = Field(
        None, description="Shared Redis; when set, jobs/cache/limits/breakers/events use it."
    )
    storage_url: str = Field("", description="File storage; empty = `file://<data_dir>/storage`.")

    jobs_url: str | None = Field(None, description="Override for the job queue backend.")
    cache_url: str | None = Field(None, description="Override for the shared (L2) cache.")
    limits_url: str | None = Field(None, description="Override for rate-limit counters.")
    resilience_url: str | None = Field(None, description="Override for circuit-breaker state.")
    flags_url: str | None = Field(None, description="Override for feature-flag storage.")
    events_url: str | None = Field(None, description="Override for realtime fan-out.")

    pool_size: int = Field(
        constants.DEFAULT_POOL_SIZE, ge=1, le=1000, description="SQL connections kept open."
    )
    pool_max: int = Field(
        constants.DEFAULT_POOL_MAX,
        ge=1,
        le=10000,
        description="Max connections per pool (SQL: size + overflow; Redis: max connections).",
    )
    connect_timeout: float = Field(
        constants.DEFAULT_CONNECT_TIMEOUT, gt=0, le=300, description="Seconds to open a connection."
    )
    idle_timeout: float = Field(
        constants.DEFAULT_IDLE_TIMEOUT,
        gt=0,
        le=86400,
        description="Seconds after which an idle pooled connection is checked or replaced.",
    )

    secret_key: SecretStr | None = Field(
        None,
        description="Signs cursors and URLs; empty = a random key kept in `<data_dir>/secret.key`.",
    )
    admin_token: SecretStr | None = Field(
        None, description="Token for the admin endpoints; empty = admin endpoints disabled (404)."
    )

    host: str = Field(constants.DEFAULT_HOST, description="`headway serve` bind address.")
    port: int = Field(constants.DEFAULT_PORT, ge=1, le=65535, description="`headway serve` port.")
    workers: int = Field(1, ge=1, le=64, description="`headway serve` web processes.")
    inprocess_worker: bool = Field(
        True,
        description="Run the job worker and cron scheduler inside each served web process; "
        "set false when separate `headway worker` processes run.",
    )
    demo_seed: bool = Field(
        True, description="Seed two demo tenants when the reference service starts on an empty DB."
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str) -> str:
        _check_url(v, _SQL_SCHEMES, SQL_FORMS)
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        _check_url(v, _REDIS_SCHEMES, REDIS_FORMS)
        return v or None

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, v: str) -> str:
        _check_url(v, _STORAGE_SCHEMES, STORAGE_FORMS)
        return v

    @field_validator(
        "jobs_url", "cache_url", "limits_url", "resilience_url", "flags_url", "events_url"
    )
    @classmethod
    def _capability_url(cls, v: str | None, info: Any) -> str | None:
        schemes, forms, _ = CAPABILITY_URLS[str(info.field_name).removesuffix("_url")]
        _check_url(v, schemes, forms)
        return v or None

    @field_validator("admin_token", "secret_key")
    @classmethod
    def _secret_length(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or v.get_secret_value() == "":
            return None
        if len(v.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (use `openssl rand -hex 32`)")
        return v

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.env == "production" and self.secret_key is None:
            raise ValueError(
                "HEADWAY_SECRET_KEY is required when HEADWAY_ENV=production "
                "(every process and machine must sign with the same key)"
            )
        return self

    # -- derived values -------------------------------------------------------------

    @property
    def sql_url(self) -> str:
        """The database URL, with the embedded default filled in."""
        return self.database_url or f"sqlite:///{self.data_dir / 'headway.db'}"

    @property
    def file_storage_url(self) -> str:
        return self.storage_url or f"file://{self.data_dir / 'storage'}"

    def backend_url(self, capability: str) -> str:
        """The URL a capability uses: its own override, else the shared default."""
        if capability not in CAPABILITY_URLS:
            raise KeyError(f"unknown capability {capability!r}; known: {sorted(CAPABILITY_URLS)}")
        override: str | None = getattr(self, f"{capability}_url")
        if override:
            return override
        default = CAPABILITY_URLS[capability][2]
        if self.redis_url:
            return self.redis_url
        if default != "redis_or_database":
            return "memory://"

        scheme = registry.scheme_of(self.sql_url)
        # SQLite is the embedded default: every database-backed capability supports it.
        if scheme == "sqlite" or scheme in registry.schemes(capability):
            return self.sql_url
        # No backend of this capability for the database (yet): an embedded SQLite file.
        return f"sqlite:///{self.data_dir / (capability + '.db')}"

    def secret_bytes(self) -> bytes:
        """The signing key: the setting, else a random key created once in ``data_dir``."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with path.open("x", encoding="ascii") as fh:
                    fh.write(secrets.token_hex(32))
                path.chmod(0o600)
            except FileExistsError:  # another process created it first
                pass
        return path.read_text(encoding="ascii").strip().encode()

    def public_view(self) -> dict[str, Any]:
        """Effective settings with secrets and URL passwords masked (for `headway config`)."""
        view = public_view(self)
        view[env_name("database_url")] = mask_url(self.sql_url)
        view[env_name("storage_url")] = mask_url(self.file_storage_url)
        return view


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read the environment (plus ``overrides``); raise ConfigError on an invalid value."""
    return load_section(Settings, overrides)


# -- capability sections ----------------------------------------------------------------
# A capability with settings of its own declares a BaseSettings subclass with env_prefix
# "HEADWAY_<NAME>_" and registers it, so that `headway config`, the README check and the
# error messages treat it like the core settings. Fields whose name ends in "_token",
# "_secret", "_password" or "_key" are masked.

S = TypeVar("S", bound=BaseSettings)
SECTIONS: dict[str, type[BaseSettings]] = {}


def register_section(cls: type[S]) -> type[S]:
    """Class decorator: make a capability's settings part of the one configuration."""
    SECTIONS[_prefix(cls)] = cls
    return cls


def _prefix(cls: type[BaseSettings]) -> str:
    return str(cls.model_config.get("env_prefix", ""))


def _is_secret(name: str) -> bool:
    return name in SECRET_FIELDS or name.endswith(("_token", "_secret", "_password", "_key"))


def load_section(cls: type[S], overrides: Mapping[str, Any] | None = None) -> S:
    """Build ``cls`` from the environment; an invalid value raises ConfigError."""
    try:
        return cls(**dict(overrides or {}))
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            if not err["loc"]:  # a check across several fields names them itself
                lines.append(msg)
                continue
            field = str(err["loc"][0])
            if not _is_secret(field) and not field.endswith("_url") and "input" in err:
                msg += f" (got {err['input']!r})"
            lines.append(f"{_prefix(cls)}{field.upper()}: {msg}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def public_view(settings: BaseSettings) -> dict[str, Any]:
    """Any settings object as ``{ENV_NAME: value}``, secrets and URL passwords masked."""
    out: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if _is_secret(name):
            value = None if value is None else "***"
        elif isinstance(value, str) and "://" in value:
            value = mask_url(value)
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, SecretStr):
            value = "***"
        out[f"{_prefix(settings.__class__)}{name.upper()}"] = value
    return out
