"""Each scenario, shortened (~12 s, few users), against the reference service on the
embedded defaults: the criteria pass and no submitted execution is lost.

The latency bound here is 2 s instead of 200 ms: the suite runs on shared machines and
asserts no timings (house rule); the 200 ms figure is checked by the full scenarios run
with `headway loadtest` and reported in the README with their command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from headway.cli import main
from headway.loadtest.criteria import Criteria
from headway.loadtest.runner import LoadTest, run
from headway.loadtest.scenarios import scenario

pytestmark = pytest.mark.slow

SECONDS = 12.0
ADMIN_TOKEN = "loadtest-admin-token-0123456789"  # conftest.py's
SUITE = Criteria(p95_ms=2000)


@pytest.fixture
def seeding_env(service: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The test process seeds keys in the service's database, as `headway loadtest` does."""
    for name, value in service.env().items():
        monkeypatch.setenv(name, value)
    return service


@pytest.mark.parametrize(
    ("name", "users", "rate"), [("spike", 30, 4.0), ("sustained", 20, 4.0), ("stress", 25, None)]
)
def test_scenario_passes_its_criteria(
    seeding_env: Any, name: str, users: int, rate: float | None
) -> None:
    chosen = scenario(name).shortened(SECONDS, users, rate)
    result = run(LoadTest(chosen, seeding_env.url, admin_token=ADMIN_TOKEN, criteria=SUITE))
    failed = [o for o in result.outcomes if not o.ok]
    assert failed == [], (failed, result.results["errors"])
    executions = result.results["executions"]
    assert executions["submitted"] > 0
    assert result.lost == []
    assert result.results["total"]["requests"] > 0
    assert result.results["max_users"] > 1
    if chosen.stress:
        assert result.results["stress"]["held"]["users"] > 0


def test_cli_baseline_writes_the_report_and_exits_0(
    seeding_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "baseline.html"
    args = ["loadtest", "baseline", "--host", seeding_env.url, "--duration", str(SECONDS)]
    args += ["--users", "20", "--rate", "4", "--report", str(report), "--p95-ms", "2000"]
    with pytest.raises(SystemExit) as info:
        main(args)
    printed = capsys.readouterr().out
    assert info.value.code == 0, printed
    assert "PASSED" in printed
    assert "0 lost" in printed
    html = report.read_text()
    assert "headway-criteria" in html
    assert "executions completed" in html
    assert '"history"' in html  # Locust's charts: throughput and percentiles over time
