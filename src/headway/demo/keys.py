"""API-key management of the reference service: ``/api/v1/keys``, under the ``auth`` policy.

A new key is shown once, in the answer that creates it; only its SHA-256 is stored.
Creating and revoking keys count against the ``auth`` rate-limit policy (10/minute per
client IP by default), so a stolen key cannot mint keys in bulk. Revocation takes effect
on the next request (authentication reads the key's row every time).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import Field
from sqlalchemy import select

from headway.demo.auth import CurrentPrincipal, Session, hash_key, key_cache_key, new_key
from headway.demo.models import ApiKey, utcnow
from headway.demo.schemas import Text, _Body
from headway.hub import from_request
from headway.ratelimit import Decision
from headway.web import HTTPError

AUTH_POLICY = "auth"
KeyId = Annotated[int, Path(ge=1, le=2**63 - 1)]


async def auth_limit(request: Request, response: Response) -> Decision:
    """The ``auth`` policy as a dependency, resolved on the app's hub."""
    limits = from_request(request).limits
    check = request.app.state.__dict__.get("auth_limit_dependency")
    if check is None:
        check = request.app.state.auth_limit_dependency = limits.dependency(AUTH_POLICY)
    decision: Decision = await check(request, response)
    return decision


router = APIRouter(prefix="/api/v1/keys")


class KeyIn(_Body):
    name: Annotated[Text, Field(min_length=1, max_length=200)]


def _out(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "user_id": key.user_id,
        "created_at": key.created_at.isoformat(),
        "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat(),
    }


@router.post("", status_code=201, summary="Create an API key (shown once)")
async def create_key(
    body: KeyIn,
    principal: CurrentPrincipal,
    session: Session,
    _limit: Annotated[Decision, Depends(auth_limit)],
) -> dict[str, Any]:
    token = new_key()
    key = ApiKey(
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        name=body.name,
        prefix=token[:10],
        key_hash=hash_key(token),
    )
    session.add(key)
    await session.commit()
    await session.refresh(key)
    return {**_out(key), "key": token}


@router.get("", summary="The tenant's API keys (never the keys themselves)")
async def list_keys(principal: CurrentPrincipal, session: Session) -> dict[str, Any]:
    rows = await session.scalars(
        select(ApiKey).where(ApiKey.tenant_id == principal.tenant_id).order_by(ApiKey.id)
    )
    return {"data": [_out(k) for k in rows]}


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_key(
    request: Request,
    key_id: KeyId,
    principal: CurrentPrincipal,
    session: Session,
    _limit: Annotated[Decision, Depends(auth_limit)],
) -> Response:
    key = await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == principal.tenant_id)
    )
    if key is None or key.revoked_at is not None:
        raise HTTPError(404, "not_found", "API key not found")
    key.revoked_at = utcnow()
    await session.commit()
    # every process forgets the cached principal (the cache's invalidation messages)
    await from_request(request).cache.delete(key_cache_key(key.key_hash))
    return Response(status_code=204)
