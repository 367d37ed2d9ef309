"""The ``headway`` command line: output (CliRunner) and exit codes of the real script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import headway
from headway.cli import app, main

TOKEN = "cli-admin-token-0123456789abcdef"
PASSWORD = "cli-redis-password"
SCRIPT = Path(sys.executable).with_name("headway")
DOWN_REDIS = "redis://127.0.0.1:1/0"

runner = CliRunner()


def flat(text: str) -> str:
    """Collapse the line wrapping rich adds at the terminal width."""
    return " ".join(text.split())


def run_script(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with a clean HEADWAY_* environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HEADWAY_")}
    clean.update(env or {})
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- output (in process) --------------------------------------------------------------


def test_version_prints_the_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"headway {headway.__version__}"


def test_config_shows_settings_and_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("HEADWAY_PORT", "9321")
    monkeypatch.setenv("HEADWAY_REDIS_URL", f"redis://:{PASSWORD}@127.0.0.1:6379/0")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    assert "HEADWAY_ADMIN_TOKEN" in result.stdout
    assert "***" in result.stdout
    assert "9321" in result.stdout
    assert TOKEN not in result.output
    assert PASSWORD not in result.output


def test_config_json_is_valid_json_with_secrets_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("HEADWAY_POOL_MAX", "77")
    monkeypatch.setenv("HEADWAY_REDIS_URL", f"redis://:{PASSWORD}@127.0.0.1:6379/0")
    result = runner.invoke(app, ["config", "--json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["HEADWAY_ADMIN_TOKEN"] == "***"
    assert view["HEADWAY_SECRET_KEY"] is None
    assert view["HEADWAY_POOL_MAX"] == 77
    assert view["HEADWAY_REDIS_URL"] == "redis://:***@127.0.0.1:6379/0"
    assert TOKEN not in result.output
    assert PASSWORD not in result.output


def test_check_prints_a_table_of_backends() -> None:
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "database" in result.stdout
    assert "up" in result.stdout


def test_check_with_a_down_redis_says_down_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_REDIS_URL", DOWN_REDIS)
    monkeypatch.setenv("HEADWAY_CONNECT_TIMEOUT", "2")
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "down" in result.stdout


def test_no_arguments_shows_the_commands() -> None:
    result = runner.invoke(app, [])
    for command in ("serve", "check", "config", "version"):
        assert command in result.output


def test_a_missing_extra_tells_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    monkeypatch.delitem(sys.modules, "headway.connections.postgres", raising=False)
    monkeypatch.setenv("HEADWAY_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nothing")
    with pytest.raises(SystemExit) as info:
        main(["serve"])
    assert info.value.code != 0
    assert "pip install 'headway[postgres]'" in flat(capsys.readouterr().err)


# -- exit codes of the real console script --------------------------------------------

slow = pytest.mark.slow


@slow
def test_script_version(tmp_path: Path) -> None:
    assert SCRIPT.exists()
    proc = run_script("version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"headway {headway.__version__}"


@slow
def test_script_config_json_masks_the_token(tmp_path: Path) -> None:
    proc = run_script("config", "--json", cwd=tmp_path, env={"HEADWAY_ADMIN_TOKEN": TOKEN})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["HEADWAY_ADMIN_TOKEN"] == "***"
    assert TOKEN not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["nope"], {}, "No such command"),
        (["config", "--bogus"], {}, "No such option"),
        (["serve", "--port", "0"], {}, "--port"),
        (["serve", "--port", "notanumber"], {}, "--port"),
        (["serve", "notamodule:app"], {}, "notamodule"),
        (["serve", "badformat"], {}, "badformat"),
        (["serve", "headway.demo.app:nope"], {}, "nope"),
        (["config"], {"HEADWAY_DATABASE_URL": "mysql://x"}, "HEADWAY_DATABASE_URL"),
        (["serve"], {"HEADWAY_DATABASE_URL": "mysql://x"}, "HEADWAY_DATABASE_URL"),
        (["check"], {"HEADWAY_REDIS_URL": "http://x"}, "HEADWAY_REDIS_URL"),
        (["config"], {"HEADWAY_PORT": "abc"}, "HEADWAY_PORT"),
        (["serve"], {"HEADWAY_ADMIN_TOKEN": "tiny-tok3n"}, "HEADWAY_ADMIN_TOKEN"),
    ],
    ids=[
        "unknown-command",
        "unknown-option",
        "port-0",
        "port-not-a-number",
        "app-module-missing",
        "app-bad-format",
        "app-attribute-missing",
        "config-bad-database-url",
        "serve-bad-database-url",
        "check-bad-redis-url",
        "config-bad-port-env",
        "serve-short-admin-token",
    ],
)
@slow
def test_usage_errors_exit_2_with_a_message_and_no_traceback(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    proc = run_script(*args, cwd=tmp_path, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    assert expected in flat(proc.stderr)
    if "HEADWAY_ADMIN_TOKEN" in env:
        assert env["HEADWAY_ADMIN_TOKEN"] not in output


@slow
def test_invalid_url_message_lists_the_accepted_forms(tmp_path: Path) -> None:
    proc = run_script(
        "config", cwd=tmp_path, env={"HEADWAY_DATABASE_URL": f"mysql://app:{PASSWORD}@db/x"}
    )
    assert proc.returncode == 2
    message = flat(proc.stderr)
    assert "sqlite:///path/to/file.db" in message
    assert PASSWORD not in proc.stdout + proc.stderr


@slow
def test_script_check_with_sqlite_exits_0(tmp_path: Path) -> None:
    proc = run_script("check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "database" in proc.stdout
    assert (tmp_path / ".headway" / "headway.db").exists()


@slow
@pytest.mark.redis
def test_script_check_with_sqlite_and_redis_exits_0(tmp_path: Path, redis_url: str) -> None:
    proc = run_script("check", cwd=tmp_path, env={"HEADWAY_REDIS_URL": redis_url})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "redis" in proc.stdout
    assert "down" not in proc.stdout


@slow
def test_script_check_with_a_down_redis_exits_1(tmp_path: Path) -> None:
    proc = run_script(
        "check",
        cwd=tmp_path,
        env={"HEADWAY_REDIS_URL": DOWN_REDIS, "HEADWAY_CONNECT_TIMEOUT": "2"},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "down" in proc.stdout
    assert "Traceback" not in output


@slow
def test_bad_value_looking_like_markup_is_still_a_usage_error(tmp_path: Path) -> None:
    proc = run_script("config", cwd=tmp_path, env={"HEADWAY_PORT": "[/]"})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    assert "HEADWAY_PORT" in proc.stderr


@pytest.mark.redis
def test_check_warns_when_the_cache_redis_does_not_evict(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    import redis as redis_sync

    policy = redis_sync.Redis.from_url(redis_url).config_get("maxmemory-policy")
    current = policy["maxmemory-policy"]
    monkeypatch.setenv("HEADWAY_REDIS_URL", redis_url)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    if current in ("allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu"):
        assert "maxmemory-policy" not in result.stderr
    else:  # the local test server runs with the default, noeviction
        assert "maxmemory-policy" in result.stderr and current in result.stderr
