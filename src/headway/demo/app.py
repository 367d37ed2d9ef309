"""The reference service: a multi-tenant AI-agent platform built on headway's public API.

``uvicorn headway.demo.app:app`` or ``headway serve`` (which also migrates and seeds).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from headway import Headway, Settings, __version__
from headway.demo.api import router
from headway.demo.db import sessionmaker
from headway.demo.executions import register_tasks
from headway.demo.executions import router as executions_router
from headway.demo.files import router as files_router
from headway.demo.keys import router as keys_router
from headway.demo.limits import install_limits
from headway.demo.listeners import install_listeners
from headway.demo.realtime import install_realtime, install_workflow_events
from headway.demo.realtime import router as realtime_router
from headway.demo.reports import register_report_tasks
from headway.demo.reports import router as reports_router
from headway.demo.resilience import install_resilience
from headway.demo.seed import prepare
from headway.demo.webhooks import install_notifications
from headway.demo.webhooks import router as webhooks_router
from headway.demo.workflows import register_workflows
from headway.demo.workflows import router as workflows_router
from headway.jobs import DEFAULT_QUEUES

log = logging.getLogger("headway.demo")


def create_app(settings: Settings | None = None, *, hw: Headway | None = None) -> FastAPI:
    """Build the service on ``hw`` (default: a hub from ``settings`` / the environment)."""
    hub = hw or Headway(settings)
    # created now, so that they start with the hub: the post cache (api.py) and the query
    # monitor (request scopes, slow log, N+1 reports, /admin/db/*)
    hub.cache  # noqa: B018
    hub.db  # noqa: B018
    hub.storage  # noqa: B018
    execute_agent = register_tasks(hub)
    register_workflows(hub)  # the agent-review workflow (reuses demo.execute_agent)
    export_executions = register_report_tasks(hub)
    install_limits(hub)
    install_resilience(hub)
    install_notifications(hub)
    install_realtime(hub)
    install_workflow_events(hub)  # workflow hooks -> WorkflowCompleted/Failed, ApprovalRequested
    views = install_listeners(hub)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = hub.connections.engine()
        seeded = await prepare(engine, seed_if_empty=hub.settings.demo_seed)
        if seeded:
            log.info("seeded demo tenants; run `headway demo seed` for API keys to try")
        app.state.sessions = sessionmaker(engine)
        app.state.execute_agent = execute_agent
        app.state.export_executions = export_executions
        app.state.views = views
        async with views.running(), _inprocess_worker(hub):
            yield

    app = FastAPI(
        title="headway reference service",
        version=__version__,
        description="A multi-tenant AI-agent platform built on headway.",
        lifespan=lifespan,
    )
    app.include_router(router)
    app.include_router(executions_router)
    app.include_router(files_router)
    app.include_router(reports_router)
    app.include_router(keys_router)
    app.include_router(webhooks_router)
    app.include_router(realtime_router)
    app.include_router(workflows_router)
    hub.install(app)
    return app


@asynccontextmanager
async def _inprocess_worker(hub: Headway) -> AsyncIterator[None]:
    """Serve every default queue (and cron) in this process unless workers run apart."""
    if not hub.settings.inprocess_worker:
        yield
        return
    worker = hub.jobs.worker(list(DEFAULT_QUEUES), scheduler=True, grace=10)
    task = asyncio.create_task(worker.run(), name="headway-inprocess-worker")
    try:
        yield
    finally:
        worker.stop()
        await task


def __getattr__(name: str) -> FastAPI:
    # ``uvicorn headway.demo.app:app`` asks for ``app``: build it then, from the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
