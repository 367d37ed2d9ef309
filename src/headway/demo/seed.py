"""Sample data: two tenants on different plans, with users, agents, posts and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from headway.demo.auth import hash_key, new_key
from headway.demo.db import migrate, sessionmaker
from headway.demo.models import (
    Agent,
    ApiKey,
    Execution,
    Plan,
    Post,
    PostStatus,
    Subscriber,
    Tag,
    Tenant,
    User,
    utcnow,
)

DEMO_TENANTS = (
    ("acme", "Acme Robotics", Plan.professional, 60),
    ("globex", "Globex Corporation", Plan.free, 25),
)
TAGS = ("ai", "agents", "release", "howto", "ops")


@dataclass(frozen=True, slots=True)
class SeededKey:
    tenant: str
    plan: str
    key: str


async def _new_api_key(session: AsyncSession, tenant: Tenant, user: User | None) -> str:
    key = new_key()
    session.add(
        ApiKey(
            tenant_id=tenant.id,
            user_id=None if user is None else user.id,
            name="demo key",
            prefix=key[:10],
            key_hash=hash_key(key),
        )
    )
    return key


def _posts(tenant: Tenant, author: User, tags: list[Tag], count: int) -> list[Post]:
    start = utcnow() - timedelta(days=count)
    posts = []
    for i in range(count):
        published = i % 4 != 3
        post = Post(
            tenant_id=tenant.id,
            author_id=author.id,
            title=f"{tenant.name} post #{i + 1}",
            body=f"Notes number {i + 1} from {tenant.name}. " * 8,
            status=(PostStatus.published if published else PostStatus.draft).value,
            published_at=start + timedelta(days=i) if published else None,
            view_count=(i * 37) % 500,
            created_at=start + timedelta(days=i),
            updated_at=start + timedelta(days=i),
        )
        post.tags = [tags[i % len(tags)], tags[(i + 2) % len(tags)]]
        post.subscribers = [
            Subscriber(tenant_id=tenant.id, email=f"reader{j}@example.com") for j in range(i % 3)
        ]
        posts.append(post)
    return posts


async def seed(engine: AsyncEngine) -> list[SeededKey]:
    """Create the demo tenants if absent, and a new API key for each (printed once)."""
    keys: list[SeededKey] = []
    async with sessionmaker(engine)() as session:
        for slug, name, plan, post_count in DEMO_TENANTS:
            tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
            owner: User | None
            if tenant is None:
                tenant = Tenant(slug=slug, name=name, plan=plan.value)
                session.add(tenant)
                await session.flush()
                owner = User(
                    tenant_id=tenant.id, email=f"owner@{slug}.test", name="Owner", role="owner"
                )
                member = User(tenant_id=tenant.id, email=f"dev@{slug}.test", name="Developer")
                session.add_all([owner, member])
                await session.flush()
                tags = [Tag(tenant_id=tenant.id, name=t) for t in TAGS]
                session.add_all(tags)
                session.add_all(_posts(tenant, owner, tags, post_count))
                for n in range(3):
                    agent = Agent(
                        tenant_id=tenant.id,
                        owner_id=owner.id,
                        name=f"{name} agent {n + 1}",
                        description="A demo agent",
                        system_prompt="You are a helpful assistant.",
                    )
                    agent.executions = [
                        Execution(
                            tenant_id=tenant.id,
                            status="completed",
                            input={"prompt": "hi"},
                            output={"text": "hello"},
                            progress=100,
                            attempts=1,
                        )
                    ]
                    session.add(agent)
            else:
                owner = await session.scalar(
                    select(User).where(User.tenant_id == tenant.id, User.role == "owner")
                )
            keys.append(SeededKey(slug, tenant.plan, await _new_api_key(session, tenant, owner)))
        await session.commit()
    return keys


async def prepare(engine: AsyncEngine, *, seed_if_empty: bool) -> list[SeededKey]:
    """Migrate to head; seed when asked and the database has no tenant yet."""
    await migrate(engine)
    if not seed_if_empty:
        return []
    async with sessionmaker(engine)() as session:
        tenants = await session.scalar(select(func.count()).select_from(Tenant))
    return await seed(engine) if tenants == 0 else []
