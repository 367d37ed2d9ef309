"""/health and /health/ready, and the capability hook (metrics + readiness)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge
from tests.conftest import REDIS_HOST, REDIS_PORT, require_server
from tests.observe.conftest import ADMIN, Factory, build_app
from tests.observe.test_metrics import value

from headway import Capability, Headway
from headway.capability import Readiness

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


class Queues(Capability):
    """A capability like jobs will be: metrics, a sampled gauge and a readiness check."""

    name = "queues"
    critical = True
    outcome: str = "ok"

    def register_metrics(self, registry: CollectorRegistry) -> None:
        self.done = Counter("headway_queues_done", "Jobs done.", ["queue"], registry=registry)
        self.pending = Gauge(
            "headway_jobs_pending", "Pending jobs.", ["queue"], registry=registry,
            multiprocess_mode="mostrecent",
        )  # fmt: skip

    async def refresh_metrics(self) -> None:
        self.pending.labels("default").set(12)
        self.pending.labels("mail").set(3)

    async def check_ready(self) -> Readiness | None:
        if self.outcome == "slow":
            await asyncio.sleep(5)
        if self.outcome == "raise":
            raise ConnectionError("queue backend unreachable")
        return Readiness(self.outcome == "ok", {"queues": {"default": 12}}, self.critical)


async def test_liveness_is_cheap_and_public(make: Factory) -> None:
    async with make() as (_, client, _):
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_public_answer_is_the_status_only(make: Factory) -> None:
    async with make() as (_, client, _):
        public = await client.get("/health/ready")
        wrong = await client.get("/health/ready", headers={"Authorization": "Bearer nope"})
        admin = await client.get("/health/ready", headers=ADMIN_HEADERS)
    assert public.status_code == 200
    assert public.json() == {"status": "ok"}
    assert wrong.json() == {"status": "ok"}
    body = admin.json()
    assert body["status"] == "ok"
    assert body["uptime_seconds"] >= 0
    db = body["checks"]["database"]
    assert db["ok"] is True and db["latency_ms"] >= 0
    assert set(body["database_pool"]) >= {"total", "idle", "active"}
    assert (
        body["database_pool"]["total"]
        == body["database_pool"]["idle"] + body["database_pool"]["active"]
    )


async def test_database_down_answers_503(make: Factory) -> None:
    down = {"database_url": "postgresql://u:pw-not-shown@127.0.0.1:1/x"}
    async with make(hub=down) as (_, client, _):
        public = await client.get("/health/ready")
        admin = await client.get("/health/ready", headers=ADMIN_HEADERS)
        live = await client.get("/health")
    assert public.status_code == 503
    assert public.json() == {"status": "down"}
    assert admin.json()["checks"]["database"]["ok"] is False
    assert "pw-not-shown" not in admin.text
    assert live.status_code == 200


async def test_redis_is_checked_when_configured(make: Factory) -> None:
    require_server("Redis", REDIS_HOST, REDIS_PORT)
    redis = {"redis_url": f"redis://{REDIS_HOST}:{REDIS_PORT}/0"}
    async with make(hub=redis) as (_, client, _):
        body = (await client.get("/health/ready", headers=ADMIN_HEADERS)).json()
    assert body["checks"]["redis"]["ok"] is True
    assert body["status"] == "ok"


async def test_capability_hook_metrics_and_readiness(make: Factory) -> None:
    holder: dict[str, Queues] = {}

    def app_for(hw: Headway):  # type: ignore[no-untyped-def]
        holder["q"] = hw.add(Queues(hw))
        return build_app(hw)

    async with make(app_factory=app_for) as (hw, client, _):
        q = holder["q"]
        q.done.labels("default").inc(5)
        text = (await client.get("/metrics")).text
        body = (await client.get("/health/ready", headers=ADMIN_HEADERS)).json()
        assert value(text, "headway_queues_done_total", queue="default") == 5
        assert value(text, "headway_jobs_pending", queue="default") == 12
        assert body["checks"]["queues"]["detail"] == {"queues": {"default": 12}}
        assert body["checks"]["queues"]["ok"] is True

        q.outcome, q.critical = "failed", False
        hw.observe._ready = None
        response = await client.get("/health/ready", headers=ADMIN_HEADERS)
        assert response.status_code == 200 and response.json()["status"] == "degraded"

        q.critical = True
        hw.observe._ready = None
        response = await client.get("/health/ready")
        assert response.status_code == 503 and response.json() == {"status": "down"}

        q.outcome = "raise"
        hw.observe._ready = None
        check = (await client.get("/health/ready", headers=ADMIN_HEADERS)).json()["checks"]
        assert "ConnectionError" in check["queues"]["error"]


async def test_a_slow_check_times_out(make: Factory) -> None:
    holder: dict[str, Queues] = {}

    def app_for(hw: Headway):  # type: ignore[no-untyped-def]
        holder["q"] = hw.add(Queues(hw))
        holder["q"].outcome = "slow"
        return build_app(hw)

    async with make(app_factory=app_for, check_timeout=0.2) as (_, client, _):
        response = await client.get("/health/ready", headers=ADMIN_HEADERS)
    check = response.json()["checks"]["queues"]
    assert response.status_code == 503
    assert check["ok"] is False and "timed out" in check["error"]
    assert 150 <= check["latency_ms"] < 2000
