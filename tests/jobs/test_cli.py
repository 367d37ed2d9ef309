"""``headway jobs ...`` against a SQLite job store configured by HEADWAY_JOBS_URL."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from headway import Headway
from headway.cli.jobs import jobs_app, parse_duration
from headway.jobs import Jobs
from headway.jobs.models import NewJob, Outcome

runner = CliRunner()


@pytest.fixture
def store_url(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HEADWAY_JOBS_URL", sqlite_url)

    async def seed() -> None:
        hub = Headway()
        jobs = hub.add(Jobs(hub))
        async with hub:
            b = jobs.backend
            await b.enqueue("email", [NewJob(f"j{i}", "send", b'{"args":[]}') for i in range(3)])
            await b.claim("email", "w", 2, 30)
            await b.finish("email", "w", [Outcome("j0", 1, "failed", error="SMTP down")])
            await b.finish("email", "w", [Outcome("j1", 1, "succeeded", result=b"1")])

    asyncio.run(seed())
    return sqlite_url


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(jobs_app, list(args))
    return result.exit_code, result.output


def test_stats_failed_show(store_url: str) -> None:
    code, output = run("stats", "--json")
    assert code == 0
    row = json.loads(output)["email"]
    assert (row["failed"], row["succeeded"], row["queued"], row["paused"]) == (1, 1, 1, False)
    code, output = run("failed", "--json")
    assert code == 0 and [j["id"] for j in json.loads(output)] == ["j0"]
    code, output = run("show", "j0")
    assert code == 0 and json.loads(output)["error"] == "SMTP down"
    code, output = run("list", "email", "--state", "queued")
    assert code == 0 and "j2" in output
    assert run("stats")[0] == 0 and run("failed")[0] == 0


def test_retry_pause_resume_clean(store_url: str) -> None:
    assert run("retry", "j0") == (0, "requeued j0\n")
    assert run("retry", "--all")[1] == "requeued 0 job(s)\n"
    assert run("pause", "email")[0] == 0
    assert json.loads(run("stats", "--json")[1])["email"]["paused"] is True
    assert run("resume", "email")[0] == 0
    assert run("clean", "--state", "succeeded", "--older-than", "1h")[1].startswith("deleted 0")
    assert run("clean", "--state", "succeeded")[1].startswith("deleted 1")
    assert run("delete", "j2") == (0, "deleted j2\n")


def test_cancel(store_url: str) -> None:
    assert run("cancel", "j2")[0] == 0  # queued: cancelled at once
    assert json.loads(run("show", "j2")[1])["state"] == "cancelled"
    code, output = run("cancel", "j1")  # succeeded: too late
    assert code == 2 and "already finished" in output


@pytest.mark.parametrize(
    "args",
    [
        ["cancel", "nope"],
        ["retry"],
        ["retry", "j0", "--all"],
        ["retry", "nope"],
        ["show", "nope"],
        ["clean", "--older-than", "soon"],
        ["clean", "--state", "queued"],
        ["list", "email", "--state", "weird"],
        ["pause", "bad{queue}"],
    ],
)
def test_bad_input_exits_2_with_a_message(store_url: str, args: list[str]) -> None:
    code, output = run(*args)
    assert code == 2, output
    assert "Traceback" not in output


def test_parse_duration() -> None:
    assert [parse_duration(x) for x in ("90", "90s", "15m", "1h", "2d", "1w")] == [
        90, 90, 900, 3600, 172800, 604800,
    ]  # fmt: skip
