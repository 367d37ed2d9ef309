"""The middleware's hot path (no identify hook, one address-keyed policy) over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI

from headway.ratelimit import RateLimits

from .conftest import BACKENDS, make_limits
from .test_http import parse_list

PEER = ("203.0.113.9", 5555)


def build(limits: RateLimits) -> FastAPI:
    app = FastAPI()

    @app.get("/api/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/api/upload", dependencies=[Depends(limits.dependency("upload"))])
    async def upload() -> dict[str, bool]:
        return {"ok": True}

    limits.hw.install(app)
    return app


@pytest.fixture
async def fast(
    request: pytest.FixtureRequest, backend_url: str, redis_prefix: str
) -> AsyncIterator[tuple[RateLimits, httpx.AsyncClient]]:
    limits = make_limits(backend_url, redis_prefix, mode=request.param)
    limits.policy("per-ip", "20/minute", algorithm="fixed_window", scope="ip")
    limits.protect("/api/", "per-ip")
    app = build(limits)
    await limits.hw.start()
    transport = httpx.ASGITransport(app=app, client=PEER)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield limits, client
    await limits.hw.stop()


MODES = pytest.mark.parametrize("fast", ["direct", "coalesce", "lease"], indirect=True)


@pytest.mark.parametrize("backend", BACKENDS)
@MODES
async def test_exact_counts_and_headers_on_the_hot_path(
    backend: str, fast: tuple[RateLimits, httpx.AsyncClient]
) -> None:
    limits, client = fast
    answers = [await client.get(f"/api/items/{i}") for i in range(25)]
    assert [r.status_code for r in answers] == [200] * 20 + [429] * 5
    for n, r in enumerate(answers[:20], start=1):
        assert parse_list(r.headers["ratelimit-policy"]) == [("per-ip", {"q": 20, "w": 60})]
        [(name, state)] = parse_list(r.headers["ratelimit"])
        assert name == "per-ip" and state["r"] == 20 - n and 0 < state["t"] <= 60
        assert r.headers["x-ratelimit-remaining"] == str(20 - n)
        assert r.headers["x-ratelimit-limit"] == "20"
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert limits.metrics.snapshot()["per-ip"] == {"allowed": 20, "denied": 5}


@pytest.mark.parametrize("backend", ["memory"])
@MODES
async def test_route_dependency_joins_the_hot_path_headers(
    backend: str, fast: tuple[RateLimits, httpx.AsyncClient]
) -> None:
    _, client = fast
    r = await client.post("/api/upload")
    assert r.status_code == 200
    names = [name for name, _ in parse_list(r.headers["ratelimit-policy"])]
    assert names == ["per-ip", "upload"]
    assert [state["r"] for _, state in parse_list(r.headers["ratelimit"])] == [19, 9]


@pytest.mark.parametrize("backend", ["memory"])
@MODES
async def test_a_replaced_policy_or_a_new_rule_applies_at_once(
    backend: str, fast: tuple[RateLimits, httpx.AsyncClient]
) -> None:
    limits, client = fast
    await client.get("/api/items/1")
    limits.policy("per-ip", "50/minute", algorithm="fixed_window", scope="ip")
    r = await client.get("/api/items/1")
    assert parse_list(r.headers["ratelimit-policy"]) == [("per-ip", {"q": 50, "w": 60})]
    assert "ratelimit" not in (await client.get("/docs")).headers
    limits.protect("/docs", "per-ip")
    assert "ratelimit" in (await client.get("/docs")).headers
