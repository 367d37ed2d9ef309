from __future__ import annotations

import pytest
from httpx import ASGITransport, AsyncClient
from tests.db.conftest import AUTH, HubFactory, create_schema

BAD = [
    "SELECT 1; DROP TABLE authors",
    "WITH d AS (DELETE FROM authors RETURNING *) SELECT * FROM d",
    "SELECT 1 -- ; DROP TABLE authors",
    "sElEcT 1 /* x */",
    "DrOp TABLE authors",
    "delete from authors",
]


@pytest.fixture
async def client(sqlite_url: str, make_hub: HubFactory) -> AsyncClient:
    _, db, app = await make_hub(sqlite_url, app=True)
    await create_schema(db.engine, authors=3)
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://t", headers=AUTH)


async def test_admin_endpoints_need_the_token(client: AsyncClient) -> None:
    resp = await client.get("/admin/db/metrics", headers={"Authorization": "Bearer " + "b" * 32})
    assert resp.status_code == 403


async def test_metrics_clear_slow_health_statistics(client: AsyncClient) -> None:
    assert (await client.get("/authors")).json() == {"books": 6}
    body = (await client.get("/admin/db/metrics", params={"order": "count"})).json()
    assert body["summary"]["statements"] > 0
    assert any("FROM books" in r["fingerprint"] for r in body["fingerprints"])
    assert (await client.delete("/admin/db/stats")).json() == {"cleared": True}
    body = (await client.get("/admin/db/metrics")).json()
    assert body["fingerprints"] == [] and body["summary"]["statements"] == 0
    assert (await client.get("/admin/db/slow")).json()["slow"] == []
    health = (await client.get("/admin/db/health")).json()
    assert health["ok"] is True and health["primary"]["latency_ms"] >= 0
    assert "active" in health["primary"]["pool"]
    stats = (await client.get("/admin/db/statistics")).json()
    assert stats["dialect"] == "sqlite"
    assert {"table": "authors", "rows": 3} in stats["tables"]
    advice = (await client.get("/admin/db/indexes")).json()
    assert advice["suggestions"] == []


async def test_explain_a_select(client: AsyncClient) -> None:
    resp = await client.post(
        "/admin/db/explain", json={"sql": "SELECT * FROM authors WHERE id = 1"}
    )
    assert resp.status_code == 200
    assert resp.json()["plan"]


@pytest.mark.parametrize("sql", BAD)
async def test_explain_refuses_others_with_400(client: AsyncClient, sql: str) -> None:
    resp = await client.post("/admin/db/explain", json={"sql": sql})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "bad_request"
    # and nothing was run
    assert (await client.get("/authors")).json() == {"books": 6}


async def test_explain_of_bad_sql_is_400(client: AsyncClient) -> None:
    resp = await client.post("/admin/db/explain", json={"sql": "SELECT * FROM nowhere"})
    assert resp.status_code == 400
    assert "refused" in resp.json()["error"]["message"]
