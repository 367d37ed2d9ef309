"""SQLAlchemy helpers: cached rows/collections/queries, invalidated after commit only."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import ForeignKey, String, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from tests.cache.conftest import MakeCache

from headway.cache import Cache


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int]
    name: Mapped[str] = mapped_column(String(50))


class Article(Base):
    __tablename__ = "articles"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int]
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    title: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=lambda: dt.datetime(2024, 1, 2, 3, 4))


@pytest.fixture
async def sessions(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(sqlite_url.replace("sqlite://", "sqlite+aiosqlite://"))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    async with factory() as s:
        s.add_all([Author(id=1, tenant_id=1, name="ann"), Author(id=2, tenant_id=2, name="bo")])
        s.add_all([Article(id=i, tenant_id=1, author_id=1, title=f"t{i}") for i in (1, 2)])
        await s.commit()
    yield factory
    await engine.dispose()


@pytest.fixture
async def cache(make_cache: MakeCache, redis_url: str) -> AsyncIterator[Cache]:
    cache = await make_cache(redis_url)
    cache.orm.watch()
    yield cache
    cache.orm.unwatch()


async def _count_queries(factory: async_sessionmaker[AsyncSession]) -> list[str]:
    from sqlalchemy import event

    seen: list[str] = []
    engine = factory.kw["bind"]
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(str(a[2])))
    return seen


async def test_find_cached_row_survives_round_trip(cache: Cache, sessions) -> None:
    queries = await _count_queries(sessions)
    async with sessions() as s:
        a = await cache.orm.find_cached(s, Article, 1, tenant=1)
        assert a is not None and a.title == "t1"
    n = len(queries)
    async with sessions() as s:
        cache.l1.clear()
        a = await cache.orm.find_cached(s, Article, 1, tenant=1)
        assert a is not None and a.created_at == dt.datetime(2024, 1, 2, 3, 4)
        assert a in s  # attached to the session, without a query
        assert await cache.orm.find_cached(s, Article, 99, tenant=1) is None
    assert len(queries) == n + 1  # only the miss on id 99 queried


async def test_update_commit_invalidates_row_and_collection(cache: Cache, sessions) -> None:
    async with sessions() as s:
        rows = await cache.orm.all_cached(s, Article, tenant=1, tenant_id=1)
        assert [r.title for r in rows] == ["t1", "t2"]
        await cache.orm.find_cached(s, Article, 1, tenant=1)
        stmt = select(Article.author_id, func.count().label("n")).group_by(Article.author_id)
        assert await cache.orm.query_cached(s, stmt, key="per-author", tenant=1) == [
            {"author_id": 1, "n": 2}
        ]
    async with sessions() as s:
        art = await s.get(Article, 1)
        assert art is not None
        art.title = "changed"
        s.add(Article(id=3, tenant_id=1, author_id=1, title="t3"))
        await s.commit()
    async with sessions() as s:
        got = await cache.orm.find_cached(s, Article, 1, tenant=1)
        assert got is not None and got.title == "changed"
        rows = await cache.orm.all_cached(s, Article, tenant=1, tenant_id=1)
        assert [r.title for r in rows] == ["changed", "t2", "t3"]
        per_author = await cache.orm.query_cached(s, stmt, key="per-author", tenant=1)
        assert per_author == [{"author_id": 1, "n": 3}]


async def test_rollback_invalidates_nothing(cache: Cache, sessions) -> None:
    async with sessions() as s:
        await cache.orm.find_cached(s, Article, 2, tenant=1)
    async with sessions() as s:
        art = await s.get(Article, 2)
        assert art is not None
        art.title = "never"
        await s.flush()
        await s.rollback()
    assert cache.stats()["l1"]["entries"] == 1
    async with sessions() as s:
        got = await cache.orm.find_cached(s, Article, 2, tenant=1)
        assert got is not None and got.title == "t2"
    assert cache.stats()["loads"] == 1


async def test_delete_and_core_statement_invalidation(cache: Cache, sessions) -> None:
    async with sessions() as s:
        await cache.orm.find_cached(s, Article, 2, tenant=1)
        await cache.orm.find_cached(s, Author, 2, tenant=2)
    async with sessions() as s:
        art = await s.get(Article, 2)
        await s.delete(art)
        await s.commit()
    async with sessions() as s:
        assert await cache.orm.find_cached(s, Article, 2, tenant=1) is None
        await s.execute(delete(Author).where(Author.id == 2))
        await s.commit()
        assert await cache.orm.find_cached(s, Author, 2, tenant=2) is not None  # not seen
        await cache.orm.invalidate(Author, 2, tenant=2)
        assert await cache.orm.find_cached(s, Author, 2, tenant=2) is None
