"""Webhooks: a tenant's endpoints, their delivery log, replay, enable / disable.

The public API lists endpoints per tenant (there is no listing across tenants), so the
page asks for the tenant. An endpoint's signing secret is never shown.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from headway.dashboard.core import PREFIX
from headway.dashboard.routes import page
from headway.dashboard.security import Session
from headway.web.errors import HTTPError

if TYPE_CHECKING:
    from headway.dashboard.core import Dashboard

DELIVERIES_SHOWN = 50


def endpoint_url(tenant: str, endpoint_id: str) -> str:
    return f"{PREFIX}/webhooks/endpoints/{quote(endpoint_id)}?tenant={quote(tenant)}"


def add(d: Dashboard) -> None:
    if not d.has("webhooks"):
        return
    from headway.webhooks.models import EndpointNotFound, WebhookError

    @page(d, "/webhooks")
    async def webhooks(request: Request, session: Session) -> Response:
        tenant = (request.query_params.get("tenant") or "").strip()[:200]
        try:
            endpoints = await d.hw.webhooks.list_endpoints(tenant) if tenant else []
        except WebhookError as exc:
            raise HTTPError(400, "bad_request", str(exc)) from None
        return d.render(request, session, "webhooks.html", tenant=tenant, endpoints=endpoints)

    @page(d, "/webhooks/endpoints/{endpoint_id}")
    async def endpoint(request: Request, session: Session) -> Response:
        tenant = request.query_params.get("tenant") or ""
        endpoint_id = request.path_params["endpoint_id"]
        before = request.query_params.get("before")
        try:
            found = await d.hw.webhooks.get_endpoint(tenant, endpoint_id)
            log = await d.hw.webhooks.deliveries(
                tenant, endpoint_id, limit=DELIVERIES_SHOWN,
                before=int(before) if before and before.isdigit() else None,
            )  # fmt: skip
        except EndpointNotFound as exc:
            raise HTTPError(404, "not_found", str(exc)) from None
        except WebhookError as exc:  # a tenant or id the store refuses
            raise HTTPError(400, "bad_request", str(exc)) from None
        return d.render(
            request, session, "webhook.html", tenant=tenant, endpoint=found, deliveries=log,
            more=len(log) == DELIVERIES_SHOWN, url=endpoint_url(tenant, endpoint_id),
        )  # fmt: skip

    add_actions(d)


def add_actions(d: Dashboard) -> None:
    async def enable(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        tenant, endpoint_id = form.get("tenant", ""), r.path_params["endpoint_id"]
        await d.hw.webhooks.enable(tenant, endpoint_id)
        return f"Endpoint {endpoint_id} enabled.", endpoint_url(tenant, endpoint_id)

    async def disable(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        tenant, endpoint_id = form.get("tenant", ""), r.path_params["endpoint_id"]
        await d.hw.webhooks.disable(tenant, endpoint_id, f"disabled by dashboard:{s.actor}")
        return f"Endpoint {endpoint_id} disabled.", endpoint_url(tenant, endpoint_id)

    async def replay(r: Request, s: Session, form: dict[str, str]) -> tuple[str, str]:
        tenant, endpoint_id = form.get("tenant", ""), r.path_params["endpoint_id"]
        message_id = form.get("message_id", "").strip() or None
        hours = form.get("since_hours", "").strip()
        since = time.time() - float(hours) * 3600 if hours and message_id is None else None
        n = await d.hw.webhooks.replay(tenant, endpoint_id, message_id=message_id, since=since)
        return f"{n} message(s) queued for delivery again.", endpoint_url(tenant, endpoint_id)

    d.action("webhook_enable", "/webhooks/endpoints/{endpoint_id}/enable", enable)
    d.action("webhook_disable", "/webhooks/endpoints/{endpoint_id}/disable", disable)
    d.action("webhook_replay", "/webhooks/endpoints/{endpoint_id}/replay", replay)
