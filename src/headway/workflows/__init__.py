"""Workflows: chains, groups and DAGs of job tasks, with human approval steps.

::

    @hw.jobs.task
    async def draft(topic: str) -> str: ...

    @hw.jobs.task
    async def publish(text: str) -> dict: ...

    flow = hw.workflows.chain("post", draft, approval("review", role="editor"), publish)

    async with hw:
        run = await hw.workflows.start(flow, "headway", tenant="acme", user_id="u1")
        approval_id = run.steps["review"].approval_id   # once draft finished
        await hw.workflows.approve(approval_id, by="u2", roles=["editor"], tenant="acme")
"""

from __future__ import annotations

from headway import registry
from headway.workflows import constants
from headway.workflows.base import StepMove, WorkflowBackend
from headway.workflows.core import Workflows
from headway.workflows.definition import Step, Workflow, approval, chain, dag, group, step
from headway.workflows.models import (
    ApprovalAlreadyDecided,
    ApprovalConflict,
    ApprovalExpired,
    ApprovalForbidden,
    ApprovalNotFound,
    ApprovalRecord,
    DefinitionError,
    RunNotFound,
    RunRecord,
    StepRecord,
    WorkflowError,
)

registry.register("workflows", "memory", "headway.workflows.backends.memory:MemoryWorkflowBackend")
for _scheme in ("sqlite", "postgresql", "postgres"):
    registry.register("workflows", _scheme, "headway.workflows.backends.sql:SqlWorkflowBackend")
for _scheme in ("redis", "rediss", "unix"):
    registry.register(
        "workflows", _scheme, "headway.workflows.backends.redis:RedisWorkflowBackend", extra="redis"
    )

__all__ = [
    "ApprovalAlreadyDecided",
    "ApprovalConflict",
    "ApprovalExpired",
    "ApprovalForbidden",
    "ApprovalNotFound",
    "ApprovalRecord",
    "DefinitionError",
    "RunNotFound",
    "RunRecord",
    "Step",
    "StepMove",
    "StepRecord",
    "Workflow",
    "WorkflowBackend",
    "WorkflowError",
    "Workflows",
    "approval",
    "chain",
    "constants",
    "dag",
    "group",
    "step",
]
