"""Agent executions: ``POST /api/v1/agents/{id}/execute`` answers 202 and a job does the work.

The ``demo.execute_agent`` job (3 attempts, exponential backoff) moves the Execution row
from pending through running to completed; a prompt containing ``[fail]`` makes the
simulated model refuse it on every attempt, so the job lands in the failed store and the
failure hook marks the Execution failed; ``[provider-down]`` makes the provider call fail,
which the ``ai-provider`` circuit breaker counts.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import Field
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse

from headway import BackendUnavailableError, Headway
from headway.demo.auth import CurrentPrincipal, Session
from headway.demo.db import sessionmaker
from headway.demo.events import AgentExecutionCompleted, AgentExecutionFailed
from headway.demo.models import Agent, Execution, ExecutionStatus, utcnow
from headway.demo.schemas import Text, _Body, execution_out
from headway.hub import from_request
from headway.jobs import Backoff, JobContext, Task, current_job
from headway.web import HTTPError

EXECUTE_QUEUE = "default"
SIMULATED_MODEL_SECONDS = 0.05
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]

router = APIRouter(prefix="/api/v1")


class ExecuteIn(_Body):
    prompt: Annotated[Text, Field(min_length=1, max_length=10_000)]
    parameters: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class SimulatedModelError(RuntimeError):
    """The simulated AI provider failed (the prompt asked it to)."""


class ProviderUnavailable(ConnectionError):
    """The simulated AI provider is down (the prompt asked for it with [provider-down])."""


async def _simulated_provider(prompt: str) -> None:
    await asyncio.sleep(SIMULATED_MODEL_SECONDS)
    if "[provider-down]" in prompt:
        raise ProviderUnavailable("the model provider did not answer")


def register_tasks(hub: Headway) -> Task:
    """Declare the reference service's jobs on ``hub.jobs``; returns ``execute_agent``."""
    jobs = hub.jobs

    async def mark_failed(ctx: JobContext, error: BaseException) -> None:
        execution_id = ctx.meta.get("execution_id")
        if not isinstance(execution_id, int):
            return
        async with sessionmaker(hub.connections.engine())() as session:
            execution = await session.get(Execution, execution_id)
            if execution is not None:
                execution.status = ExecutionStatus.failed.value
                execution.error = f"{type(error).__name__}: {error}"[:2000]
                execution.finished_at = utcnow()
                agent = await session.get(Agent, execution.agent_id)
                failed = AgentExecutionFailed(
                    tenant_id=execution.tenant_id,
                    agent_id=execution.agent_id,
                    execution_id=execution.id,
                    user_id=execution.user_id,
                    owner_id=None if agent is None else agent.owner_id,
                    error=execution.error or "",
                )
                await hub.events.dispatch(failed, session=session)  # sent after the commit
                await session.commit()

    async def execute_agent(execution_id: int) -> dict[str, Any]:
        ctx = current_job()
        sessions = sessionmaker(hub.connections.engine())
        async with sessions() as session:
            execution = await session.get(Execution, execution_id)
            if execution is None:
                raise LookupError(f"execution {execution_id} does not exist")
            agent = await session.get(Agent, execution.agent_id)
            execution.status = ExecutionStatus.running.value
            execution.started_at = execution.started_at or utcnow()
            execution.attempts = ctx.attempt
            execution.progress = 10
            prompt = str(execution.input.get("prompt", ""))
            agent_name = agent.name if agent is not None else "agent"
            owner_id = agent.owner_id if agent is not None else None
            await session.commit()
        await ctx.set_progress(10, "calling the model")
        # The provider call goes through the ai-provider breaker: while it is open the
        # job fails fast with CircuitOpenError and is retried after its backoff.
        await hub.breakers.get("ai-provider").call(_simulated_provider, prompt)
        if "[fail]" in prompt:
            raise SimulatedModelError("the model refused the prompt")
        output = {"text": f"{agent_name} answers: {prompt[::-1]}", "tokens": len(prompt.split())}
        async with sessions() as session:
            execution = await session.get(Execution, execution_id)
            assert execution is not None
            execution.status = ExecutionStatus.completed.value
            execution.output = output
            execution.progress = 100
            execution.finished_at = utcnow()
            completed = AgentExecutionCompleted(
                tenant_id=execution.tenant_id,
                agent_id=execution.agent_id,
                execution_id=execution.id,
                user_id=execution.user_id,
                owner_id=owner_id,
                output=output,
            )
            await hub.events.dispatch(completed, session=session)  # sent after the commit
            await session.commit()
        await ctx.set_progress(100, "done")
        return output

    task: Task = jobs.task(
        execute_agent,
        name="demo.execute_agent",
        queue=EXECUTE_QUEUE,
        retries=2,
        backoff=Backoff(base=0.2, factor=2, cap=5),
        timeout=60,
        on_failure=mark_failed,
    )
    return task


@router.post("/agents/{agent_id}/execute", status_code=202, summary="Run an agent (async)")
async def execute(
    agent_id: Id,
    body: ExecuteIn,
    request: Request,
    principal: CurrentPrincipal,
    session: Session,
) -> JSONResponse:
    found = await session.scalar(
        select(Agent.id).where(Agent.id == agent_id, Agent.tenant_id == principal.tenant_id)
    )
    if found is None:
        raise HTTPError(404, "not_found", "agent not found")
    execution = Execution(
        tenant_id=principal.tenant_id,
        agent_id=agent_id,
        user_id=principal.user_id,
        status=ExecutionStatus.pending.value,
        input=body.model_dump(),
    )
    session.add(execution)
    await session.flush()  # the id, inside this transaction
    task: Task = request.app.state.execute_agent
    options = task.options(
        job_id=f"execution-{execution.id}",
        tenant=str(principal.tenant_id),
        user_id=None if principal.user_id is None else str(principal.user_id),
        meta={"execution_id": execution.id},
    )
    if from_request(request).jobs.transactional:
        # PostgreSQL, or SQLite with the jobs in the app's file: the Execution row and its
        # job are written in one transaction, so both exist or neither does
        handle = await options.options(session=session).enqueue(execution.id)
        await session.commit()
    else:  # a Redis job store: enqueue after the commit; a failure marks the row failed
        await session.commit()
        try:
            handle = await options.enqueue(execution.id)
        except BackendUnavailableError:
            execution.status = ExecutionStatus.failed.value
            execution.error = "the job queue was unavailable; nothing ran"
            await session.commit()
            raise HTTPError(
                503,
                "unavailable",
                "job queue unavailable, retry later",
                headers={"Retry-After": "5"},
            ) from None
    return JSONResponse(
        {"execution_id": execution.id, "status": "pending", "job_id": handle.id},
        status_code=202,
        headers={"Location": f"/api/v1/executions/{execution.id}"},
    )


@router.get("/executions/{execution_id}", summary="An execution's status, progress and result")
async def get_execution(
    execution_id: Id, principal: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    execution = await session.scalar(
        select(Execution).where(
            Execution.id == execution_id, Execution.tenant_id == principal.tenant_id
        )
    )
    if execution is None:
        raise HTTPError(404, "not_found", "execution not found")
    return execution_out(execution)
