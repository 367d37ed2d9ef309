"""A small app of its own (authors and books, lazy loading on purpose) and hub helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncAttrs, AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from headway import Headway
from headway.db import Database, DbSettings

ADMIN = "a" * 32
AUTH = {"Authorization": f"Bearer {ADMIN}"}


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    books: Mapped[list[Book]] = relationship(back_populates="author")  # lazy="select"


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(50))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


async def create_schema(engine: AsyncEngine, authors: int = 12) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.execute(Author.__table__.insert(), [{"name": f"a{i}"} for i in range(authors)])
        await conn.execute(
            Book.__table__.insert(),
            [{"title": f"b{i}", "author_id": i % authors + 1} for i in range(authors * 2)],
        )


async def lazy_loop(db: Database) -> int:
    """The N+1: one query for the authors, then one per author for its books."""
    titles = 0
    async with db.session() as session:
        for author in (await session.scalars(select(Author))).all():
            titles += len(await author.awaitable_attrs.books)
    return titles


def make_app(db: Database) -> FastAPI:
    app = FastAPI()

    @app.get("/authors")
    async def authors() -> dict[str, Any]:
        return {"books": await lazy_loop(db)}

    db.hw.install(app)
    return app


HubFactory = Callable[..., Any]


@pytest.fixture
async def make_hub() -> AsyncIterator[HubFactory]:
    hubs: list[Headway] = []

    async def factory(url: str, app: bool = False, **db_settings: Any) -> Any:
        hw = Headway(database_url=url, admin_token=ADMIN)
        db = hw.add(Database(hw, DbSettings(**db_settings)))
        web = make_app(db) if app else None  # before start: install touches hw.observe
        hubs.append(hw)
        await hw.start()
        return (hw, db, web) if app else (hw, db)

    yield factory
    for hw in hubs:
        await hw.stop()
