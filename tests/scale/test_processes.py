"""Two web processes and two ``headway worker`` processes on Redis and PostgreSQL share
state only through those backends: a tenant's quota is one quota across both web
processes, a write through one invalidates the cached read of the other, each serves its
own /metrics with the same job counts, and executions submitted to either complete.

Every process is started on a free 127.0.0.1 port, with the test's own PostgreSQL schema
and Redis key prefix, and stopped by PID.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import (
    PG_BASE,
    PG_HOST,
    PG_PORT,
    REDIS_HOST,
    REDIS_PORT,
    _pg_exec,
    require_server,
)

from headway import Settings
from headway.connections import Connections
from headway.demo.seed import seed
from headway.loadtest.service import HeadwayProcess, free_port, start_process, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]

FREE_QUOTA = 20  # globex is on the free plan: its quota, per minute, across both processes
BIG = "100000/minute"
ADMIN = "scale-admin-token-0123456789abcd"
BOUND = 60.0


@dataclass
class Cluster:
    web: list[str]  # base URLs of the two web processes
    keys: dict[str, str]  # tenant slug -> API key
    processes: list[HeadwayProcess]

    def auth(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}


def _env(tmp: Path, pg_url: str, redis_url: str, prefix: str) -> dict[str, str]:
    plans = {"free": f"{FREE_QUOTA}/minute", "professional": BIG, "default": BIG}
    env = {
        "HEADWAY_DATA_DIR": str(tmp / "data"),
        "HEADWAY_DATABASE_URL": pg_url,
        "HEADWAY_REDIS_URL": redis_url,
        "HEADWAY_INPROCESS_WORKER": "false",
        "HEADWAY_SECRET_KEY": "scale-secret-key-0123456789abcdef",
        "HEADWAY_ADMIN_TOKEN": ADMIN,
        "HEADWAY_DEMO_SEED": "false",
        "HEADWAY_RATELIMIT_PLANS": json.dumps(plans),
        "HEADWAY_OBSERVE_ACCESS_LOG": "false",
    }
    for name in (
        "CACHE_PREFIX",
        "FLAGS_PREFIX",
        "JOBS_REDIS_PREFIX",
        "RATELIMIT_KEY_PREFIX",
        "RESILIENCE_PREFIX",
        "EVENTS_REDIS_PREFIX",
    ):
        env[f"HEADWAY_{name}"] = prefix
    return env


def _seed(pg_url: str, tmp: Path) -> dict[str, str]:
    async def go() -> dict[str, str]:
        conns = Connections(Settings(database_url=pg_url, data_dir=tmp / "data"))
        try:
            return {k.tenant: k.key for k in await seed(conns.engine())}
        finally:
            await conns.close()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One set of processes for the module (each test uses its own tenant or data), on
    a PostgreSQL schema and a Redis key prefix of its own, removed afterwards."""
    require_server("Redis", REDIS_HOST, REDIS_PORT)
    require_server("PostgreSQL", PG_HOST, PG_PORT)
    tmp = tmp_path_factory.mktemp("scale")
    schema, prefix = f"t_{uuid.uuid4().hex[:12]}", f"hwtest-{uuid.uuid4().hex[:12]}"
    _pg_exec(f'CREATE SCHEMA "{schema}"')
    pg_url, redis_url = f"{PG_BASE}?schema={schema}", f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    processes: list[HeadwayProcess] = []
    try:
        yield _start(tmp, _env(tmp, pg_url, redis_url, prefix), pg_url, processes)
    finally:
        for proc in processes:
            proc.stop()
        _pg_exec(f'DROP SCHEMA "{schema}" CASCADE')
        asyncio.run(_forget(redis_url, prefix))


def _start(tmp: Path, env: dict[str, str], pg_url: str, processes: list[HeadwayProcess]) -> Cluster:
    web = []
    for n in range(2):  # one after the other: the first one migrates the schema
        port = free_port()
        log = tmp / f"web{n}.log"
        proc = start_process(["serve", "--port", str(port)], env=env, cwd=tmp, log_path=log)
        proc.name = f"web{n}"
        processes.append(proc)
        wait_ready(proc, f"http://127.0.0.1:{port}")
        web.append(proc.url)
    for n in range(2):
        args = ["worker", "headway.demo.app:app", "--queues", "default"]
        proc = start_process(args, env=env, cwd=tmp, log_path=tmp / f"worker{n}.log")
        proc.name = f"worker{n}"
        processes.append(proc)
    return Cluster(web, _seed(pg_url, tmp), processes)


async def _forget(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"*{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def _logs(cluster: Cluster) -> str:
    return "\n".join(f"== {p.name}\n{p.log_tail(1500)}" for p in cluster.processes)


def test_a_tenant_quota_is_shared_by_both_processes(cluster: Cluster) -> None:
    codes = []
    with httpx.Client(timeout=10) as client:
        for i in range(FREE_QUOTA + 10):
            url = cluster.web[i % 2] + "/api/v2/me"
            codes.append(client.get(url, headers=cluster.auth("globex")).status_code)
    assert codes.count(200) == FREE_QUOTA, codes
    assert codes.count(429) == 10
    assert codes[FREE_QUOTA:] == [429] * 10  # both processes refuse once it is spent
    # another tenant's quota is untouched
    with httpx.Client(timeout=10) as client:
        assert client.get(cluster.web[1] + "/api/v2/me", headers=cluster.auth("acme")).is_success


def _title(client: httpx.Client, base: str, post: int, auth: dict[str, str]) -> str:
    response = client.get(f"{base}/api/v2/posts/{post}?fields=id,title", headers=auth)
    assert response.status_code == 200, response.text
    return str(response.json()["title"])


def test_a_write_through_one_process_invalidates_the_other_cache(cluster: Cluster) -> None:
    a, b = cluster.web
    auth = cluster.auth("acme")
    with httpx.Client(timeout=10) as client:
        post = client.get(f"{a}/api/v2/posts?limit=1&fields=id", headers=auth).json()["data"][0]
        before = _title(client, b, post["id"], auth)  # cached by b (and in Redis)
        assert _title(client, b, post["id"], auth) == before
        changed = client.patch(
            f"{a}/api/v2/posts/{post['id']}", json={"title": "changed by a"}, headers=auth
        )
        assert changed.status_code == 200, changed.text
        deadline = time.monotonic() + 5  # b's in-process copy is dropped by a pub/sub message
        seen = _title(client, b, post["id"], auth)
        while seen != "changed by a" and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = _title(client, b, post["id"], auth)
        assert seen == "changed by a"
        assert _title(client, a, post["id"], auth) == "changed by a"


def _jobs(client: httpx.Client, base: str) -> dict[str, float]:
    """``headway_jobs_jobs`` of the default queue by state, as this process's /metrics says."""
    text = client.get(base + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"}).text
    states: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "headway_jobs_jobs" and sample.labels.get("queue") == "default":
                states[sample.labels["state"]] = sample.value
    return states


def _settled_counts(client: httpx.Client, web: list[str]) -> list[dict[str, float]]:
    """Both processes' job counts once no job is pending or running (bounded)."""
    deadline = time.monotonic() + BOUND
    while True:
        counts = [_jobs(client, base) for base in web]
        busy = any(c.get("pending", 0) or c.get("running", 0) for c in counts)
        if not busy or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def test_executions_submitted_to_either_process_complete(cluster: Cluster) -> None:
    auth = cluster.auth("acme")
    with httpx.Client(timeout=10) as client:
        agent = client.get(f"{cluster.web[0]}/api/v2/agents?limit=1", headers=auth).json()["data"][
            0
        ]
        submitted = []
        for i in range(10):
            response = client.post(
                f"{cluster.web[i % 2]}/api/v1/agents/{agent['id']}/execute",
                json={"prompt": f"hello {i}"},
                headers=auth,
            )
            assert response.status_code == 202, response.text
            submitted.append(response.json()["execution_id"])
        deadline = time.monotonic() + BOUND
        pending = set(submitted)
        while pending and time.monotonic() < deadline:
            for execution in list(pending):
                base = cluster.web[execution % 2]  # read through either process
                status = client.get(f"{base}/api/v1/executions/{execution}", headers=auth).json()
                if status["status"] in ("completed", "failed"):
                    assert status["status"] == "completed", status
                    pending.discard(execution)
            time.sleep(0.2)
        assert not pending, _logs(cluster)
        # each web process serves /metrics; the job counts come from the shared backend
        # (each execution's job, plus any job its events queue on the same queue)
        counts = _settled_counts(client, cluster.web)
    assert counts[0] == counts[1], counts
    assert counts[0]["succeeded"] >= len(submitted), counts
    assert counts[0].get("failed", 0) == 0, counts
    assert all(p.running() for p in cluster.processes), _logs(cluster)
