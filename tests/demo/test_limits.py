"""The reference service's plan quotas: the free tenant gets 100 requests a minute."""

from __future__ import annotations

from tests.demo.conftest import Demo


async def test_plan_quota_applies_per_tenant(demo: Demo) -> None:
    r = await demo.client.get("/api/v2/me", headers=demo.auth("globex"))
    assert r.status_code == 200
    assert r.headers["ratelimit-policy"] == '"plan";q=100;w=60'
    assert r.headers["x-ratelimit-limit"] == "100"
    statuses = [r.status_code]
    for _ in range(100):
        r = await demo.client.get("/api/v2/me", headers=demo.auth("globex"))
        statuses.append(r.status_code)
    assert statuses.count(200) == 100 and statuses[-1] == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"
    # the professional tenant has its own, larger quota, untouched by globex's
    r = await demo.client.get("/api/v2/me", headers=demo.auth("acme"))
    assert r.status_code == 200
    assert r.headers["ratelimit-policy"] == '"plan";q=1000;w=60'


async def test_anonymous_callers_are_limited_per_ip(demo: Demo) -> None:
    codes = [(await demo.client.get("/api/v2/posts")).status_code for _ in range(31)]
    assert codes[:30] == [401] * 30 and codes[30] == 429
