"""Middleware, dependency and decorator over HTTP: headers, 429/503, plans, scopes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import http_sf
import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.types import Scope

from headway.ratelimit import Identity, RateLimitExceeded, RateLimits

from .conftest import BACKENDS, closed_port, make_limits

PEER = ("198.51.100.7", 4321)


async def tenant_from_header(scope: Scope) -> Identity | None:
    for name, value in scope["headers"]:
        if name == b"x-tenant":
            tenant, _, plan = value.decode().partition(":")
            return Identity(tenant=tenant, plan=plan or None, user=f"u-{tenant}")
    return None


def build(limits: RateLimits) -> FastAPI:
    app = FastAPI()

    @app.get("/api/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/api/upload", dependencies=[Depends(limits.dependency("upload", cost=5))])
    async def upload() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/login")
    @limits.limit("auth")
    async def login() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/free")
    async def free() -> dict[str, bool]:
        return {"ok": True}

    limits.identify = tenant_from_header
    limits.hw.install(app)
    return app


@pytest.fixture
def limits_factory(redis_prefix: str) -> Callable[..., RateLimits]:
    def factory(url: str = "memory://", **settings: Any) -> RateLimits:
        return make_limits(url, redis_prefix, **settings)

    return factory


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[RateLimits], Any]]:
    opened: list[tuple[httpx.AsyncClient, RateLimits]] = []

    async def open_client(limits: RateLimits) -> httpx.AsyncClient:
        app = build(limits)
        await limits.hw.start()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=PEER), base_url="http://t"
        )
        opened.append((client, limits))
        return client

    yield open_client
    for client, limits in opened:
        await client.aclose()
        await limits.hw.stop()


def parse_list(value: str) -> list[tuple[str, dict[str, int]]]:
    return [(item, params) for item, params in http_sf.parse(value.encode(), tltype="list")]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_headers_parse_and_agree_with_counters(
    backend: str, backend_url: str, limits_factory: Any, client_for: Any
) -> None:
    limits = limits_factory(backend_url)
    limits.protect("/api/", "plan")
    client = await client_for(limits)
    for n in range(1, 4):
        r = await client.get("/api/items/1", headers={"x-tenant": "acme:professional"})
        assert r.status_code == 200
        assert parse_list(r.headers["ratelimit-policy"]) == [("plan", {"q": 1000, "w": 60})]
        [(name, state)] = parse_list(r.headers["ratelimit"])
        assert name == "plan" and state["r"] == 1000 - n and 0 < state["t"] <= 60
        assert r.headers["x-ratelimit-limit"] == "1000"
        assert r.headers["x-ratelimit-remaining"] == str(1000 - n)
        assert r.headers["x-ratelimit-reset"] == str(state["t"])
    assert limits.metrics.snapshot()["plan"] == {"allowed": 3}


async def test_anonymous_callers_get_the_stricter_rate_then_429(
    limits_factory: Any, client_for: Any
) -> None:
    limits = limits_factory(anonymous="3/minute")
    limits.protect("/api/", "plan")
    client = await client_for(limits)
    codes = [(await client.get("/api/items/1")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = await client.get("/api/items/2", headers={"x-forwarded-for": "1.1.1.1"})  # spoof
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()["error"]
    assert body["code"] == "rate_limited" and body["details"]["policy"] == "plan"
    assert body["details"]["retry_after"] == int(r.headers["retry-after"])
    [(_, state)] = parse_list(r.headers["ratelimit"])
    assert state["r"] == 0 and state["t"] >= int(r.headers["retry-after"])
    assert (await client.get("/free")).status_code == 200  # outside the rule


async def test_plan_tiers_and_tenant_isolation(limits_factory: Any, client_for: Any) -> None:
    limits = limits_factory(plans={"free": "2/minute", "enterprise": "10000/minute"})
    limits.protect("/api/", "plan")
    client = await client_for(limits)
    free = {"x-tenant": "t1:free"}
    codes = [(await client.get("/api/items/1", headers=free)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    other = await client.get("/api/items/1", headers={"x-tenant": "t2:enterprise"})
    assert other.status_code == 200
    assert parse_list(other.headers["ratelimit-policy"]) == [("plan", {"q": 10000, "w": 60})]
    unknown = await client.get("/api/items/1", headers={"x-tenant": "t3:mystery"})
    assert parse_list(unknown.headers["ratelimit-policy"])[0][1]["q"] == 500  # default tier


async def test_composition_reports_the_longest_exhausted(
    limits_factory: Any, client_for: Any
) -> None:
    limits = limits_factory()
    limits.policy("short", "1/second", scope="ip")
    limits.policy("long", "1/hour", scope="ip")
    limits.protect("/api/", "short", "long")
    client = await client_for(limits)
    ok = await client.get("/api/items/1")
    assert [n for n, _ in parse_list(ok.headers["ratelimit-policy"])] == ["short", "long"]
    denied = await client.get("/api/items/1")
    assert denied.status_code == 429
    assert denied.json()["error"]["details"]["policy"] == "long"
    assert int(denied.headers["retry-after"]) > 3000


async def test_dependency_cost_and_merged_headers(limits_factory: Any, client_for: Any) -> None:
    limits = limits_factory()
    limits.protect("/api/", "plan")
    client = await client_for(limits)
    hdr = {"x-tenant": "acme:free"}
    first = await client.post("/api/upload", headers=hdr)
    assert first.status_code == 200
    states = dict(parse_list(first.headers["ratelimit"]))
    assert states["plan"]["r"] == 99 and states["upload"]["r"] == 5  # upload costs 5 of 10
    assert (await client.post("/api/upload", headers=hdr)).status_code == 200
    third = await client.post("/api/upload", headers=hdr)
    assert third.status_code == 429
    assert third.json()["error"]["details"]["policy"] == "upload"
    assert dict(parse_list(third.headers["ratelimit"]))["upload"]["r"] == 0


async def test_decorator_on_an_endpoint(limits_factory: Any, client_for: Any) -> None:
    limits = limits_factory(policies={"auth": "2/minute"})
    client = await client_for(limits)
    codes = [(await client.post("/login")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    ok = await limits_factory().hw.limits.hit("auth", "x")  # another hub: fresh memory
    assert ok.allowed


async def test_endpoint_scope_uses_the_route_template(limits_factory: Any, client_for: Any) -> None:
    limits = limits_factory()
    limits.policy("per-route", "2/minute", scope=("endpoint",))
    limits.protect("/api/items", "per-route")
    client = await client_for(limits)
    codes = [(await client.get(f"/api/items/{i}")).status_code for i in range(3)]
    assert codes == [200, 200, 429]


async def test_header_switches(limits_factory: Any, client_for: Any) -> None:
    limits = limits_factory(headers=False, legacy_headers=False)
    limits.protect("/api/", "default")
    client = await client_for(limits)
    r = await client.get("/api/items/1")
    assert not any(k.startswith(("ratelimit", "x-ratelimit")) for k in r.headers)


async def test_fail_open_counts_and_logs_once(
    limits_factory: Any, client_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    limits = limits_factory(f"redis://127.0.0.1:{closed_port()}/0")
    limits.protect("/api/", "plan")
    client = await client_for(limits)
    with caplog.at_level(logging.ERROR, logger="headway.ratelimit"):
        codes = [(await client.get("/api/items/1")).status_code for _ in range(5)]
    assert codes == [200] * 5
    assert limits.metrics.snapshot()["plan"] == {"fail_open": 5}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "unavailable" in errors[0].getMessage()


async def test_fail_closed_answers_503(limits_factory: Any, client_for: Any) -> None:
    limits = limits_factory(f"redis://127.0.0.1:{closed_port()}/0", fail_closed=["auth"])
    limits.protect("/api/", "auth")
    client = await client_for(limits)
    r = await client.get("/api/items/1")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "rate_limit_unavailable"
    assert r.json()["error"]["details"] == {"policies": ["auth"]}
    assert limits.metrics.snapshot()["auth"] == {"fail_closed": 1}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_hit_api_per_tenant(backend: str, backend_url: str, limits_factory: Any) -> None:
    limits = limits_factory(backend_url, policies={"auth": "2/minute"})
    async with limits.hw:
        for _ in range(2):
            assert (await limits.hit("auth", "alice@example.com", tenant="a")).allowed
        denied = await limits.hit("auth", "alice@example.com", tenant="a")
        assert not denied.allowed and denied.violated is not None
        with pytest.raises(RateLimitExceeded) as info:
            denied.raise_for_status()
        assert info.value.status == 429 and info.value.details["policy"] == "auth"
        assert (await limits.hit("auth", "alice@example.com", tenant="b")).allowed
        await limits.reset("auth", "alice@example.com", tenant="a")
        assert (await limits.hit("auth", "alice@example.com", tenant="a")).allowed


async def test_plain_decorator_with_a_key(limits_factory: Any) -> None:
    limits = limits_factory(policies={"auth": "1/minute"})

    @limits.limit("auth", key=lambda email: email)
    async def send_code(email: str) -> str:
        return f"sent to {email}"

    assert await send_code("a@example.com") == "sent to a@example.com"
    with pytest.raises(RateLimitExceeded):
        await send_code("a@example.com")
    assert await send_code("b@example.com") == "sent to b@example.com"
