from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import DateTime, ForeignKey, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship
from starlette.datastructures import URL, QueryParams

from headway.web import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    CursorCodec,
    CursorPage,
    HTTPError,
    check_limit,
    error_body,
    install_error_handlers,
    paginate_cursor,
    paginate_offset,
)
from headway.web.pagination import _b64decode, _b64encode, _dump_value, _load_value


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime())
    notes: Mapped[list[Note]] = relationship()


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))


KEY = (Item.created_at, Item.id)
T0 = datetime(2024, 5, 1, 12, 0, 0)
N_ROWS = 23


@pytest.fixture
async def session() -> AsyncIterator[AsyncSession]:
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    ids = list(range(1, N_ROWS + 1))
    random.Random(7).shuffle(ids)  # ids not in time order: created_at must sort first
    async with maker() as s:
        for n, id_ in enumerate(ids):
            # groups of 4 rows share one created_at: the id breaks the ties
            s.add(Item(id=id_, tenant="a", created_at=T0 + timedelta(minutes=n // 4)))
            s.add_all(Note(item_id=id_) for _ in range(id_ % 3))
        for n in range(5):
            s.add(Item(id=100 + n, tenant="b", created_at=T0 + timedelta(minutes=n)))
        await s.commit()
        yield s
    await engine.dispose()


async def expected_ids(session: AsyncSession) -> list[int]:
    rows = (await session.scalars(select(Item).where(Item.tenant == "a"))).all()
    return [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]


CODEC = CursorCodec("test-secret")
STMT = select(Item).where(Item.tenant == "a")


async def page(session: AsyncSession, cursor: str | None, limit: int) -> CursorPage[Item]:
    return await paginate_cursor(
        session, STMT, key=KEY, codec=CODEC, scope="t:a:items", limit=limit, cursor=cursor
    )


def ids(p: CursorPage[Item]) -> list[int]:
    return [item.id for item in p.items]


@pytest.mark.parametrize("limit", [1, 3, 4, 5, 22, 23, 100])
async def test_cursor_walk_forward_then_back(session: AsyncSession, limit: int) -> None:
    expected = await expected_ids(session)
    assert len(expected) == N_ROWS and len({i for i in expected}) == N_ROWS

    forward = [await page(session, None, limit)]
    assert forward[0].prev_cursor is None
    while forward[-1].next_cursor is not None:
        assert len(forward) <= N_ROWS, "pagination does not end"
        forward.append(await page(session, forward[-1].next_cursor, limit))
        assert forward[-1].prev_cursor is not None
    assert [i for p in forward for i in ids(p)] == expected
    assert all(len(p.items) == limit for p in forward[:-1])
    assert all(p.items for p in forward)

    backward = [forward[-1]]
    while backward[-1].prev_cursor is not None:
        assert len(backward) <= N_ROWS, "pagination does not end"
        previous = await page(session, backward[-1].prev_cursor, limit)
        assert previous.next_cursor is not None
        backward.append(previous)
    assert [ids(p) for p in reversed(backward)] == [ids(p) for p in forward]

    # from a page reached backwards, "next" leads forward again
    if len(backward) > 1:
        again = await page(session, backward[-1].next_cursor, limit)
        assert ids(again) == ids(forward[1])


async def test_cursor_pages_never_leave_the_filtered_statement(session: AsyncSession) -> None:
    seen: list[int] = []
    p = await page(session, None, 7)
    seen += ids(p)
    while p.next_cursor:
        assert len(seen) <= N_ROWS, "pagination does not end"
        p = await page(session, p.next_cursor, 7)
        seen += ids(p)
    assert not {i for i in seen if i >= 100}


async def test_loader_options_are_kept_and_limit_counts_entities(session: AsyncSession) -> None:
    stmt = select(Item).where(Item.tenant == "a").options(joinedload(Item.notes))
    seen: list[Item] = []
    cursor: str | None = None
    for _ in range(N_ROWS):
        p = await paginate_cursor(
            session, stmt, key=KEY, codec=CODEC, scope="s", limit=4, cursor=cursor
        )
        assert len(p.items) == 4 or p.next_cursor is None
        seen += p.items
        if (cursor := p.next_cursor) is None:
            break
    assert [i.id for i in seen] == await expected_ids(session)
    assert all(len(i.notes) == i.id % 3 for i in seen)  # loaded eagerly: no lazy load in async


async def test_empty_page_after_deletes_still_links_back(session: AsyncSession) -> None:
    first = await page(session, None, 5)
    assert first.next_cursor is not None
    oldest_kept = first.items[-1]
    await session.execute(delete(Item).where(Item.tenant == "a", Item.id.not_in(ids(first))))
    await session.commit()
    assert oldest_kept.id in ids(first)

    empty = await page(session, first.next_cursor, 5)
    assert empty.items == [] and empty.next_cursor is None
    assert empty.prev_cursor is not None
    back = await page(session, empty.prev_cursor, 5)
    assert ids(back) == ids(first)
    assert back.prev_cursor is None


async def test_cursor_from_another_scope_is_refused(session: AsyncSession) -> None:
    first = await page(session, None, 5)
    with pytest.raises(HTTPError) as info:
        await paginate_cursor(
            session,
            select(Item).where(Item.tenant == "b"),
            key=KEY,
            codec=CODEC,
            scope="t:b:items",
            limit=5,
            cursor=first.next_cursor,
        )
    assert (info.value.status, info.value.code) == (400, "invalid_cursor")


def tamper(token: str) -> str:
    body, _, sig = token.partition(".")
    payload = orjson.loads(_b64decode(body))
    payload["k"][1][1] += 1
    return f"{_b64encode(orjson.dumps(payload))}.{sig}"


def test_codec_round_trip_and_format() -> None:
    token = CODEC.encode({"a": 1, "b": "x"})
    body, dot, sig = token.partition(".")
    assert dot and "=" not in token and "+" not in token and "/" not in token
    assert orjson.loads(_b64decode(body)) == {"a": 1, "b": "x"}
    assert len(_b64decode(sig)) == 16
    assert CODEC.decode(token) == {"a": 1, "b": "x"}
    assert CursorCodec(b"test-secret").decode(token) == {"a": 1, "b": "x"}


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "abc.",
        ".abc",
        "a.b.c",
        "é.é",
    ],
)
def test_codec_rejects_malformed(bad: str) -> None:
    with pytest.raises(HTTPError) as info:
        CODEC.decode(bad)
    assert (info.value.status, info.value.code) == (400, "invalid_cursor")


def test_codec_rejects_long_cursors_even_when_signed() -> None:
    short = CODEC.encode({"pad": "x" * 500})
    long = CODEC.encode({"pad": "x" * 800})
    assert len(short) <= 1024 < len(long)
    assert CODEC.decode(short) == {"pad": "x" * 500}
    with pytest.raises(HTTPError) as info:
        CODEC.decode(long)
    assert info.value.code == "invalid_cursor" and "too long" in info.value.message


def test_codec_rejects_tampering_other_secret_and_non_dict() -> None:
    token = CODEC.encode({"s": "x", "d": "n", "k": [["v", 1], ["v", 2]]})
    body, _, sig = token.partition(".")
    forged = _b64encode(orjson.dumps({"s": "x", "d": "n", "k": [["v", 9], ["v", 2]]}))
    flipped_sig = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    not_a_dict = _b64encode(orjson.dumps([1, 2]))
    candidates = [
        f"{forged}.{sig}",
        f"{body}.{flipped_sig}",
        CursorCodec("other-secret").encode({"s": "x"}),
        f"{not_a_dict}.{CODEC._sign(not_a_dict)}",
    ]
    for bad in candidates:
        with pytest.raises(HTTPError) as info:
            CODEC.decode(bad)
        assert info.value.code == "invalid_cursor", bad


def test_codec_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        CursorCodec("")


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 1, 2, 3, 4, 5, 678),
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        7,
        "2024-01-02T03:04:05",
        "plain",
        1.5,
    ],
)
def test_key_values_round_trip_with_their_type(value: object) -> None:
    back = _load_value(orjson.loads(orjson.dumps(_dump_value(value))))
    assert back == value and type(back) is type(value)
    if isinstance(value, datetime):
        assert isinstance(back, datetime) and back.tzinfo == value.tzinfo


def test_check_limit() -> None:
    assert check_limit(None) == DEFAULT_LIMIT
    assert check_limit(None, default=7) == 7
    assert check_limit(1) == 1 and check_limit(MAX_LIMIT) == MAX_LIMIT
    for bad in (0, -1, MAX_LIMIT + 1):
        with pytest.raises(HTTPError) as info:
            check_limit(bad)
        assert (info.value.status, info.value.code) == (400, "invalid_limit")
        assert str(MAX_LIMIT) in info.value.message


def test_links_keep_params_and_drop_page() -> None:
    p: CursorPage[int] = CursorPage(items=[1], next_cursor="NEXT", prev_cursor=None, limit=5)
    links = p.links(URL("http://t/v1/items?limit=5&page=2&q=hello+world&cursor=OLD"))
    assert links["prev"] is None
    assert links["next"] is not None
    next_url = URL(links["next"])
    assert next_url.path == "/v1/items"
    assert dict(QueryParams(next_url.query)) == {"limit": "5", "q": "hello world", "cursor": "NEXT"}


async def test_offset_pagination(session: AsyncSession) -> None:
    expected = await expected_ids(session)
    got: list[int] = []
    for number in range(1, 6):
        p = await paginate_offset(session, STMT, key=KEY, page=number, limit=5)
        assert (p.total, p.page, p.limit) == (N_ROWS, number, 5)
        got += [item.id for item in p.items]
    assert got == expected
    beyond = await paginate_offset(session, STMT, key=KEY, page=6, limit=5)
    assert beyond.items == [] and beyond.total == N_ROWS
    huge = await paginate_offset(session, STMT, key=KEY, page=10**30, limit=5)
    assert huge.items == [] and huge.total == N_ROWS


async def test_offset_total_ignores_existing_order(session: AsyncSession) -> None:
    p = await paginate_offset(session, STMT.order_by(Item.id), key=KEY, page=1, limit=3)
    assert p.total == N_ROWS
    assert [i.id for i in p.items] == (await expected_ids(session))[:3]


@pytest.mark.parametrize("bad_page", [0, -3])
async def test_offset_rejects_bad_page(session: AsyncSession, bad_page: int) -> None:
    with pytest.raises(HTTPError) as info:
        await paginate_offset(session, STMT, key=KEY, page=bad_page, limit=5)
    assert (info.value.status, info.value.code) == (400, "invalid_page")


# --- through an HTTP endpoint ---------------------------------------------------------------


def make_app(session: AsyncSession) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/t/{tenant}/items")
    async def list_items(
        tenant: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, object]:
        result = await paginate_cursor(
            session,
            select(Item).where(Item.tenant == tenant),
            key=KEY,
            codec=CODEC,
            scope=f"t:{tenant}:items",
            limit=check_limit(limit),
            cursor=cursor,
        )
        return {"ids": [i.id for i in result.items], "next": result.next_cursor}

    return app


async def http_client(session: AsyncSession) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=make_app(session))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_http_tampered_cursor_is_400(session: AsyncSession) -> None:
    async with await http_client(session) as c:
        first = (await c.get("/t/a/items", params={"limit": 5})).json()
        r = await c.get("/t/a/items", params={"cursor": tamper(first["next"])})
        ok = await c.get("/t/a/items", params={"cursor": first["next"], "limit": 5})
    assert ok.status_code == 200 and len(ok.json()["ids"]) == 5
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_cursor"
    assert set(r.json()["error"]) == {"code", "message", "details"}


async def test_http_cursor_of_another_tenant_is_400(session: AsyncSession) -> None:
    async with await http_client(session) as c:
        first = (await c.get("/t/a/items", params={"limit": 2})).json()
        r = await c.get("/t/b/items", params={"cursor": first["next"]})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_cursor"


async def test_http_limit_101_is_400(session: AsyncSession) -> None:
    async with await http_client(session) as c:
        r = await c.get("/t/a/items", params={"limit": 101})
    assert r.status_code == 400
    assert r.json() == error_body(
        "invalid_limit", "limit must be between 1 and 100", {"min": 1, "max": 100, "got": 101}
    )
