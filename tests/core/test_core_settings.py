"""Settings: defaults, HEADWAY_* variables, validation messages, secrets never shown."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import headway
from headway import ConfigError, Headway, Settings, load_settings
from headway.settings import mask_url

TOKEN = "admin-token-value-0123456789abcdef"
PASSWORD = "hunter2-db-password"

# -- defaults -------------------------------------------------------------------------


def test_default_sql_url_is_a_sqlite_file_under_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": tmp_path / "data"})
    assert settings.sql_url == f"sqlite:///{tmp_path / 'data' / 'headway.db'}"


def test_default_data_dir_is_dot_headway_in_the_working_directory() -> None:
    settings = load_settings()
    assert settings.data_dir == Path(".headway")
    assert settings.sql_url == f"sqlite:///{Path('.headway') / 'headway.db'}"


def test_default_file_storage_url_is_under_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": tmp_path})
    assert settings.file_storage_url == f"file://{tmp_path / 'storage'}"


def test_storage_url_setting_replaces_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_STORAGE_URL", "s3://my-bucket")
    assert load_settings().file_storage_url == "s3://my-bucket"


def test_without_redis_jobs_use_the_database_and_cache_uses_memory(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": tmp_path})
    assert settings.redis_url is None
    assert settings.backend_url("jobs") == settings.sql_url
    assert settings.backend_url("flags") == settings.sql_url
    assert settings.backend_url("cache") == "memory://"
    assert settings.backend_url("limits") == "memory://"


def test_database_url_is_the_default_for_database_backed_capabilities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from headway import registry

    monkeypatch.setenv("HEADWAY_DATABASE_URL", "postgresql://app@db:5432/app")
    settings = load_settings()
    assert settings.sql_url == "postgresql://app@db:5432/app"
    # flags have a backend for the database's scheme -> the database itself
    monkeypatch.setitem(registry._BACKENDS, "flags", {})
    registry.register("flags", "postgresql", "headway.nowhere:Backend")
    assert settings.backend_url("flags") == "postgresql://app@db:5432/app"
    # jobs without a backend for that scheme -> an embedded SQLite file, not a crash
    jobs = {k: v for k, v in registry._BACKENDS.get("jobs", {}).items() if k != "postgresql"}
    monkeypatch.setitem(registry._BACKENDS, "jobs", jobs)
    assert settings.backend_url("jobs") == f"sqlite:///{settings.data_dir / 'jobs.db'}"


def test_redis_url_is_used_by_jobs_and_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_REDIS_URL", "redis://cache-host:6379/3")
    settings = load_settings()
    assert settings.backend_url("jobs") == "redis://cache-host:6379/3"
    assert settings.backend_url("cache") == "redis://cache-host:6379/3"
    assert settings.backend_url("events") == "redis://cache-host:6379/3"


def test_capability_url_overrides_the_shared_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_REDIS_URL", "redis://cache-host:6379/3")
    monkeypatch.setenv("HEADWAY_JOBS_URL", "memory://")
    settings = load_settings()
    assert settings.backend_url("jobs") == "memory://"
    assert settings.backend_url("cache") == "redis://cache-host:6379/3"


def test_unknown_capability_is_a_key_error_listing_the_known_ones() -> None:
    with pytest.raises(KeyError, match="jobs"):
        load_settings().backend_url("nope")


def test_empty_redis_url_means_no_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_REDIS_URL", "")
    settings = load_settings()
    assert settings.redis_url is None
    assert settings.backend_url("cache") == "memory://"


# -- environment variables ------------------------------------------------------------


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEADWAY_PORT", "9123")
    monkeypatch.setenv("HEADWAY_HOST", "0.0.0.0")
    monkeypatch.setenv("HEADWAY_POOL_SIZE", "4")
    monkeypatch.setenv("HEADWAY_POOL_MAX", "12")
    monkeypatch.setenv("HEADWAY_IDLE_TIMEOUT", "2.5")
    monkeypatch.setenv("HEADWAY_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("HEADWAY_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("HEADWAY_DEMO_SEED", "false")
    settings = load_settings()
    assert settings.port == 9123
    assert settings.host == "0.0.0.0"
    assert settings.pool_size == 4
    assert settings.pool_max == 12
    assert settings.idle_timeout == 2.5
    assert settings.data_dir == tmp_path / "d"
    assert settings.log_level == "DEBUG"
    assert settings.demo_seed is False


def test_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_PORT", "9123")
    assert load_settings({"port": 9200}).port == 9200


def test_headway_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_POOL_SIZE", "7")
    assert Headway().settings.pool_size == 7


# -- invalid values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "forms"),
    [
        (
            "HEADWAY_DATABASE_URL",
            "mysql://x",
            ["sqlite:///path/to/file.db", "postgresql://user:password@host:5432/dbname"],
        ),
        (
            "HEADWAY_REDIS_URL",
            "http://x",
            ["redis://host:6379/0", "rediss://host:6380/0", "unix:///path/to/redis.sock"],
        ),
        (
            "HEADWAY_JOBS_URL",
            "ftp://x",
            ["memory://", "sqlite:///path/to/file.db", "redis://host:6379/0"],
        ),
        ("HEADWAY_CACHE_URL", "mysql://x/db", ["memory://", "redis://host:6379/0"]),
        ("HEADWAY_STORAGE_URL", "gs://bucket", ["file:///path/to/dir", "s3://bucket"]),
    ],
)
def test_invalid_url_names_the_variable_and_the_accepted_forms(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, forms: list[str]
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert value in message
    for form in forms:
        assert form in message


def test_invalid_url_raises_from_the_hub_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_DATABASE_URL", "mysql://x")
    with pytest.raises(headway.ConfigError, match="HEADWAY_DATABASE_URL"):
        Headway()


def test_config_error_is_a_headway_error() -> None:
    assert issubclass(ConfigError, headway.HeadwayError)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HEADWAY_PORT", "abc"),
        ("HEADWAY_PORT", "70000"),
        ("HEADWAY_POOL_MAX", "0"),
        ("HEADWAY_POOL_SIZE", "-1"),
        ("HEADWAY_WORKERS", "many"),
        ("HEADWAY_IDLE_TIMEOUT", "0"),
    ],
)
def test_invalid_number_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert repr(value) in message  # the bad value is quoted back


def test_every_invalid_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_PORT", "abc")
    monkeypatch.setenv("HEADWAY_POOL_MAX", "0")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "HEADWAY_PORT" in message
    assert "HEADWAY_POOL_MAX" in message


def test_invalid_choice_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="HEADWAY_LOG_LEVEL"):
        load_settings()


@pytest.mark.parametrize("variable", ["HEADWAY_ADMIN_TOKEN", "HEADWAY_SECRET_KEY"])
def test_short_secret_is_rejected_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    short = "tooShort-x9"
    monkeypatch.setenv(variable, short)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert "16" in message
    assert short not in message
    assert short not in repr(info.value)


def test_empty_admin_token_means_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_ADMIN_TOKEN", "")
    assert load_settings().admin_token is None


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("HEADWAY_DATABASE_URL", f"mysql://app:{PASSWORD}@db:3306/app"),
        ("HEADWAY_REDIS_URL", f"http://:{PASSWORD}@cache:6379/0"),
        ("HEADWAY_JOBS_URL", f"amqp://user:{PASSWORD}@mq:5672/"),
    ],
)
def test_url_password_never_appears_in_the_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, url: str
) -> None:
    monkeypatch.setenv(variable, url)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert PASSWORD not in message
    assert "***" in message


# -- secret key -----------------------------------------------------------------------


def test_secret_bytes_creates_one_key_file_and_reuses_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = load_settings({"data_dir": data_dir})
    first = settings.secret_bytes()
    assert len(first) >= 32
    assert [p.name for p in data_dir.iterdir()] == ["secret.key"]
    assert settings.secret_bytes() == first
    assert load_settings({"data_dir": data_dir}).secret_bytes() == first
    assert [p.name for p in data_dir.iterdir()] == ["secret.key"]


def test_secret_key_file_is_private(tmp_path: Path) -> None:
    load_settings({"data_dir": tmp_path}).secret_bytes()
    mode = stat.S_IMODE((tmp_path / "secret.key").stat().st_mode)
    assert mode == 0o600


def test_secret_key_differs_between_data_dirs(tmp_path: Path) -> None:
    one = load_settings({"data_dir": tmp_path / "a"}).secret_bytes()
    two = load_settings({"data_dir": tmp_path / "b"}).secret_bytes()
    assert one != two


def test_configured_secret_key_is_used_and_no_file_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HEADWAY_SECRET_KEY", "k" * 32)
    settings = load_settings({"data_dir": tmp_path / "data"})
    assert settings.secret_bytes() == b"k" * 32
    assert not (tmp_path / "data" / "secret.key").exists()


# -- public view ----------------------------------------------------------------------


def test_public_view_masks_secrets_and_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("HEADWAY_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("HEADWAY_DATABASE_URL", f"postgresql://app:{PASSWORD}@db:5432/app")
    monkeypatch.setenv("HEADWAY_REDIS_URL", f"redis://:{PASSWORD}@cache:6379/0")
    monkeypatch.setenv("HEADWAY_CACHE_URL", f"rediss://user:{PASSWORD}@cache2:6380/1")
    view = load_settings().public_view()
    assert view["HEADWAY_ADMIN_TOKEN"] == "***"
    assert view["HEADWAY_SECRET_KEY"] == "***"
    assert view["HEADWAY_DATABASE_URL"] == "postgresql://app:***@db:5432/app"
    assert view["HEADWAY_REDIS_URL"] == "redis://:***@cache:6379/0"
    assert view["HEADWAY_CACHE_URL"] == "rediss://user:***@cache2:6380/1"
    shown = repr(view)
    assert TOKEN not in shown
    assert "s" * 40 not in shown
    assert PASSWORD not in shown


def test_public_view_names_every_variable_and_shows_unset_secrets_as_none() -> None:
    view = load_settings().public_view()
    assert set(view) == {f"HEADWAY_{name.upper()}" for name in Settings.model_fields}
    assert view["HEADWAY_ADMIN_TOKEN"] is None
    assert view["HEADWAY_PORT"] == 8000
    assert isinstance(view["HEADWAY_DATA_DIR"], str)


def test_mask_url_leaves_passwordless_urls_alone() -> None:
    assert mask_url("redis://cache:6379/0") == "redis://cache:6379/0"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("password", ["pa#ss-word-1", "pa/ss-word-2", "pa?ss-word-3"])
def test_public_view_masks_passwords_with_url_delimiters(
    monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    monkeypatch.setenv("HEADWAY_DATABASE_URL", f"postgresql://app:{password}@db:5432/app")
    assert password not in repr(load_settings().public_view())


def test_public_view_does_not_crash_on_a_url_with_a_bad_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEADWAY_REDIS_URL", f"redis://:{PASSWORD}@cache:port/0")
    try:
        settings = load_settings()
    except ConfigError as exc:  # rejecting the URL up front is a fix too
        assert "HEADWAY_REDIS_URL" in str(exc)
        assert PASSWORD not in str(exc)
        return
    assert PASSWORD not in repr(settings.public_view())
