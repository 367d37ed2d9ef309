"""Transactional enqueue: a job written through the caller's SQLAlchemy session exists
only if that transaction commits (SQLite on the jobs file, PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from tests.conftest import backend_params

from headway import Headway
from headway.jobs import Jobs

sql_backends = pytest.mark.parametrize("backend", backend_params("sqlite", "postgres"))


@pytest.fixture
async def engine(hw: Headway, backend_url: str) -> AsyncIterator[AsyncEngine]:
    """The application's engine on the jobs database (PostgreSQL: the test's schema)."""
    engine = hw.connections.engine(backend_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE things (id integer PRIMARY KEY, name text)"))
    yield engine


async def run_worker_until(jobs: Jobs, done: list[int], count: int) -> None:
    worker = jobs.worker(["default"], poll_interval=0.01)
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(500):
            if len(done) >= count:
                break
            await asyncio.sleep(0.01)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)


@sql_backends
async def test_rollback_means_no_job_commit_means_it_runs(jobs: Jobs, engine: AsyncEngine) -> None:
    done: list[int] = []

    @jobs.task(name="process")
    async def process(thing_id: int) -> None:
        done.append(thing_id)

    async with AsyncSession(engine) as session:
        await session.execute(text("INSERT INTO things VALUES (1, 'rolled back')"))
        lost = await process.options(session=session).enqueue(1)
        assert lost.created
        await session.rollback()
    assert await jobs.get(lost.id) is None

    async with AsyncSession(engine) as session:
        await session.execute(text("INSERT INTO things VALUES (2, 'committed')"))
        kept = await process.options(session=session).enqueue(2)
        [many] = await jobs.enqueue_many([process.call(3)], session=session)
        await session.commit()
    assert (await kept.status(), await many.status()) == ("queued", "queued")
    await run_worker_until(jobs, done, 2)
    assert sorted(done) == [2, 3]
    assert await kept.result(timeout=5) is None
    async with AsyncSession(engine) as session:
        names = (await session.execute(text("SELECT name FROM things"))).scalars().all()
    assert names == ["committed"]


@sql_backends
async def test_job_is_invisible_to_workers_until_commit(jobs: Jobs, engine: AsyncEngine) -> None:
    @jobs.task(name="noop")
    async def noop() -> None: ...

    async with AsyncSession(engine) as session:
        handle = await noop.options(session=session).enqueue()
        if jobs.url.startswith("postgres"):  # SQLite: the open write transaction locks it
            assert await jobs.backend.claim("default", "w", 10, 30) == []
        await session.commit()
    [claimed] = await jobs.backend.claim("default", "w", 10, 30)
    assert claimed.id == handle.id


@pytest.mark.parametrize("backend", backend_params("memory", "redis"))
async def test_non_sql_store_refuses_a_session(jobs: Jobs, sqlite_url: str, hw: Headway) -> None:
    @jobs.task(name="noop")
    async def noop() -> None: ...

    async with AsyncSession(hw.connections.engine(sqlite_url)) as session:
        with pytest.raises(TypeError, match="SQL job store"):
            await noop.options(session=session).enqueue()


@pytest.mark.parametrize("backend", backend_params("sqlite"))
async def test_sqlite_session_on_another_file_is_refused(
    jobs: Jobs, hw: Headway, tmp_path: object
) -> None:
    @jobs.task(name="noop")
    async def noop() -> None: ...

    other = hw.connections.engine(f"sqlite:///{tmp_path}/other.db")
    async with AsyncSession(other) as session:
        with pytest.raises(ValueError, match="own SQLite file"):
            await noop.options(session=session).enqueue()
        with pytest.raises(TypeError, match="AsyncSession"):
            await noop.options(session=object()).enqueue()


@pytest.mark.parametrize("backend", backend_params("memory", "sqlite", "redis", "postgres"))
def test_transactional_flag(jobs: Jobs, backend: str) -> None:
    assert jobs.transactional is (backend in ("sqlite", "postgres"))


@pytest.mark.parametrize("backend", backend_params("postgres"))
async def test_postgres_session_on_another_database_is_refused(jobs: Jobs, hw: Headway) -> None:
    @jobs.task(name="noop")
    async def noop() -> None: ...

    other = hw.connections.engine("postgresql://postgres@127.0.0.1:5432/postgres")
    async with AsyncSession(other) as session:
        with pytest.raises(ValueError, match="database of the job store"):
            await noop.options(session=session).enqueue()
