"""SQLAlchemy 2 helpers: cached rows, collections and queries, invalidated on commit.

::

    hw.cache.orm.watch(Session)       # once: track ORM writes of every session
    post = await hw.cache.orm.find_cached(session, Post, 7, tenant=3)
    posts = await hw.cache.orm.all_cached(session, Post, tenant=3, tenant_id=3)
    rows = await hw.cache.orm.query_cached(session, stmt, key="top-posts", tenant=3)

Rows are cached as their column values (JSON) and come back as instances attached to
the session (``merge(load=False)``: no query). Tags: a row ``orm:<table>:<pk>``, a
collection or query ``orm:<table>`` for every table it reads. After a commit, every
inserted, updated or deleted instance invalidates its row tag and its table tag, in the
tenant named by its ``tenant_id`` attribute; after a rollback, nothing happens. Core
statements (``session.execute(delete(...))``) are not seen: call :meth:`invalidate`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, Table, event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from headway.cache.codec import dumps

if TYPE_CHECKING:
    from headway.cache.core import TTL, Cache
    from headway.cache.keys import Tenant

M = TypeVar("M")
INFO_KEY = "headway.cache.changed"
Change = tuple[Any, str, str]  # (tenant, table, identity)


def table_tag(table: str) -> str:
    return f"orm:{table}"


def row_tag(table: str, ident: str) -> str:
    return f"orm:{table}:{ident}"


def _ident(values: Sequence[Any] | Any) -> str:
    if isinstance(values, tuple | list):
        return ":".join(str(v) for v in values)
    return str(values)


class OrmCache:
    def __init__(self, cache: Cache, tenant_attr: str = "tenant_id") -> None:
        self.cache = cache
        self.tenant_attr = tenant_attr
        self._watched: list[Any] = []

    # -- reads --------------------------------------------------------------------------

    async def find_cached(
        self,
        session: AsyncSession,
        model: type[M],
        ident: Any,
        *,
        tenant: Tenant = None,
        ttl: TTL = "row",
    ) -> M | None:
        """``session.get(model, ident)`` through the cache (default TTL: preset ``row``)."""
        table = _table(model)
        key = row_tag(table, _ident(ident))

        async def load() -> dict[str, Any] | None:
            obj = await session.get(model, ident)
            return None if obj is None else _columns(obj)

        data = await self.cache.get_or_set(key, load, ttl=ttl, tags=[key], tenant=tenant)
        return None if data is None else await _attach(session, model, data)

    async def all_cached(
        self,
        session: AsyncSession,
        model: type[M],
        *,
        tenant: Tenant = None,
        ttl: TTL = "collection",
        order_by: Sequence[Any] = (),
        limit: int | None = None,
        **filters: Any,
    ) -> list[M]:
        """Every row of ``model`` matching ``filters`` (``filter_by``), through the cache."""
        stmt = select(model).filter_by(**filters).order_by(*order_by).limit(limit)
        shape = dumps([sorted(filters.items()), [str(o) for o in order_by], limit])
        key = f"orm:{_table(model)}:all:{hashlib.sha256(shape).hexdigest()[:24]}"
        return await self.query_cached(session, stmt, key=key, ttl=ttl, tenant=tenant)

    async def query_cached(
        self,
        session: AsyncSession,
        stmt: Select[Any],
        *,
        key: str,
        tags: Sequence[str] = (),
        ttl: TTL = "collection",
        tenant: Tenant = None,
    ) -> list[Any]:
        """The rows of ``stmt``: instances when it selects one entity, else dicts.

        Tagged with ``orm:<table>`` for every table the statement reads, plus ``tags``.
        """
        model = _single_entity(stmt)
        all_tags = [*{table_tag(t) for t in _tables(stmt)}, *tags]

        async def load() -> list[dict[str, Any]]:
            result = await session.execute(stmt)
            if model is not None:
                return [_columns(obj) for obj in result.scalars().all()]
            return [{str(k): v for k, v in row._mapping.items()} for row in result]

        rows = await self.cache.get_or_set(key, load, ttl=ttl, tags=all_tags, tenant=tenant)
        if model is None:
            return list(rows)
        return [await _attach(session, model, row) for row in rows]

    # -- invalidation -------------------------------------------------------------------

    async def invalidate(
        self, model: type[Any], ident: Any = None, *, tenant: Tenant = None
    ) -> int:
        """Drop a row (and its table's collections), or every collection of a table."""
        table = _table(model)
        tags = [table_tag(table)]
        if ident is not None:
            tags.append(row_tag(table, _ident(ident)))
        return await self.cache.invalidate_tags(*tags, tenant=tenant)

    def watch(self, target: Any = Session) -> None:
        """Invalidate after commit for every session of ``target`` (default: all)."""
        target = _sync_target(target)
        if any(t is target for t in self._watched):
            return
        self._watched.append(target)
        event.listen(target, "after_flush", self._after_flush)
        event.listen(target, "after_commit", self._after_commit)
        event.listen(target, "after_rollback", self._after_rollback)

    def unwatch(self) -> None:
        for target in self._watched:
            event.remove(target, "after_flush", self._after_flush)
            event.remove(target, "after_commit", self._after_commit)
            event.remove(target, "after_rollback", self._after_rollback)
        self._watched.clear()

    def _after_flush(self, session: Session, flush_context: Any) -> None:
        changed: set[Change] = session.info.setdefault(INFO_KEY, set())
        for obj in (*session.new, *session.dirty, *session.deleted):
            state = inspect(obj)
            if state.identity is None or not hasattr(type(obj), "__table__"):
                continue
            tenant = state.dict.get(self.tenant_attr)
            changed.add((tenant, _table(type(obj)), _ident(state.identity)))

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(INFO_KEY, None)

    def _after_commit(self, session: Session) -> None:
        changed: set[Change] = session.info.pop(INFO_KEY, set())
        if not changed:
            return
        by_tenant: dict[Any, set[str]] = {}
        for tenant, table, ident in changed:
            by_tenant.setdefault(tenant, set()).update({table_tag(table), row_tag(table, ident)})
        for tenant, tags in by_tenant.items():
            self.cache.after_commit(sorted(tags), tenant)


# -- helpers ----------------------------------------------------------------------------


def _sync_target(target: Any) -> Any:
    if isinstance(target, AsyncSession):
        return target.sync_session
    if isinstance(target, async_sessionmaker):
        return target.kw.get("sync_session_class", Session)
    return target


def _table(model: type[Any]) -> str:
    table = getattr(model, "__table__", None)
    if not isinstance(table, Table):
        raise TypeError(f"{model!r} is not a mapped class with a table")
    return table.name


def _tables(stmt: Select[Any]) -> set[str]:
    names: set[str] = set()
    for from_ in stmt.get_final_froms():
        for table in _walk_tables(from_):
            names.add(table.name)
    return names


def _walk_tables(from_: Any) -> list[Table]:
    if isinstance(from_, Table):
        return [from_]
    found: list[Table] = []
    for attr in ("left", "right", "element", "original"):
        child = getattr(from_, attr, None)
        if child is not None and child is not from_:
            found.extend(_walk_tables(child))
    return found


def _single_entity(stmt: Select[Any]) -> type[Any] | None:
    descriptions = stmt.column_descriptions
    if len(descriptions) != 1:
        return None
    entity = descriptions[0].get("entity")
    expr = descriptions[0].get("expr")
    return entity if entity is not None and expr is entity else None


def _columns(obj: Any) -> dict[str, Any]:
    mapper: Mapper[Any] = inspect(type(obj))
    state = inspect(obj)
    return {attr.key: state.dict.get(attr.key) for attr in mapper.column_attrs}


async def _attach(session: AsyncSession, model: type[M], data: dict[str, Any]) -> M:
    """A persistent instance from cached column values, without a query."""
    mapper: Mapper[Any] = inspect(model)
    obj = mapper.class_manager.new_instance()
    for attr in mapper.column_attrs:
        if attr.key in data:
            column = attr.columns[0]
            set_committed_value(obj, attr.key, _restore(column.type, data[attr.key]))
    make_transient_to_detached(obj)
    merged: M = await session.merge(obj, load=False)
    return merged


def _restore(sql_type: Any, value: Any) -> Any:
    """Turn a JSON value back into the column's Python type."""
    if value is None:
        return None
    try:
        python_type = sql_type.python_type
    except NotImplementedError:
        return value
    if isinstance(value, python_type):
        return value
    if python_type is dt.datetime:
        return dt.datetime.fromisoformat(value)
    if python_type is dt.date:
        return dt.date.fromisoformat(value)
    if python_type is dt.time:
        return dt.time.fromisoformat(value)
    if python_type in (decimal.Decimal, uuid.UUID, float) or issubclass(python_type, enum.Enum):
        return python_type(value)
    return value


__all__ = ["OrmCache", "row_tag", "table_tag"]
