"""The reference service's webhook and notification-preference routes (``/api/v1``).

Endpoints belong to the caller's tenant (an id of another tenant is a 404); the secret
is shown when an endpoint is created and when it is rotated, never in listings. The
caller's user owns the endpoints it creates: it is told when one gets disabled.

Wiring (``app.py``)::

    from headway.demo.webhooks import install_notifications, router as webhooks_router
    install_notifications(hub)              # before the hub starts
    app.include_router(webhooks_router)

and, where an execution ends (an event listener): ``await announce_execution(hub, ...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field
from sqlalchemy import select
from starlette.requests import Request

from headway import Headway
from headway.demo.auth import CurrentPrincipal, Principal
from headway.demo.db import sessionmaker
from headway.demo.models import User
from headway.demo.schemas import Text, _Body
from headway.hub import from_request
from headway.notify import InvalidNotification, Recipient
from headway.web import HTTPError
from headway.webhooks import (
    EndpointDisabled,
    EndpointNotFound,
    InvalidEndpoint,
    MessageNotFound,
    TooManyEndpoints,
    Webhooks,
)

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
EndpointId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
EventType = Annotated[str, Field(min_length=1, max_length=200)]
Url = Annotated[str, Field(min_length=1, max_length=2000)]


class EndpointIn(_Body):
    url: Url
    event_types: Annotated[list[EventType], Field(max_length=100)] = ["*"]
    description: Annotated[Text, Field(max_length=500)] = ""
    secret: Annotated[str | None, Field(max_length=200)] = None


class EndpointPatch(_Body):
    url: Url | None = None
    event_types: Annotated[list[EventType] | None, Field(max_length=100)] = None
    description: Annotated[Text | None, Field(max_length=500)] = None


class SecretIn(_Body):
    secret: Annotated[str | None, Field(max_length=200)] = None


class ReplayIn(_Body):
    message_id: Annotated[str | None, Field(max_length=64)] = None
    since: Annotated[float | None, Field(ge=0)] = None
    until: Annotated[float | None, Field(ge=0)] = None


class PreferencesIn(_Body):
    preferences: Annotated[dict[EventType, list[str]], Field(max_length=200)]


@contextmanager
def _errors() -> Iterator[None]:
    """The webhook and notification errors as the API's JSON errors."""
    try:
        yield
    except (EndpointNotFound, MessageNotFound) as exc:
        raise HTTPError(404, "not_found", str(exc)) from None
    except (InvalidEndpoint, InvalidNotification) as exc:
        raise HTTPError(422, "invalid", str(exc)) from None
    except (TooManyEndpoints, EndpointDisabled) as exc:
        raise HTTPError(409, "conflict", str(exc)) from None


def _hooks(request: Request) -> Webhooks:
    return from_request(request).webhooks


def _tenant(principal: Principal) -> str:
    return str(principal.tenant_id)


@router.post("/webhooks/endpoints", status_code=201, summary="Register a webhook endpoint")
async def create_endpoint(
    body: EndpointIn, request: Request, principal: CurrentPrincipal
) -> dict[str, Any]:
    owner = None if principal.user_id is None else str(principal.user_id)
    with _errors():
        endpoint = await _hooks(request).create_endpoint(
            _tenant(principal), body.url, event_types=body.event_types, secret=body.secret,
            description=body.description, owner=owner,
        )  # fmt: skip
    return endpoint.as_json(with_secret=True)


@router.get("/webhooks/endpoints", summary="The tenant's webhook endpoints")
async def list_endpoints(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    endpoints = await _hooks(request).list_endpoints(_tenant(principal))
    return {"data": [e.as_json() for e in endpoints]}


@router.get("/webhooks/endpoints/{endpoint_id}", summary="One webhook endpoint")
async def get_endpoint(
    endpoint_id: EndpointId, request: Request, principal: CurrentPrincipal
) -> dict[str, Any]:
    with _errors():
        endpoint = await _hooks(request).get_endpoint(_tenant(principal), endpoint_id)
    return endpoint.as_json()


@router.patch("/webhooks/endpoints/{endpoint_id}", summary="Change a webhook endpoint")
async def update_endpoint(
    endpoint_id: EndpointId, body: EndpointPatch, request: Request, principal: CurrentPrincipal
) -> dict[str, Any]:
    with _errors():
        endpoint = await _hooks(request).update_endpoint(
            _tenant(principal), endpoint_id, url=body.url, event_types=body.event_types,
            description=body.description,
        )  # fmt: skip
    return endpoint.as_json()


@router.delete(
    "/webhooks/endpoints/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint"
)
async def delete_endpoint(
    endpoint_id: EndpointId, request: Request, principal: CurrentPrincipal
) -> Response:
    with _errors():
        await _hooks(request).delete_endpoint(_tenant(principal), endpoint_id)
    return Response(status_code=204)


@router.post("/webhooks/endpoints/{endpoint_id}/enable", summary="Enable an endpoint again")
async def enable_endpoint(
    endpoint_id: EndpointId, request: Request, principal: CurrentPrincipal
) -> dict[str, Any]:
    with _errors():
        endpoint = await _hooks(request).enable(_tenant(principal), endpoint_id)
    return endpoint.as_json()


@router.post(
    "/webhooks/endpoints/{endpoint_id}/rotate-secret",
    summary="New signing secret (the old one signs too during the overlap)",
)
async def rotate_secret(
    endpoint_id: EndpointId, request: Request, principal: CurrentPrincipal,
    body: SecretIn | None = None,
) -> dict[str, Any]:  # fmt: skip
    with _errors():
        endpoint = await _hooks(request).rotate_secret(
            _tenant(principal), endpoint_id, body.secret if body else None
        )
    return endpoint.as_json(with_secret=True)


@router.post(
    "/webhooks/endpoints/{endpoint_id}/replay",
    status_code=202,
    summary="Send one message (message_id) or a time range (since, until) again",
)
async def replay(
    endpoint_id: EndpointId, body: ReplayIn, request: Request, principal: CurrentPrincipal
) -> dict[str, Any]:
    with _errors():
        count = await _hooks(request).replay(
            _tenant(principal), endpoint_id, message_id=body.message_id, since=body.since,
            until=body.until,
        )  # fmt: skip
    return {"enqueued": count}


@router.get("/webhooks/endpoints/{endpoint_id}/deliveries", summary="The delivery log")
async def deliveries(
    endpoint_id: EndpointId, request: Request, principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    message_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:  # fmt: skip
    with _errors():
        rows = await _hooks(request).deliveries(
            _tenant(principal), endpoint_id, limit=limit, before=before, message_id=message_id
        )
    data = [r.as_json() for r in rows]
    return {"data": data, "next_before": rows[-1].id if len(rows) == limit else None}


# -- notification preferences of the caller's user ------------------------------------------


def _user(principal: Principal) -> str:
    if principal.user_id is None:
        raise HTTPError(409, "conflict", "this API key belongs to no user")
    return str(principal.user_id)


@router.get("/notifications/preferences", tags=["notifications"], summary="My preferences")
async def get_preferences(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    hub = from_request(request)
    prefs = await hub.notify.get_preferences(_tenant(principal), _user(principal))
    return {"preferences": prefs, "default_channels": hub.notify.settings.default_channels}


@router.put("/notifications/preferences", tags=["notifications"], summary="Set my preferences")
async def set_preferences(
    body: PreferencesIn, request: Request, principal: CurrentPrincipal
) -> dict[str, Any]:
    notify = from_request(request).notify
    with _errors():
        prefs = await notify.set_preferences(_tenant(principal), _user(principal), body.preferences)
    return {"preferences": prefs}


def install_notifications(hub: Headway) -> None:
    """Create ``hw.webhooks`` / ``hw.notify`` and let notifications find users' addresses."""
    hub.webhooks  # noqa: B018  (created before the hub starts; creates hw.notify too)

    @hub.notify.recipient_loader
    async def load_user(tenant: str, user_id: str) -> Recipient | None:
        if not (tenant.isdigit() and user_id.isdigit()):
            return None
        async with sessionmaker(hub.connections.engine())() as session:
            stmt = select(User).where(User.id == int(user_id), User.tenant_id == int(tenant))
            user = (await session.execute(stmt)).scalar_one_or_none()
        if user is None:
            return None
        return Recipient(str(user.id), email=user.email, name=user.name)


async def announce_execution(
    hub: Headway, *, tenant_id: int, execution_id: int, agent_id: int, agent_name: str,
    status: str, users: Iterable[int], error: str | None = None, output: Any = None,
    duration_ms: int | None = None,
) -> None:  # fmt: skip
    """Tell the tenant's webhooks and ``users`` (the agent's owner; on failure also the
    supervisors) that an execution ``completed`` or ``failed``.

    The webhook message id is derived from the execution, so a listener that runs twice
    (at-least-once) sends nothing twice: receivers see one ``webhook-id``."""
    if status not in ("completed", "failed"):
        raise ValueError("status is 'completed' or 'failed'")
    event = f"execution.{status}"
    payload = {"execution_id": execution_id, "agent_id": agent_id, "status": status,
               "error": error, "output": output}  # fmt: skip
    tenant = str(tenant_id)
    message_id = f"msg_execution_{execution_id}_{status}"
    await hub.webhooks.send(tenant, event, payload, message_id=message_id)
    context = {"execution_id": execution_id, "agent_id": agent_id, "agent_name": agent_name,
               "error": error, "duration_ms": duration_ms}  # fmt: skip
    for user in dict.fromkeys(users):
        await hub.notify.send(user=str(user), tenant=tenant, event=event, context=context)
