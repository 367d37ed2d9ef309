"""The reference service's ``/api/v2`` routes: posts and agents, tenant-scoped.

Every query filters on the caller's ``tenant_id``; a row of another tenant is simply not
found (404), never forbidden, so ids of other tenants leak nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.strategy_options import _AbstractLoad
from starlette.requests import Request

from headway.demo.auth import CurrentPrincipal, Principal, ReadSession, Session
from headway.demo.events import PostPublished, PostUpdated, PostViewed
from headway.demo.models import Agent, Post, PostStatus, Subscriber, Tag, Tenant, utcnow
from headway.demo.schemas import (
    AGENT_FIELDS,
    AGENT_INCLUDES,
    POST_FIELDS,
    POST_INCLUDES,
    AgentIn,
    PostIn,
    PostPatch,
    SubscriberIn,
    agent_out,
    clean_text,
    post_out,
)
from headway.hub import from_request
from headway.web import (
    DEFAULT_LIMIT,
    HTTPError,
    check_limit,
    paginate_cursor,
    paginate_offset,
    parse_fields,
    parse_include,
    select_fields,
)

SITEMAP_LIMIT = 50_000  # the sitemap protocol's limit per file

router = APIRouter(prefix="/api/v2")

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int | None, Query(description="Page size, 1-100 (default 20).")]
CursorQ = Annotated[str | None, Query(max_length=1024, description="Opaque cursor from links.")]
PageQ = Annotated[
    int | None, Query(ge=1, le=1_000_000, description="Page number (offset pagination).")
]
FieldsQ = Annotated[str | None, Query(max_length=500, description="Comma-separated fields.")]
IncludeQ = Annotated[str | None, Query(max_length=200, description="Relations to embed.")]

POST_LOADERS: dict[str, Callable[[], _AbstractLoad]] = {
    "author": lambda: selectinload(Post.author),
    "tags": lambda: selectinload(Post.tags),
    "subscribers": lambda: selectinload(Post.subscribers),
}
AGENT_LOADERS: dict[str, Callable[[], _AbstractLoad]] = {
    "owner": lambda: selectinload(Agent.owner),
    "executions": lambda: selectinload(Agent.executions),
}


def _not_found(what: str) -> HTTPError:
    return HTTPError(404, "not_found", f"{what} not found")


def _loaders(
    include: frozenset[str], loaders: dict[str, Callable[[], _AbstractLoad]]
) -> list[_AbstractLoad]:
    return [loaders[name]() for name in sorted(include)]


async def _listing(
    request: Request,
    session: Session,
    stmt: Select[Any],
    *,
    key: Any,
    scope: str,
    limit: int | None,
    cursor: str | None,
    page: int | None,
    render: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """Cursor pagination by default; ``?page=`` switches to page/limit with a total."""
    if page is not None and cursor is not None:
        raise HTTPError(400, "invalid_pagination", "use either cursor or page, not both")
    size = check_limit(limit, DEFAULT_LIMIT)
    if page is not None:
        offset_page = await paginate_offset(session, stmt, key=key, page=page, limit=size)
        last = max(1, -(-offset_page.total // size))
        base = request.url.remove_query_params(["cursor", "page"])
        return {
            "data": [render(item) for item in offset_page.items],
            "links": {
                "next": str(base.include_query_params(page=page + 1)) if page < last else None,
                "prev": str(base.include_query_params(page=page - 1)) if page > 1 else None,
            },
            "meta": {"page": page, "limit": size, "total": offset_page.total, "pages": last},
        }
    codec = from_request(request).cursors
    result = await paginate_cursor(
        session, stmt, key=key, codec=codec, scope=scope, limit=size, cursor=cursor
    )
    return {
        "data": [render(item) for item in result.items],
        "links": result.links(request.url),
        "meta": {
            "limit": size,
            "next_cursor": result.next_cursor,
            "prev_cursor": result.prev_cursor,
        },
    }


# -- tenant -----------------------------------------------------------------------------


@router.get("/me", summary="The calling tenant and its plan")
async def me(principal: CurrentPrincipal, session: Session) -> dict[str, Any]:
    tenant = await session.get(Tenant, principal.tenant_id)
    assert tenant is not None  # the key's foreign key guarantees it
    return {
        "tenant": {"id": tenant.id, "name": tenant.name, "slug": tenant.slug, "plan": tenant.plan},
        "user_id": principal.user_id,
    }


# -- posts ------------------------------------------------------------------------------


async def _tags(session: Session, tenant_id: int, names: Sequence[str]) -> list[Tag]:
    """The tenant's tags with these names, created if missing."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    found = (
        await session.scalars(select(Tag).where(Tag.tenant_id == tenant_id, Tag.name.in_(wanted)))
    ).all()
    by_name = {t.name: t for t in found}
    for name in wanted:
        if name not in by_name:
            by_name[name] = Tag(tenant_id=tenant_id, name=name)
            session.add(by_name[name])
    return [by_name[n] for n in wanted]


async def _get_post(
    session: Session, principal: Principal, post_id: int, include: frozenset[str]
) -> Post:
    stmt = select(Post).where(Post.id == post_id, Post.tenant_id == principal.tenant_id)
    post = (await session.scalars(stmt.options(*_loaders(include, POST_LOADERS)))).one_or_none()
    if post is None:
        raise _not_found("post")
    return post


@router.get("/posts", summary="List posts (cursor or page pagination)")
async def list_posts(
    request: Request,
    principal: CurrentPrincipal,
    session: ReadSession,
    limit: Limit = None,
    cursor: CursorQ = None,
    page: PageQ = None,
    fields: FieldsQ = None,
    include: IncludeQ = None,
    status: PostStatus | None = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
) -> dict[str, Any]:
    chosen = parse_fields(fields, POST_FIELDS)
    embed = parse_include(include, POST_INCLUDES)
    stmt = select(Post).where(Post.tenant_id == principal.tenant_id)
    scope = f"posts:{principal.tenant_id}"
    if status is not None:
        stmt = stmt.where(Post.status == status.value)
        scope += f":s={status.value}"
    if tag is not None:
        try:
            clean_text(tag)
        except ValueError as exc:
            raise HTTPError(400, "invalid_tag", f"tag {exc}") from None
        stmt = stmt.where(Post.tags.any(Tag.name == tag))
        scope += f":t={tag}"
    stmt = stmt.options(*_loaders(embed, POST_LOADERS))
    keep = None if chosen is None else chosen | embed

    async def load() -> dict[str, Any]:
        return await _listing(
            request,
            session,
            stmt,
            key=(Post.created_at, Post.id),
            scope=scope,
            limit=limit,
            cursor=cursor,
            page=page,
            render=lambda p: select_fields(post_out(p, embed), keep),
        )

    # Cached per tenant and URL; any write to a post drops every cached posts answer.
    return await _cached(request, principal, load, tags=["posts"])


@router.post("/posts", status_code=201, summary="Create a post")
async def create_post(
    request: Request, body: PostIn, principal: CurrentPrincipal, session: Session
) -> Any:
    post = Post(
        tenant_id=principal.tenant_id,
        author_id=principal.user_id,
        title=body.title,
        body=body.body,
        status=body.status.value,
        published_at=utcnow() if body.status is PostStatus.published else None,
    )
    post.tags = await _tags(session, principal.tenant_id, body.tags)
    session.add(post)
    await session.flush()
    if body.status is PostStatus.published:
        published = PostPublished(
            tenant_id=principal.tenant_id,
            post_id=post.id,
            title=post.title,
            author_id=post.author_id,
        )
        await from_request(request).events.dispatch(published, session=session)
    await session.commit()
    await _posts_changed(request, principal, post.id)
    post = await _get_post(session, principal, post.id, frozenset({"tags"}))
    return post_out(post, frozenset({"tags"}))


@router.get("/posts/{post_id}", summary="One post")
async def get_post(
    request: Request,
    post_id: Id,
    principal: CurrentPrincipal,
    fields: FieldsQ = None,
    include: IncludeQ = None,
) -> dict[str, Any]:
    chosen = parse_fields(fields, POST_FIELDS)
    embed = parse_include(include, POST_INCLUDES)

    async def load() -> dict[str, Any]:
        # a session only on a miss: a cached answer opens none
        async with from_request(request).db.read_session() as session:
            post = await _get_post(session, principal, post_id, embed)  # 404 is not cached
            out = post_out(post, embed)
        return select_fields(out, None if chosen is None else chosen | embed)

    answer = await _cached(request, principal, load, tags=["posts", f"post:{post_id}"])
    viewed = PostViewed(tenant_id=principal.tenant_id, post_id=post_id)
    await from_request(request).events.dispatch(viewed)  # counted in batches (listeners.py)
    return answer


async def _cached(
    request: Request,
    principal: Principal,
    load: Callable[[], Awaitable[dict[str, Any]]],
    *,
    tags: list[str],
) -> dict[str, Any]:
    """``load()`` through the cache (per tenant and URL) unless the tenant's
    ``enable-caching`` flag is off."""
    hw = from_request(request)
    tenant = str(principal.tenant_id)
    if not await hw.flags.is_enabled("enable-caching", tenant=tenant, default=True):
        return await load()
    return await hw.cache.get_or_set(
        f"api:{request.url}", load, ttl="api", tags=tags, tenant=principal.tenant_id
    )


async def _posts_changed(request: Request, principal: Principal, post_id: int) -> None:
    """After a committed write: drop the tenant's cached post answers."""
    await from_request(request).cache.invalidate_tags(
        "posts", f"post:{post_id}", tenant=principal.tenant_id
    )


@router.patch("/posts/{post_id}", summary="Change a post")
async def update_post(
    request: Request, post_id: Id, body: PostPatch, principal: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    post = await _get_post(session, principal, post_id, frozenset({"tags"}))
    if body.title is not None:
        post.title = body.title
    if body.body is not None:
        post.body = body.body
    newly_published = False
    if body.status is not None:
        if body.status is PostStatus.published and post.published_at is None:
            post.published_at = utcnow()
            newly_published = True
        post.status = body.status.value
    if body.tags is not None:
        post.tags = await _tags(session, principal.tenant_id, body.tags)
    post.updated_at = utcnow()
    events = from_request(request).events
    changed = sorted(body.model_dump(exclude_unset=True))
    await events.dispatch(
        PostUpdated(tenant_id=principal.tenant_id, post_id=post_id, fields=changed),
        session=session,
    )
    if newly_published:
        published = PostPublished(
            tenant_id=principal.tenant_id,
            post_id=post_id,
            title=post.title,
            author_id=post.author_id,
        )
        await events.dispatch(published, session=session)
    await session.commit()
    await _posts_changed(request, principal, post_id)
    post = await _get_post(session, principal, post_id, frozenset({"tags"}))
    return post_out(post, frozenset({"tags"}))


@router.delete("/posts/{post_id}", status_code=204, summary="Delete a post")
async def delete_post(
    request: Request, post_id: Id, principal: CurrentPrincipal, session: Session
) -> Response:
    await _get_post(session, principal, post_id, frozenset())
    # A core DELETE: the database's ON DELETE CASCADE removes tags links and subscribers.
    await session.execute(
        delete(Post).where(Post.id == post_id, Post.tenant_id == principal.tenant_id)
    )
    await session.commit()
    await _posts_changed(request, principal, post_id)
    return Response(status_code=204)


@router.get("/sitemap", summary="The tenant's published posts (for a sitemap)")
async def sitemap(
    request: Request, principal: CurrentPrincipal, session: ReadSession
) -> dict[str, Any]:
    async def load() -> dict[str, Any]:
        rows = await session.execute(
            select(Post.id, Post.title, Post.updated_at)
            .where(Post.tenant_id == principal.tenant_id, Post.status == "published")
            .order_by(Post.id)
            .limit(SITEMAP_LIMIT)
        )
        return {
            "data": [
                {"id": i, "title": t, "url": f"/api/v2/posts/{i}", "updated_at": u.isoformat()}
                for i, t, u in rows
            ]
        }

    # dropped by the PostPublished / PostUpdated listener (listeners.py)
    return await _cached(request, principal, load, tags=["sitemap"])


@router.post("/posts/{post_id}/subscribers", status_code=201, summary="Subscribe to a post")
async def subscribe(
    request: Request,
    post_id: Id,
    body: SubscriberIn,
    principal: CurrentPrincipal,
    session: Session,
) -> dict[str, Any]:
    await _get_post(session, principal, post_id, frozenset())
    exists = await session.scalar(
        select(func.count())
        .select_from(Subscriber)
        .where(Subscriber.post_id == post_id, Subscriber.email == body.email)
    )
    if exists:
        raise HTTPError(409, "conflict", "already subscribed")
    sub = Subscriber(tenant_id=principal.tenant_id, post_id=post_id, email=body.email)
    session.add(sub)
    await session.commit()
    await _posts_changed(request, principal, post_id)
    return {"id": sub.id, "post_id": post_id, "email": sub.email}


# -- agents -----------------------------------------------------------------------------


async def _get_agent(
    session: Session, principal: Principal, agent_id: int, include: frozenset[str]
) -> Agent:
    stmt = select(Agent).where(Agent.id == agent_id, Agent.tenant_id == principal.tenant_id)
    agent = (await session.scalars(stmt.options(*_loaders(include, AGENT_LOADERS)))).one_or_none()
    if agent is None:
        raise _not_found("agent")
    return agent


@router.get("/agents", summary="List agents (cursor or page pagination)")
async def list_agents(
    request: Request,
    principal: CurrentPrincipal,
    session: ReadSession,
    limit: Limit = None,
    cursor: CursorQ = None,
    page: PageQ = None,
    fields: FieldsQ = None,
    include: IncludeQ = None,
) -> dict[str, Any]:
    chosen = parse_fields(fields, AGENT_FIELDS)
    embed = parse_include(include, AGENT_INCLUDES)
    stmt = select(Agent).where(Agent.tenant_id == principal.tenant_id)
    keep = None if chosen is None else chosen | embed
    return await _listing(
        request,
        session,
        stmt.options(*_loaders(embed, AGENT_LOADERS)),
        key=(Agent.created_at, Agent.id),
        scope=f"agents:{principal.tenant_id}",
        limit=limit,
        cursor=cursor,
        page=page,
        render=lambda a: select_fields(agent_out(a, embed), keep),
    )


@router.post("/agents", status_code=201, summary="Create an agent")
async def create_agent(
    body: AgentIn, principal: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    agent = Agent(
        tenant_id=principal.tenant_id,
        owner_id=principal.user_id,
        name=body.name,
        description=body.description,
        model=body.model,
        system_prompt=body.system_prompt,
    )
    session.add(agent)
    await session.commit()
    return agent_out(agent, frozenset())


@router.get("/agents/{agent_id}", summary="One agent")
async def get_agent(
    agent_id: Id,
    principal: CurrentPrincipal,
    session: ReadSession,
    fields: FieldsQ = None,
    include: IncludeQ = None,
) -> dict[str, Any]:
    chosen = parse_fields(fields, AGENT_FIELDS)
    embed = parse_include(include, AGENT_INCLUDES)
    agent = await _get_agent(session, principal, agent_id, embed)
    return select_fields(agent_out(agent, embed), None if chosen is None else chosen | embed)
