"""The reference service's domain events and the realtime channels they reach.

Channels: ``tenant.{tenant_id}`` (everyone of the tenant), ``user.{user_id}`` (one user),
and one per resource: ``agent.{id}``, ``execution.{id}``, ``post.{id}``,
``workflow.{run_id}``. Who may join which is decided by :mod:`headway.demo.realtime`.

=======================  ==============================================================
event                    broadcast to
=======================  ==============================================================
AgentExecutionCompleted  tenant, agent, execution, the user who ran it
AgentExecutionFailed     tenant, agent, execution, the user who ran it
WorkflowCompleted        tenant, workflow run, the user who started it
WorkflowFailed           tenant, workflow run, the user who started it
ApprovalRequested        tenant, workflow run, each approver (``user.{id}``)
PostPublished            tenant, post
PostUpdated              post
PostViewed               nothing (high volume: listeners count views in batches)
=======================  ==============================================================
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from headway.events import Event


def _user(user_id: int | None) -> list[str]:
    return [] if user_id is None else [f"user.{user_id}"]


class AgentExecutionCompleted(Event):
    tenant_id: int
    agent_id: int
    execution_id: int
    user_id: int | None = None
    owner_id: int | None = None  # the agent's owner (notified by listeners)
    output: dict[str, Any] = Field(default_factory=dict)

    def channels(self) -> list[str]:
        return [
            f"tenant.{self.tenant_id}",
            f"agent.{self.agent_id}",
            f"execution.{self.execution_id}",
            *_user(self.user_id),
        ]


class AgentExecutionFailed(Event):
    tenant_id: int
    agent_id: int
    execution_id: int
    user_id: int | None = None
    owner_id: int | None = None
    error: str = Field("", max_length=2000)

    def channels(self) -> list[str]:
        return [
            f"tenant.{self.tenant_id}",
            f"agent.{self.agent_id}",
            f"execution.{self.execution_id}",
            *_user(self.user_id),
        ]


class WorkflowCompleted(Event):
    tenant_id: int
    run_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,90}$")
    workflow: str
    user_id: int | None = None

    def channels(self) -> list[str]:
        return [f"tenant.{self.tenant_id}", f"workflow.{self.run_id}", *_user(self.user_id)]


class WorkflowFailed(Event):
    tenant_id: int
    run_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,90}$")
    workflow: str
    user_id: int | None = None
    error: str = Field("", max_length=2000)

    def channels(self) -> list[str]:
        return [f"tenant.{self.tenant_id}", f"workflow.{self.run_id}", *_user(self.user_id)]


class ApprovalRequested(Event):
    tenant_id: int
    run_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,90}$")
    approval_id: str
    step: str
    role: str | None = None
    approver_ids: list[int] = Field(default_factory=list)  # pushed to each, with priority

    def channels(self) -> list[str]:
        approvers = [f"user.{uid}" for uid in self.approver_ids]
        return [f"tenant.{self.tenant_id}", f"workflow.{self.run_id}", *approvers]


class PostPublished(Event):
    tenant_id: int
    post_id: int
    title: str
    author_id: int | None = None

    def channels(self) -> list[str]:
        return [f"tenant.{self.tenant_id}", f"post.{self.post_id}"]


class PostUpdated(Event):
    tenant_id: int
    post_id: int
    fields: list[str] = Field(default_factory=list)

    def channels(self) -> list[str]:
        return [f"post.{self.post_id}"]


class PostViewed(Event):
    """Not broadcast: one per read; a queued listener adds them up in batches."""

    tenant_id: int
    post_id: int


__all__ = [
    "AgentExecutionCompleted",
    "AgentExecutionFailed",
    "ApprovalRequested",
    "PostPublished",
    "PostUpdated",
    "PostViewed",
    "WorkflowCompleted",
    "WorkflowFailed",
]
