"""The Locust side of ``headway loadtest``: run as its own process
(``python _locust_driver.py CONFIG.json``), because Locust monkeypatches the standard
library for gevent on import. It imports nothing from headway, so neither the CLI process
nor the service ever runs patched.

The config (written by :mod:`headway.loadtest.runner`) holds the host, the plan stages,
each user's pace, the API keys with their agents and posts, and where to write the HTML
report and the JSON results. The JSON results carry Locust's totals and percentiles, the
history per second, the error kinds, the stress break point, and the executions whose
completion this process did not see (the runner waits for them afterwards).
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped, unused-ignore]
from locust import LoadTestShape, between, constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.html import get_html_report
from locust.stats import stats_history

CONFIG: dict[str, Any] = json.loads(Path(sys.argv[1]).read_text()) if len(sys.argv) > 1 else {}
PENDING: dict[int, int] = {}  # execution id -> index of the key that submitted it
OUTCOMES = {"submitted": 0, "completed": 0}
FAILED: list[int] = []  # executions that ended failed
_KEYS = itertools.cycle(range(len(CONFIG.get("keys", [])) or 1))
FINAL = ("completed", "failed", "cancelled")


def _multipart(name: str, content: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), boundary


class ServiceUser(FastHttpUser):
    """A tenant's user: reads posts, runs agents (and waits for them), uploads notes."""

    host = CONFIG.get("host", "http://127.0.0.1:8000")
    wait_time = constant_throughput(CONFIG.get("pace", 1.0)) if CONFIG else between(1, 2)
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.key_index = next(_KEYS)
        account = CONFIG["keys"][self.key_index]
        self.auth = {"Authorization": f"Bearer {account['key']}"}
        self.agents: list[int] = account["agents"]
        self.posts: list[int] = account["posts"]

    @task(5)
    def list_posts(self) -> None:
        self.client.get(
            "/api/v2/posts?limit=20&include=author,tags",
            headers=self.auth,
            name="GET /api/v2/posts?include=author,tags",
        )

    @task(3)
    def read_post(self) -> None:
        post = random.choice(self.posts)  # noqa: S311 - load, not secrets
        self.client.get(
            f"/api/v2/posts/{post}?include=author,tags",
            headers=self.auth,
            name="GET /api/v2/posts/{id}",
        )

    @task(1)
    def run_agent(self) -> None:
        agent = random.choice(self.agents)  # noqa: S311
        body = {"prompt": f"summarise note {random.randint(1, 10**6)}"}  # noqa: S311
        with self.client.post(
            f"/api/v1/agents/{agent}/execute",
            json=body,
            headers=self.auth,
            name="POST /api/v1/agents/{id}/execute",
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(f"HTTP {response.status_code}")
                return
            execution = int(response.json()["execution_id"])
        PENDING[execution] = self.key_index
        OUTCOMES["submitted"] += 1
        self._wait_for(execution)

    def _wait_for(self, execution: int) -> None:
        deadline = time.monotonic() + CONFIG.get("poll_timeout", 30.0)
        while time.monotonic() < deadline:
            gevent.sleep(CONFIG.get("poll_interval", 0.25))
            response = self.client.get(
                f"/api/v1/executions/{execution}",
                headers=self.auth,
                name="GET /api/v1/executions/{id}",
            )
            status = response.json().get("status") if response.status_code == 200 else None
            if status in FINAL:
                PENDING.pop(execution, None)
                if status == "completed":
                    OUTCOMES["completed"] += 1
                else:
                    FAILED.append(execution)
                return

    @task(1)
    def upload(self) -> None:
        content = f"load-test note {uuid.uuid4()}\n".encode() * 8
        body, boundary = _multipart("note.txt", content, "text/plain")
        self.client.post(
            "/api/v1/files?category=documents",
            data=body,  # type: ignore[arg-type]  # bytes are sent as they are
            headers={**self.auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            name="POST /api/v1/files",
        )


class PlanShape(LoadTestShape):
    """Follows the plan's stages; in stress mode stops when a 10 s window breaks."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.broke: dict[str, Any] | None = None
        self.held: dict[str, Any] = {"users": 0, "rps": 0.0}
        self.breaches = 0  # consecutive ticks over a limit (one noisy second is not a break)

    def tick(self) -> tuple[int, float] | None:
        now = self.get_run_time()  # type: ignore[no-untyped-call]
        if CONFIG.get("stress") and self._broken(now):
            return None
        for until, users, rate in CONFIG["plan"]:
            if now < until:
                return int(users), float(rate)
        return None

    def _broken(self, now: float) -> bool:
        if self.runner is None or now < CONFIG["stress"]["warmup"]:
            return False
        total = self.runner.stats.total
        p95 = total.get_current_response_time_percentile(0.95) or 0
        rps = total.current_rps or 0.0
        errors = (total.current_fail_per_sec or 0.0) / rps if rps else 0.0
        limits = CONFIG["stress"]
        if p95 > limits["p95_ms"] or errors > limits["error_ratio"]:
            self.breaches += 1
            if self.breaches < limits["ticks"]:
                return False
            self.broke = {
                "second": round(now, 1),
                "users": self.runner.user_count,
                "rps": round(rps, 1),
                "p95_ms": p95,
                "error_ratio": round(errors, 4),
            }
            return True
        self.breaches = 0
        self.held = {"users": self.runner.user_count, "rps": round(rps, 1), "p95_ms": p95}
        return False


def _entry(stat: Any) -> dict[str, Any]:
    return {
        "name": stat.name,
        "method": stat.method,
        "requests": stat.num_requests,
        "failures": stat.num_failures,
        "median_ms": stat.get_response_time_percentile(0.5),
        "p95_ms": stat.get_response_time_percentile(0.95),
        "p99_ms": stat.get_response_time_percentile(0.99),
        "max_ms": stat.max_response_time,
        "rps": round(stat.total_rps, 2),
    }


def _results(env: Environment, shape: PlanShape, seconds: float) -> dict[str, Any]:
    assert env.runner is not None
    stats = env.runner.stats
    return {
        "seconds": round(seconds, 1),
        "total": _entry(stats.total),
        "endpoints": [_entry(s) for s in stats.entries.values()],
        "errors": [
            {"name": e.name, "error": str(e.error), "count": e.occurrences}
            for e in stats.errors.values()
        ],
        "history": [
            {
                "time": h["time"],
                "users": h["user_count"][1],
                "rps": h["current_rps"][1],
                "p95_ms": h["response_time_percentile_0.95"][1],
            }
            for h in stats.history
        ],
        "max_users": max((h["user_count"][1] for h in stats.history), default=0),
        "executions": {
            **OUTCOMES,
            "failed": FAILED,
            "pending": [[e, k] for e, k in PENDING.items()],
        },
        "stress": {"broke": shape.broke, "held": shape.held} if CONFIG.get("stress") else None,
    }


def main() -> None:
    shape = PlanShape()
    env = Environment(user_classes=[ServiceUser], shape_class=shape, host=CONFIG["host"])
    runner = env.create_local_runner()
    gevent.spawn(stats_history, runner)
    started = time.monotonic()
    runner.start_shape()
    hard_stop = started + CONFIG["plan"][-1][0] + CONFIG.get("stop_timeout", 30.0)
    gevent.sleep(1)
    while runner.shape_greenlet is not None and time.monotonic() < hard_stop:
        gevent.sleep(0.5)
    runner.quit()
    seconds = time.monotonic() - started
    Path(CONFIG["html"]).write_text(get_html_report(env, show_download_link=False))  # type: ignore[no-untyped-call]
    Path(CONFIG["results"]).write_text(json.dumps(_results(env, shape, seconds)))


if __name__ == "__main__":
    main()
