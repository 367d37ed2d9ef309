"""Shared connections against the real SQLite file, PostgreSQL and Redis servers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from headway import load_settings
from headway.connections import Connections

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
DOWN_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
async def make_conns(tmp_path: Path) -> AsyncIterator[Callable[..., Connections]]:
    """Build Connections from settings overrides; every one is closed afterwards."""
    made: list[Connections] = []

    def make(**overrides: Any) -> Connections:
        overrides.setdefault("data_dir", tmp_path / "data")
        conns = Connections(load_settings(overrides))
        made.append(conns)
        return conns

    yield make
    for conns in made:
        await conns.close()


async def _eventually(predicate: Callable[[], Any]) -> bool:
    """Poll ``predicate`` for up to 3 seconds."""
    for _ in range(60):
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


# -- SQLite ---------------------------------------------------------------------------


async def test_engine_is_shared_per_url(make_conns: Callable[..., Connections]) -> None:
    conns = make_conns()
    assert conns.engine() is conns.engine()
    assert conns.engine(conns.settings.sql_url) is conns.engine()


async def test_different_urls_get_different_engines(
    make_conns: Callable[..., Connections], sqlite_url: str, tmp_path: Path
) -> None:
    conns = make_conns()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert conns.engine(sqlite_url) is not conns.engine(other)


async def test_default_engine_is_the_sqlite_file_in_data_dir(
    make_conns: Callable[..., Connections], tmp_path: Path
) -> None:
    conns = make_conns(data_dir=tmp_path / "nested" / "data")
    async with conns.engine().connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    assert (tmp_path / "nested" / "data" / "headway.db").exists()


async def test_sqlite_select_and_wal_mode(
    make_conns: Callable[..., Connections], sqlite_url: str
) -> None:
    engine = make_conns().engine(sqlite_url)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_sqlite_writes_are_visible_to_a_second_connection(
    make_conns: Callable[..., Connections], sqlite_url: str
) -> None:
    engine = make_conns().engine(sqlite_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        await conn.execute(text("INSERT INTO t VALUES (42)"))
    async with engine.connect() as one, engine.connect() as two:
        assert (await one.execute(text("SELECT x FROM t"))).scalar() == 42
        assert (await two.execute(text("SELECT x FROM t"))).scalar() == 42


async def test_sqlite_pool_size_comes_from_settings(
    make_conns: Callable[..., Connections], sqlite_url: str
) -> None:
    engine = make_conns(pool_size=3, pool_max=7).engine(sqlite_url)
    assert engine.pool.size() == 3  # type: ignore[attr-defined]


async def test_idle_connection_is_replaced_and_a_busy_one_kept(
    make_conns: Callable[..., Connections], sqlite_url: str
) -> None:
    engine = make_conns(idle_timeout=0.05, pool_size=1, pool_max=1).engine(sqlite_url)

    async def driver_connection() -> Any:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            return (await conn.get_raw_connection()).driver_connection

    # Keep references so that ids cannot be recycled between checkouts.
    first = await driver_connection()
    again = await driver_connection()  # reused at once: still the same connection
    assert again is first
    await asyncio.sleep(0.1)  # idle longer than idle_timeout
    after_idle = await driver_connection()
    assert after_idle is not first
    assert await driver_connection() is after_idle


async def test_connection_used_within_the_idle_timeout_is_kept(
    make_conns: Callable[..., Connections], sqlite_url: str
) -> None:
    engine = make_conns(idle_timeout=30, pool_size=1, pool_max=1).engine(sqlite_url)
    async with engine.connect() as conn:
        first = (await conn.get_raw_connection()).driver_connection
    await asyncio.sleep(0.1)
    async with engine.connect() as conn:
        assert (await conn.get_raw_connection()).driver_connection is first


async def test_close_disposes_and_a_new_engine_is_built_after(
    make_conns: Callable[..., Connections], sqlite_url: str
) -> None:
    conns = make_conns()
    engine = conns.engine(sqlite_url)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    old_pool = engine.pool
    assert old_pool.checkedin() == 1  # type: ignore[attr-defined]
    await conns.close()
    assert old_pool.checkedin() == 0  # type: ignore[attr-defined]
    fresh = conns.engine(sqlite_url)
    assert fresh is not engine
    async with fresh.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1


async def test_close_twice_is_harmless(make_conns: Callable[..., Connections]) -> None:
    conns = make_conns()
    conns.engine()
    await conns.close()
    await conns.close()


# -- PostgreSQL -----------------------------------------------------------------------


@pytest.mark.postgres
async def test_postgres_select_in_the_test_schema(
    make_conns: Callable[..., Connections], pg_url: str
) -> None:
    schema = pg_url.rsplit("schema=", 1)[1]
    conns = make_conns(database_url=pg_url)
    engine = conns.engine()
    assert engine is conns.engine()
    assert engine is conns.engine(pg_url)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        assert (await conn.execute(text("SELECT current_schema()"))).scalar() == schema
        name = (await conn.execute(text("SHOW application_name"))).scalar()
        assert name == "headway"


@pytest.mark.postgres
async def test_postgres_tables_land_in_the_test_schema(
    make_conns: Callable[..., Connections], pg_url: str
) -> None:
    schema = pg_url.rsplit("schema=", 1)[1]
    engine = make_conns().engine(pg_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE things (id int)"))
        found = await conn.execute(
            text("SELECT table_schema FROM information_schema.tables WHERE table_name = 'things'")
        )
        assert [row[0] for row in found] == [schema]


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgres", "postgresql+asyncpg"])
async def test_postgres_scheme_aliases(
    make_conns: Callable[..., Connections], pg_url: str, scheme: str
) -> None:
    url = scheme + pg_url.removeprefix("postgresql")
    async with make_conns().engine(url).connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1


@pytest.mark.postgres
async def test_postgres_pool_limits_come_from_settings(
    make_conns: Callable[..., Connections], pg_url: str
) -> None:
    engine = make_conns(pool_size=2, pool_max=3).engine(pg_url)
    assert engine.pool.size() == 2  # type: ignore[attr-defined]
    conns = [await engine.connect() for _ in range(3)]  # size + overflow
    try:
        assert engine.pool.checkedout() == 3  # type: ignore[attr-defined]
    finally:
        for conn in conns:
            await conn.close()


@pytest.mark.postgres
async def test_postgres_idle_connection_is_replaced(
    make_conns: Callable[..., Connections], pg_url: str
) -> None:
    engine = make_conns(idle_timeout=0.05, pool_size=1, pool_max=1).engine(pg_url)

    async def backend_pid() -> int:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    first = await backend_pid()
    assert await backend_pid() == first
    await asyncio.sleep(0.1)
    assert await backend_pid() != first


@pytest.mark.postgres
async def test_postgres_close_ends_the_server_sessions(
    make_conns: Callable[..., Connections], pg_url: str
) -> None:
    import asyncpg

    conns = make_conns()
    async with conns.engine(pg_url).connect() as conn:
        pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
    await conns.close()

    async def gone() -> bool:
        admin = await asyncpg.connect(PG_BASE, timeout=5)
        try:
            return not await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
            )
        finally:
            await admin.close()

    assert await _eventually(gone)


# -- Redis ----------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_ping_and_shared_client(
    make_conns: Callable[..., Connections], redis_url: str, redis_prefix: str
) -> None:
    conns = make_conns(redis_url=redis_url)
    client = conns.redis()
    assert client is conns.redis()
    assert client is conns.redis(redis_url)
    assert await client.ping() is True
    await client.set(f"{redis_prefix}:k", "v")
    assert await conns.redis().get(f"{redis_prefix}:k") == b"v"


@pytest.mark.redis
async def test_redis_pool_max_comes_from_settings(
    make_conns: Callable[..., Connections], redis_url: str
) -> None:
    client = make_conns(redis_url=redis_url, pool_max=7).redis()
    assert client.connection_pool.max_connections == 7


async def test_redis_without_configuration_is_a_clear_error(
    make_conns: Callable[..., Connections],
) -> None:
    with pytest.raises(LookupError, match="HEADWAY_REDIS_URL"):
        make_conns().redis()


@pytest.mark.redis
async def test_close_builds_a_new_redis_client_after(
    make_conns: Callable[..., Connections], redis_url: str
) -> None:
    conns = make_conns(redis_url=redis_url)
    client = conns.redis()
    assert await client.ping() is True
    await conns.close()
    fresh = conns.redis()
    assert fresh is not client
    assert await fresh.ping() is True


@pytest.mark.redis
async def test_close_disconnects_the_redis_connections(
    make_conns: Callable[..., Connections], redis_url: str
) -> None:
    from redis.asyncio import Redis

    conns = make_conns(redis_url=redis_url)
    name = f"hwtest-close-{uuid.uuid4().hex[:8]}"
    await conns.redis().client_setname(name)
    observer = Redis.from_url(redis_url)
    try:

        async def names() -> list[str]:
            return [c.get("name") for c in await observer.client_list()]

        assert name in await names()
        await conns.close()

        async def gone() -> bool:
            return name not in await names()

        assert await _eventually(gone)
    finally:
        await observer.aclose()


# -- checks ---------------------------------------------------------------------------


async def test_check_all_with_the_embedded_defaults(
    make_conns: Callable[..., Connections],
) -> None:
    results = await make_conns().check_all()
    assert [(r.name, r.ok) for r in results] == [("database", True)]
    assert results[0].error is None
    assert results[0].latency_ms >= 0


@pytest.mark.redis
async def test_check_all_with_redis_up(
    make_conns: Callable[..., Connections], redis_url: str
) -> None:
    results = await make_conns(redis_url=redis_url).check_all()
    assert {(r.name, r.ok) for r in results} == {("database", True), ("redis", True)}


async def test_check_all_reports_a_down_redis_without_raising(
    make_conns: Callable[..., Connections],
) -> None:
    results = await make_conns(redis_url=DOWN_REDIS, connect_timeout=2).check_all()
    by_name = {r.name: r for r in results}
    assert by_name["database"].ok is True
    assert by_name["redis"].ok is False
    assert by_name["redis"].url == DOWN_REDIS
    assert by_name["redis"].error


async def test_check_all_covers_a_capability_override(
    make_conns: Callable[..., Connections],
) -> None:
    results = await make_conns(cache_url=DOWN_REDIS, connect_timeout=2).check_all()
    assert [(r.name, r.url, r.ok) for r in results if r.name == "redis"] == [
        ("redis", DOWN_REDIS, False)
    ]


async def test_check_masks_the_redis_password(make_conns: Callable[..., Connections]) -> None:
    password = "very-secret-redis-pw"
    url = f"redis://:{password}@127.0.0.1:1/0"
    results = await make_conns(redis_url=url, connect_timeout=2).check_all()
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1
    assert password not in repr(results)


async def test_check_reports_a_down_database_without_raising(
    make_conns: Callable[..., Connections],
) -> None:
    url = "postgresql://postgres:pg-secret-pw@127.0.0.1:1/nothing"
    results = await make_conns(database_url=url, connect_timeout=2).check_all()
    assert len(results) == 1
    assert results[0].ok is False
    assert results[0].error
    assert "pg-secret-pw" not in repr(results)


async def test_check_sql_reports_an_unopenable_sqlite_file(
    make_conns: Callable[..., Connections], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = await make_conns().check_sql(f"sqlite:///{blocker / 'x.db'}")
    assert result.ok is False
    assert result.error
