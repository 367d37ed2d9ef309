from __future__ import annotations

import pytest
from typer.testing import CliRunner

from headway.cli.db import db_app

runner = CliRunner()


@pytest.fixture
def env(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HEADWAY_DATABASE_URL", sqlite_url)
    return sqlite_url


def test_explain_refuses_a_write_with_exit_2(env: str) -> None:
    result = runner.invoke(db_app, ["explain", "SELECT 1; DROP TABLE x"])
    assert result.exit_code == 2
    assert "single statement" in result.output


def test_explain_and_stats_locally(env: str) -> None:
    result = runner.invoke(db_app, ["explain", "SELECT 1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(db_app, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    assert '"dialect": "sqlite"' in result.output


def test_slow_needs_a_url(env: str) -> None:
    result = runner.invoke(db_app, ["slow"])
    assert result.exit_code == 2
    assert "--url" in result.output


def test_indexes_on_sqlite(env: str) -> None:
    result = runner.invoke(db_app, ["indexes"])
    assert result.exit_code == 0, result.output
    assert "no suggestion" in result.output
