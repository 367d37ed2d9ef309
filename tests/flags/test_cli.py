"""``headway flags`` on a SQLite database; usage errors exit 2 without a traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from headway.cli.flags import flags_app


def test_cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_DATABASE_URL", sqlite_url)
    run = CliRunner().invoke
    r = run(flags_app, ["set", "beta", "on"])
    assert r.exit_code == 0 and "beta: on" in r.output
    r = run(flags_app, ["rollout", "beta", "10"])
    assert r.exit_code == 0
    r = run(flags_app, ["list", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["rollout"] == 10
    r = run(flags_app, ["eval", "beta", "--user", "u1", "--attr", "plan=pro"])
    assert r.exit_code == 0 and json.loads(r.output)["reason"] == "SPLIT"
    r = run(flags_app, ["eval", "nope"])
    assert json.loads(r.output)["error_code"] == "FLAG_NOT_FOUND"
    for bad in (["rollout", "beta", "120"], ["set", "beta", "maybe"], ["eval", "b", "--attr", "x"],
                ["set", "x", '{"rollout": 300}'], ["set"]):  # fmt: skip
        r = run(flags_app, bad)
        assert r.exit_code == 2, (bad, r.output)
        assert "Traceback" not in r.output
