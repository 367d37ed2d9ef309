"""The dashboard's pages and actions, one module per area."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from headway.dashboard.core import PREFIX
from headway.dashboard.security import Session

if TYPE_CHECKING:
    from headway.dashboard.core import Dashboard

Page = Callable[[Request, Session], Awaitable[Response]]


def page(d: Dashboard, path: str) -> Callable[[Page], Page]:
    """Register a GET page that needs a login."""

    def register(handler: Page) -> Page:
        async def endpoint(request: Request) -> Response:
            session = d.login_required(request)
            return await handler(request, session)

        endpoint.__name__ = f"dashboard_page_{handler.__name__}"
        d.router.add_api_route(PREFIX + path, endpoint, methods=["GET"])
        return handler

    return register


def add_all(d: Dashboard) -> None:
    from headway.dashboard.routes import (
        base,
        breakers,
        flags,
        jobs,
        ops,
        overview,
        webhooks,
        workflows,
    )  # fmt: skip

    for module in (base, overview, jobs, workflows, ops, breakers, flags, webhooks):
        module.add(d)
