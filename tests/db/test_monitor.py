from __future__ import annotations

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from tests.db.conftest import AUTH, HubFactory, create_schema, lazy_loop

from headway.db import NPlusOneError


async def test_fingerprints_count_percentiles_rows(sqlite_url: str, make_hub: HubFactory) -> None:
    _, db = await make_hub(sqlite_url)
    await create_schema(db.engine, authors=5)
    db.monitor.reset()
    async with db.engine.connect() as conn:
        for i in range(20):
            await conn.execute(text(f"SELECT * FROM authors WHERE id = {i % 5 + 1}"))
        await conn.execute(text("SELECT * FROM authors WHERE id IN (1, 2, 3)"))
        await conn.execute(text("SELECT * FROM authors WHERE id IN (4, 5)"))
    top = {r["fingerprint"]: r for r in db.monitor.top(100)}
    one = top["SELECT * FROM authors WHERE id = ?"]
    assert one["count"] == 20
    assert one["rows"] == 20  # one row each
    assert 0 < one["min_ms"] <= one["p50_ms"] <= one["p95_ms"] <= one["p99_ms"] <= one["max_ms"]
    assert one["mean_ms"] == pytest.approx(one["total_ms"] / 20, rel=0.01)
    many = top["SELECT * FROM authors WHERE id IN (...)"]
    assert many["count"] == 2 and many["rows"] == 5
    assert one["group"] == "SELECT authors"


async def test_memory_is_bounded(sqlite_url: str, make_hub: HubFactory) -> None:
    _, db = await make_hub(sqlite_url, max_fingerprints=20)
    async with db.engine.connect() as conn:
        for i in range(100):
            await conn.execute(text(f"SELECT {i} AS c{i}"))
    assert len(db.monitor.stats) <= 20
    assert db.monitor.evicted >= 80


async def test_lazy_load_loop_is_an_n_plus_one(sqlite_url: str, make_hub: HubFactory) -> None:
    _, db = await make_hub(sqlite_url)
    await create_schema(db.engine, authors=12)
    with db.scope("test loop"):
        assert await lazy_loop(db) == 24
    [report] = list(db.monitor.n_plus_one_log)
    assert report["scope"] == "test loop"
    assert report["count"] == 10
    assert "FROM books" in report["fingerprint"] and "?" in report["fingerprint"]
    assert report["caller"].endswith(".py:" + report["caller"].rsplit(":", 1)[1])
    assert "tests/db/conftest.py" in report["caller"]  # the loop's line, not SQLAlchemy's


async def test_below_threshold_or_outside_a_scope_is_not_reported(
    sqlite_url: str, make_hub: HubFactory
) -> None:
    _, db = await make_hub(sqlite_url)
    await create_schema(db.engine, authors=5)
    with db.scope("small"):
        await lazy_loop(db)
    await create_schema_more(db)
    await lazy_loop(db)  # 13 authors but no scope
    assert list(db.monitor.n_plus_one_log) == []


async def create_schema_more(db: object) -> None:
    from tests.db.conftest import Author

    async with db.session() as session:  # type: ignore[attr-defined]
        session.add_all([Author(name=f"x{i}") for i in range(8)])
        await session.commit()


async def test_raise_mode_in_a_request(sqlite_url: str, make_hub: HubFactory) -> None:
    _hw, db, app = await make_hub(
        sqlite_url, app=True, n_plus_one_mode="raise", n_plus_one_threshold=5
    )
    await create_schema(db.engine, authors=12)
    with pytest.raises(NPlusOneError) as info, db.scope("raise"):
        await lazy_loop(db)
    assert info.value.report["count"] == 5
    # Through the app: the request is the scope; the error surfaces as a 500 in dev.
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        resp = await client.get("/authors")
        assert resp.status_code == 500
        body = (await client.get("/admin/db/metrics", headers=AUTH)).json()
    assert any(r["scope"] == "GET /authors" for r in body["n_plus_one"])


async def test_request_scope_log_mode(sqlite_url: str, make_hub: HubFactory) -> None:
    _hw, db, app = await make_hub(sqlite_url, app=True)
    await create_schema(db.engine, authors=12)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/authors")).json() == {"books": 24}
        assert (await client.get("/authors")).json() == {"books": 24}
    reports = list(db.monitor.n_plus_one_log)
    assert [r["scope"] for r in reports] == ["GET /authors", "GET /authors"]


async def test_slow_log_with_caller_and_redacted_params(
    sqlite_url: str, make_hub: HubFactory
) -> None:
    _, db = await make_hub(sqlite_url, slow_threshold=0.0, slow_log_size=5)
    await create_schema(db.engine, authors=2)
    db.monitor.slow_log.clear()
    async with db.engine.connect() as conn:
        await conn.execute(
            text("SELECT * FROM authors WHERE name = :name AND name <> :password"),
            {"name": "bob", "password": "hunter2"},
        )
        line = __import__("inspect").currentframe().f_lineno - 4  # type: ignore[union-attr]
    entry = next(e for e in db.monitor.slow_log if "authors" in e["statement"])
    assert "hunter2" not in str(entry)
    assert "bob" in str(entry["params"])
    assert entry["caller"].endswith(f"test_monitor.py:{line}")
    assert entry["plan"] is None  # no EXPLAIN on SQLite
    async with db.engine.connect() as conn:
        for _ in range(10):
            await conn.execute(text("SELECT 1"))
    assert len(db.monitor.slow_log) == 5  # bounded


async def test_job_scope(sqlite_url: str, make_hub: HubFactory) -> None:
    from headway.jobs.task import _current

    _, db = await make_hub(sqlite_url)
    await create_schema(db.engine, authors=12)

    class FakeJob:
        task = "send"
        job_id = "j1"

    token = _current.set(FakeJob())  # type: ignore[arg-type]
    try:
        await lazy_loop(db)
    finally:
        _current.reset(token)
    [report] = list(db.monitor.n_plus_one_log)
    assert report["scope"] == "job send j1"


async def test_metrics_and_readiness(sqlite_url: str, make_hub: HubFactory) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    _, db = await make_hub(sqlite_url, n_plus_one_threshold=3)
    registry = CollectorRegistry()
    db.register_metrics(registry)
    await create_schema(db.engine, authors=4)
    with db.scope("m"):
        await lazy_loop(db)
    await db.refresh_metrics()
    exposed = generate_latest(registry).decode()
    assert 'headway_db_fingerprint_duration_seconds_count{group="SELECT books"} 4.0' in exposed
    assert 'headway_db_n_plus_one_detections_total{group="SELECT books"} 1.0' in exposed
    assert "headway_db_fingerprints " in exposed
    ready = await db.check_ready()
    assert ready.ok and ready.detail["latency_ms"] >= 0 and "pool" in ready.detail
