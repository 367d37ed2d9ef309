"""Run one load-test scenario against a running service and judge it.

Steps: refuse a host that is not this machine (unless allowed); obtain API keys (seeding
the service's database like ``headway demo seed``, or given); find each tenant's agents
and posts; run Locust in its own process (``_locust_driver.py``) while a thread watches
the service's ``/metrics``; wait for the executions still running at the end; evaluate
the criteria; write the HTML report with the criteria on top.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from headway.loadtest.criteria import Criteria, Outcome, Service, evaluate
from headway.loadtest.monitor import Monitor
from headway.loadtest.report import write_report
from headway.loadtest.scenarios import Scenario

__all__ = ["LoadTest", "LoadTestError", "Result", "check_host", "run"]

DRIVER = Path(__file__).with_name("_locust_driver.py")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class LoadTestError(Exception):
    """The load test could not run (bad host, no keys, Locust failed): exit code 2."""


@dataclass
class LoadTest:
    """What to run, against what, and how to judge it."""

    scenario: Scenario
    host: str
    report: Path | None = None
    api_keys: list[str] = field(default_factory=list)  # empty: seed the service's database
    admin_token: str | None = None
    criteria: Criteria = field(default_factory=Criteria)
    drain_timeout: float = 60.0
    allow_remote: bool = False


@dataclass
class Result:
    outcomes: list[Outcome]
    results: dict[str, Any]
    service: Service
    lost: list[int]
    report: Path | None

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)


def check_host(host: str, allow_remote: bool) -> str:
    """``http(s)://127.0.0.1|localhost[:port]`` (trailing slash removed); another host only
    with ``allow_remote``."""
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadTestError(f"--host must look like http://127.0.0.1:8000, got {host!r}")
    if parts.hostname not in LOCAL_HOSTS and not allow_remote:
        raise LoadTestError(
            f"refusing to load-test {parts.hostname!r}: only 127.0.0.1/localhost unless "
            "--allow-remote-host is given (and the service is yours)"
        )
    return host.rstrip("/")


def seed_keys() -> list[str]:
    """New demo API keys, made in the database the environment's settings point to."""
    from headway.connections import Connections
    from headway.demo.seed import prepare, seed
    from headway.settings import load_settings

    async def go() -> list[str]:
        conns = Connections(load_settings())
        try:
            engine = conns.engine()
            await prepare(engine, seed_if_empty=False)
            return [k.key for k in await seed(engine)]
        finally:
            await conns.close()

    return asyncio.run(go())


def accounts(host: str, keys: list[str]) -> list[dict[str, Any]]:
    """Each key with its tenant's agent ids and published post ids (read over HTTP)."""
    found = []
    with httpx.Client(base_url=host, timeout=30) as client:
        for key in keys:
            auth = {"Authorization": f"Bearer {key}"}
            agents = client.get("/api/v2/agents?limit=100&fields=id", headers=auth)
            posts = client.get("/api/v2/posts?limit=100&fields=id", headers=auth)
            if agents.status_code != 200 or posts.status_code != 200:
                raise LoadTestError(
                    f"the service refused a key ({agents.status_code}/{posts.status_code}); "
                    "is --host the service whose database was seeded?"
                )
            agent_ids = [a["id"] for a in agents.json()["data"]]
            post_ids = [p["id"] for p in posts.json()["data"]]
            if agent_ids and post_ids:
                found.append({"key": key, "agents": agent_ids, "posts": post_ids})
    if not found:
        raise LoadTestError("no tenant with agents and posts: seed the service first")
    return found


def _driver_config(test: LoadTest, work: Path, accounts: list[dict[str, Any]]) -> dict[str, Any]:
    s, c = test.scenario, test.criteria
    warmup = min(10.0, s.duration / 3)
    stress = {"p95_ms": c.p95_ms, "error_ratio": c.error_ratio, "warmup": warmup, "ticks": 3}
    return {
        "host": test.host,
        "plan": s.plan(),
        "pace": s.pace,
        "stress": stress if s.stress else None,
        "keys": accounts,
        "poll_interval": 0.25,
        "poll_timeout": 30.0,
        "stop_timeout": 30.0,
        "html": str(work / "locust.html"),
        "results": str(work / "results.json"),
    }


def _run_driver(config: dict[str, Any], work: Path, bound: float) -> dict[str, Any]:
    path = work / "config.json"
    path.write_text(json.dumps(config))
    log = work / "locust.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - this interpreter, our own script
            [sys.executable, str(DRIVER), str(path)], cwd=work, stdout=out, stderr=out
        )
        try:
            code = proc.wait(bound)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            code = -9
    results = Path(config["results"])
    if code != 0 or not results.exists():
        tail = log.read_text(errors="replace")[-3000:]
        raise LoadTestError(f"the Locust process failed (exit {code}):\n{tail}")
    data: dict[str, Any] = json.loads(results.read_text())
    return data


def drain(
    host: str, results: dict[str, Any], keys: list[dict[str, Any]], timeout: float
) -> list[int]:
    """Wait up to ``timeout`` s for the executions still pending; the ids not completed."""
    lost = list(results["executions"]["failed"])
    pending = {int(e): keys[int(k)]["key"] for e, k in results["executions"]["pending"]}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=host, timeout=10) as client:
        while pending and time.monotonic() < deadline:
            for execution, key in list(pending.items()):
                status = _status(client, execution, key)
                if status == "completed":
                    del pending[execution]
                elif status in ("failed", "cancelled"):
                    del pending[execution]
                    lost.append(execution)
            if pending:
                time.sleep(0.5)
    return sorted(lost + list(pending))


def _status(client: httpx.Client, execution: int, key: str) -> str | None:
    try:
        response = client.get(
            f"/api/v1/executions/{execution}", headers={"Authorization": f"Bearer {key}"}
        )
    except httpx.HTTPError:
        return None
    return str(response.json().get("status")) if response.status_code == 200 else None


def run(test: LoadTest) -> Result:
    """Run ``test`` (blocking for the scenario's duration) and judge it."""
    test.host = check_host(test.host, test.allow_remote)
    keys = test.api_keys or seed_keys()
    found = accounts(test.host, keys)
    with tempfile.TemporaryDirectory(prefix="headway-loadtest-") as tmp:
        work = Path(tmp)
        config = _driver_config(test, work, found)
        monitor = Monitor(test.host, test.admin_token)
        monitor.start()
        try:
            results = _run_driver(config, work, test.scenario.duration + 120)
        finally:
            service = monitor.stop()
        lost = drain(test.host, results, found, test.drain_timeout)
        outcomes = evaluate(results, service, lost, test.criteria, stress=test.scenario.stress)
        report = None
        if test.report is not None:
            html = (work / "locust.html").read_text()
            report = write_report(test.report, html, test.scenario, outcomes, results)
    return Result(outcomes, results, service, lost, report)
