"""What the reference service does when its domain events happen (``hw.events`` listeners).

- AgentExecutionCompleted: the tenant's webhooks (``execution.completed``) and the agent's
  owner (notification), as one queued job with retries.
- AgentExecutionFailed: the same with ``execution.failed``, to the user who ran it and the
  tenant's supervisors (roles owner, admin, supervisor).
- WorkflowCompleted / WorkflowFailed: webhooks and the user who started the run.
- ApprovalRequested: a notification to every approver, on a high-priority job (realtime
  clients of ``user.{id}`` already got the event itself).
- PostPublished: a notification to each of the post's subscribers, and the sitemap and post
  caches dropped. PostUpdated: the caches dropped.
- PostViewed: views are added up in memory and written in batches
  (``view_count = view_count + n``) by :class:`ViewCounter`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select, update

from headway import Headway
from headway.demo.db import sessionmaker
from headway.demo.events import (
    AgentExecutionCompleted,
    AgentExecutionFailed,
    ApprovalRequested,
    PostPublished,
    PostUpdated,
    PostViewed,
    WorkflowCompleted,
    WorkflowFailed,
)
from headway.demo.models import Agent, Post, Subscriber, User
from headway.demo.webhooks import announce_execution
from headway.notify import Recipient

log = logging.getLogger("headway.demo")

SUPERVISOR_ROLES = ("owner", "admin", "supervisor")
VIEW_FLUSH_SECONDS = 2.0
LISTENER_QUEUE = "default"
PRIORITY_QUEUE = "high"


async def _supervisors(hub: Headway, tenant_id: int) -> list[int]:
    async with sessionmaker(hub.connections.engine())() as session:
        rows = await session.scalars(
            select(User.id).where(User.tenant_id == tenant_id, User.role.in_(SUPERVISOR_ROLES))
        )
        return list(rows)


async def _agent_name(hub: Headway, agent_id: int) -> str:
    async with sessionmaker(hub.connections.engine())() as session:
        name = await session.scalar(select(Agent.name).where(Agent.id == agent_id))
    return name or "agent"


def _execution_listeners(hub: Headway) -> None:
    @hub.events.listener(AgentExecutionCompleted, queued=True, queue=LISTENER_QUEUE)
    async def execution_completed(event: AgentExecutionCompleted) -> None:
        users = [u for u in (event.owner_id,) if u is not None]
        await announce_execution(
            hub,
            tenant_id=event.tenant_id,
            execution_id=event.execution_id,
            agent_id=event.agent_id,
            agent_name=await _agent_name(hub, event.agent_id),
            status="completed",
            users=users,
            output=event.output,
        )

    @hub.events.listener(AgentExecutionFailed, queued=True, queue=LISTENER_QUEUE)
    async def execution_failed(event: AgentExecutionFailed) -> None:
        users = [u for u in (event.user_id, event.owner_id) if u is not None]
        users += await _supervisors(hub, event.tenant_id)
        await announce_execution(
            hub,
            tenant_id=event.tenant_id,
            execution_id=event.execution_id,
            agent_id=event.agent_id,
            agent_name=await _agent_name(hub, event.agent_id),
            status="failed",
            users=users,
            error=event.error,
        )


def _workflow_listeners(hub: Headway) -> None:
    @hub.events.listener(WorkflowCompleted, WorkflowFailed, queued=True, queue=LISTENER_QUEUE)
    async def workflow_finished(event: WorkflowCompleted | WorkflowFailed) -> None:
        status = "completed" if isinstance(event, WorkflowCompleted) else "failed"
        tenant = str(event.tenant_id)
        payload = {"run_id": event.run_id, "workflow": event.workflow, "status": status}
        await hub.webhooks.send(
            tenant, f"workflow.{status}", payload, message_id=f"msg_workflow_{event.run_id}"
        )
        if event.user_id is not None:
            await hub.notify.send(
                user=event.user_id, tenant=tenant, event=f"workflow.{status}", context=payload
            )

    @hub.events.listener(ApprovalRequested, queued=True, queue=PRIORITY_QUEUE)
    async def approval_requested(event: ApprovalRequested) -> None:
        context = {"run_id": event.run_id, "approval_id": event.approval_id, "step": event.step}
        for user in dict.fromkeys(event.approver_ids):
            await hub.notify.send(
                user=user, tenant=event.tenant_id, event="approval.requested", context=context
            )


def _post_listeners(hub: Headway, views: ViewCounter) -> None:
    @hub.events.listener(PostPublished, queued=True, queue=LISTENER_QUEUE)
    async def notify_subscribers(event: PostPublished) -> None:
        async with sessionmaker(hub.connections.engine())() as session:
            rows = await session.scalars(
                select(Subscriber).where(
                    Subscriber.post_id == event.post_id, Subscriber.tenant_id == event.tenant_id
                )
            )
            subscribers = [(s.id, s.email) for s in rows]
        context = {"post_id": event.post_id, "title": event.title, "message": event.title}
        for sub_id, email in subscribers:
            await hub.notify.send(
                user=Recipient(f"subscriber-{sub_id}", email=email),
                tenant=event.tenant_id,
                event="post.published",
                context=context,
                channels=["email"],
            )

    @hub.events.listener(PostPublished, PostUpdated)
    async def clear_post_caches(event: PostPublished | PostUpdated) -> None:
        # the sitemap lists published posts; the post's own answers change too
        await hub.cache.invalidate_tags(
            "sitemap", "posts", f"post:{event.post_id}", tenant=event.tenant_id
        )

    @hub.events.listener(PostViewed)
    def count_view(event: PostViewed) -> None:
        views.add(event.tenant_id, event.post_id)


class ViewCounter:
    """Post views added up in memory and written every ``interval`` seconds in one batch.

    A process that dies loses at most one interval of views (counts, not data anyone
    relies on); writes are ``view_count = view_count + n`` so processes never overwrite
    each other.
    """

    def __init__(self, hub: Headway, interval: float = VIEW_FLUSH_SECONDS) -> None:
        self.hub = hub
        self.interval = interval
        self.pending: Counter[tuple[int, int]] = Counter()

    def add(self, tenant_id: int, post_id: int) -> None:
        self.pending[(tenant_id, post_id)] += 1

    async def flush(self) -> int:
        batch, self.pending = self.pending, Counter()
        if not batch:
            return 0
        try:
            async with sessionmaker(self.hub.connections.engine())() as session:
                for (tenant_id, post_id), n in sorted(batch.items()):
                    await session.execute(
                        update(Post)
                        .where(Post.id == post_id, Post.tenant_id == tenant_id)
                        .values(view_count=Post.view_count + n)
                    )
                await session.commit()
        except BaseException:
            self.pending.update(batch)  # nothing written: try these again next time
            raise
        return sum(batch.values())

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._loop(), name="headway-demo-views")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:
                log.exception("could not write post view counts; retrying next interval")


def install_listeners(hub: Headway) -> ViewCounter:
    """Register every listener of the reference service; returns the view counter."""
    views = ViewCounter(hub)
    _execution_listeners(hub)
    _workflow_listeners(hub)
    _post_listeners(hub, views)
    return views
