"""PostgreSQL: EXPLAIN of slow SELECTs, statistics, index advice, read replicas."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from tests.conftest import IN_CI, PG_BASE, _pg_exec
from tests.db.conftest import HubFactory

from headway.db.explain import explain_select
from headway.db.sqltext import UnsafeStatement

pytestmark = pytest.mark.postgres


async def test_slow_select_gets_a_plan_write_does_not(pg_url: str, make_hub: HubFactory) -> None:
    _, db = await make_hub(pg_url, slow_threshold=0.0)
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE s (id int PRIMARY KEY, secret text)"))
        await conn.execute(text("INSERT INTO s VALUES (1, :api_token)"), {"api_token": "tok"})
        await conn.execute(text("SELECT * FROM s WHERE id = :id"), {"id": 1})
    await db.monitor.drain()
    select = next(e for e in db.monitor.slow_log if e["statement"].startswith("SELECT * FROM s"))
    assert select["plan"][0]["Plan"]["Node Type"] in ("Index Scan", "Seq Scan", "Bitmap Heap Scan")
    insert = next(e for e in db.monitor.slow_log if e["statement"].startswith("INSERT"))
    assert insert["plan"] is None and insert["params"] == ["***"]


async def test_explain_select_only_on_postgres(pg_url: str, make_hub: HubFactory) -> None:
    _, db = await make_hub(pg_url)
    plan = await explain_select(db.engine, "SELECT 1", analyze=True)
    assert "Execution Time" in plan[0]
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE x (id int)"))
    for sql in ("SELECT 1; DROP TABLE x", "WITH d AS (DELETE FROM x RETURNING *) SELECT 1"):
        with pytest.raises(UnsafeStatement):
            await explain_select(db.engine, sql)
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM x"))).scalar() == 0


async def test_statistics(pg_url: str, make_hub: HubFactory) -> None:
    _, db = await make_hub(pg_url)
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE st (id int PRIMARY KEY, v text)"))
        await conn.execute(text("INSERT INTO st SELECT g, 'v' FROM generate_series(1, 500) g"))
        await conn.execute(text("ANALYZE st"))
    stats = await db.statistics()
    assert stats["dialect"] == "postgresql"
    assert 0 <= (stats["cache_hit_ratio"] or 0) <= 1
    [table] = [t for t in stats["tables"] if t["table"] == "st"]
    assert table["total_bytes"] > 0
    assert any(i["index"] == "st_pkey" for i in stats["indexes"])


@pytest.mark.parametrize("source", ["pg_stat_statements", "captured"])
async def test_index_advice_for_unindexed_filter(
    pg_url: str, make_hub: HubFactory, source: str
) -> None:
    _, db = await make_hub(pg_url)
    async with db.engine.begin() as conn:
        if source == "pg_stat_statements":
            # .ci/run preloads the extension (shared_preload_libraries) before the tests
            loaded = (await conn.execute(text("SHOW shared_preload_libraries"))).scalar()
            if "pg_stat_statements" not in str(loaded):
                if IN_CI:
                    pytest.fail("pg_stat_statements is not preloaded", pytrace=False)
                pytest.skip("pg_stat_statements is not preloaded on this server")
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            await conn.execute(text("SELECT pg_stat_statements_reset()"))
        await conn.execute(
            text("CREATE TABLE orders (id int PRIMARY KEY, customer int, status text, note text)")
        )
        await conn.execute(
            text(
                "INSERT INTO orders SELECT g, g % 5000, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END,"
                " 'n' FROM generate_series(1, 100000) g"
            )
        )
        await conn.execute(text("ANALYZE orders"))
    db.monitor.reset()
    async with db.engine.connect() as conn:
        for c in range(5):
            await conn.execute(text("SELECT id FROM orders WHERE customer = :c"), {"c": c})
    advice = await db.index_advice()
    print("\nindex advice:", advice)
    assert advice["source"] == source
    mine = [s for s in advice["suggestions"] if s["table"] == "orders"]
    assert [s["columns"] for s in mine] == [["customer"]]
    assert mine[0]["statement"].startswith("CREATE INDEX CONCURRENTLY")
    assert mine[0]["statement"].endswith('"orders" ("customer");')
    assert mine[0]["evidence"]["table_rows"] == 100000
    assert mine[0]["evidence"]["column"]["estimated_distinct"] > 1000
    if advice["source"] == "captured":
        assert mine[0]["evidence"]["query"]["count"] == 5
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(mine[0]["statement"]))
    again = await db.index_advice()
    print("after CREATE INDEX:", again)
    assert [s for s in again["suggestions"] if s["table"] == "orders"] == []


# The replica is another database of the local server (``postgres``; the primary is ``test``).
REPLICA_DB = PG_BASE.rsplit("/", 1)[0] + "/postgres"


@pytest.fixture
def replica_url(pg_url: str) -> Iterator[str]:
    schema = f"r_{uuid.uuid4().hex[:12]}"
    _pg_exec(f'CREATE SCHEMA "{schema}"', REPLICA_DB)
    try:
        yield f"{REPLICA_DB}?schema={schema}"
    finally:
        _pg_exec(f'DROP SCHEMA "{schema}" CASCADE', REPLICA_DB)


async def _whoami(db: object) -> tuple[str, str]:
    async with db.read_session() as s:  # type: ignore[attr-defined]
        value = (await s.execute(text("SELECT name FROM whoami"))).scalar_one()
        return value, s.info["headway_target"]


async def test_read_replicas(pg_url: str, replica_url: str, make_hub: HubFactory) -> None:
    down = "postgresql://postgres@127.0.0.1:1/test"
    hw, db = await make_hub(pg_url, replica_urls=[replica_url, down], replica_retry=60)
    for url, name in ((pg_url, "primary"), (replica_url, "replica")):
        async with hw.connections.engine(url).begin() as conn:
            await conn.execute(text("CREATE TABLE whoami (name text)"))
            await conn.execute(text("INSERT INTO whoami VALUES (:n)"), {"n": name})

    # round robin over the healthy ones: the unreachable replica is skipped
    assert [await _whoami(db) for _ in range(3)] == [("replica", "replica:0")] * 3
    assert db.router.healthy(down) is False and db.router.failures[down] == 1

    # read-your-writes: after a write in the same request, reads go to the primary
    with db.scope("request"):
        assert (await _whoami(db))[0] == "replica"
        async with db.session() as s:
            await s.execute(text("UPDATE whoami SET name = 'primary'"))
            await s.commit()
        assert await _whoami(db) == ("primary", "primary")
    assert (await _whoami(db))[0] == "replica"  # a new request reads from the replica again

    # the flag switches replicas off at run time
    await hw.flags.save({"key": "use-read-replicas", "enabled": False})
    assert await _whoami(db) == ("primary", "primary")
    await hw.flags.update("use-read-replicas", {"enabled": True})
    assert (await _whoami(db))[0] == "replica"
    health = await db.health()
    assert [r["healthy"] for r in health["replicas"]] == [True, False]
