"""The load-test logic without a service: scenarios, host check, criteria, report, CLI
refusals (exit code 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from headway.cli import main
from headway.loadtest.criteria import MB, Criteria, Service, evaluate
from headway.loadtest.monitor import _saturated, read_metrics
from headway.loadtest.report import write_report
from headway.loadtest.runner import LoadTestError, check_host
from headway.loadtest.scenarios import SCENARIOS, scenario


def _results(p95: float = 50, requests: int = 1000, failures: int = 0, submitted: int = 10) -> Any:
    total = {"requests": requests, "failures": failures, "p95_ms": p95, "median_ms": 10}
    total |= {"p99_ms": 90, "max_ms": 120.0, "rps": 50.0}
    return {
        "total": total,
        "seconds": 10,
        "max_users": 20,
        "executions": {"submitted": submitted, "completed": submitted, "failed": [], "pending": []},
        "stress": None,
    }


def _service(first: float = 100 * MB, last: float = 120 * MB, saturated: int = 0) -> Service:
    return Service(
        samples=5,
        memory_first=first,
        memory_last=last,
        pool_max=50,
        pool_peak=3,
        pool_saturated=saturated,
        pool_checked=True,
    )


def _failed(outcomes: Any) -> list[str]:
    return [o.name for o in outcomes if not o.ok]


def test_the_issue_scenarios_and_their_defaults() -> None:
    assert list(SCENARIOS) == ["baseline", "spike", "sustained", "stress"]
    assert (scenario("baseline").users, scenario("baseline").rate) == (100, 10)
    assert scenario("baseline").duration == 300
    assert (scenario("spike").users, scenario("spike").ramp) == (500, 60)
    assert (scenario("sustained").users, scenario("sustained").rate) == (500, 50)
    assert scenario("sustained").duration == 1800
    with pytest.raises(KeyError, match="baseline"):
        scenario("nope")


def test_shortening_keeps_the_shape() -> None:
    spike = scenario("spike").shortened(20, 50, None)
    assert spike.duration == 20
    assert spike.ramp == 10  # half the run ramps, as in the full scenario
    assert spike.pace == pytest.approx(scenario("spike").pace)  # each user keeps its pace
    assert spike.plan() == [(20, 50, 5.0)]
    assert scenario("baseline").shortened(None, None, 3).rate == 3


def test_only_this_machine_is_load_tested_unless_allowed() -> None:
    assert check_host("http://127.0.0.1:8000/", False) == "http://127.0.0.1:8000"
    assert check_host("http://localhost:9", False) == "http://localhost:9"
    with pytest.raises(LoadTestError, match="allow-remote-host"):
        check_host("http://example.com", False)
    assert check_host("http://example.com", True) == "http://example.com"
    with pytest.raises(LoadTestError):
        check_host("ftp://127.0.0.1", True)


def test_criteria_pass_on_a_healthy_run() -> None:
    assert _failed(evaluate(_results(), _service(), [], Criteria())) == []


@pytest.mark.parametrize(
    ("results", "service", "lost", "failing"),
    [
        (_results(p95=250), _service(), [], "p95 latency"),
        (_results(failures=11), _service(), [], "errors"),
        (_results(requests=0), _service(), [], "errors"),
        (_results(), _service(saturated=1), [], "database pool"),
        (_results(), _service(last=300 * MB), [], "service memory"),
        (_results(), Service(), [], "service memory"),
        (_results(), _service(), [7], "executions completed"),
        (_results(submitted=0), _service(), [], "executions completed"),
    ],
)
def test_each_criterion_fails_alone(
    results: Any, service: Service, lost: Any, failing: str
) -> None:
    assert failing in _failed(evaluate(results, service, lost, Criteria()))


def test_stress_reports_the_load_held_instead_of_failing_on_latency() -> None:
    results = _results(p95=900, failures=100)
    results["stress"] = {"held": {"users": 40, "rps": 35.0}, "broke": {"users": 45}}
    outcomes = evaluate(results, _service(), [], Criteria(), stress=True)
    assert _failed(outcomes) == []
    assert "held 40 users" in outcomes[0].value


def test_metrics_readings() -> None:
    text = (
        "# TYPE headway_process_resident_memory_bytes gauge\n"
        "headway_process_resident_memory_bytes 1.5e+08\n"
        "# TYPE headway_db_pool_checked_out gauge\n"
        'headway_db_pool_checked_out{db="sqlite:///a"} 3.0\n'
        'headway_db_pool_checked_out{db="postgresql://h/b"} 7.0\n'
    )
    assert read_metrics(text) == {"memory": 1.5e8, "pool_out": 7.0}
    ready = {"checks": {"db": {"detail": {"pool_saturated": False}}, "cache": {"detail": {}}}}
    assert _saturated(ready) is False
    assert _saturated({"checks": {"db": {"detail": {"pool_saturated": True}}}}) is True
    assert _saturated({"status": "ok"}) is None


def test_report_puts_the_criteria_on_top_of_locust_report(tmp_path: Path) -> None:
    outcomes = evaluate(_results(p95=250), _service(), [], Criteria())
    path = write_report(
        tmp_path / "r.html",
        "<html><body class='x'><div id='root'></div></body></html>",
        scenario("baseline"),
        outcomes,
        _results(p95=250),
    )
    html = path.read_text()
    assert html.index("headway-criteria") < html.index("id='root'")
    assert "FAILED" in html
    assert "p95 latency" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["loadtest", "baseline", "--host", "http://example.com:80"], "allow-remote-host"),
        (["loadtest", "nope", "--host", "http://127.0.0.1:1"], "unknown scenario"),
        (["loadtest", "baseline", "--host", "http://127.0.0.1:1", "--duration", "1"], "duration"),
    ],
)
def test_bad_input_exits_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())
