"""API keys: ``Authorization: Bearer hw_...``; only the key's SHA-256 is stored.

Keys are 256-bit random tokens, so a fast hash is the right one (a password hash would
only slow every request); the lookup is by the hash, on a unique index.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from headway.demo.db import get_read_session, get_session
from headway.demo.models import ApiKey
from headway.hub import from_request
from headway.observe import bind_request
from headway.web import HTTPError

KEY_PREFIX = "hw_"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: every query of the API is scoped by ``tenant_id``."""

    tenant_id: int
    plan: str
    user_id: int | None
    key_id: int


async def find_key(session: AsyncSession, token: str) -> ApiKey | None:
    """The live API key ``token`` stands for (with its tenant loaded), or None."""
    if not token.startswith(KEY_PREFIX) or len(token) > 200:
        return None
    stmt = select(ApiKey).where(ApiKey.key_hash == hash_key(token), ApiKey.revoked_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


def _unauthorized(message: str) -> HTTPError:
    return HTTPError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


KEY_CACHE_SECONDS = 60.0  # a principal is cached this long; revocation drops it at once


def key_cache_key(key_hash: str) -> str:
    """The cache entry of the principal of the key whose SHA-256 is ``key_hash``."""
    return f"apikey:{key_hash}"


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the caller's tenant, or 401.

    The principal of a key is cached (``hw.cache``: in-process L1, shared L2, invalidated
    everywhere on revocation), so a request answered from the cache makes no SQL at all;
    unknown keys are not cached (each costs one indexed lookup)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    if not token.startswith(KEY_PREFIX) or len(token) > 200:
        raise _unauthorized("invalid API key")
    cache = from_request(request).cache
    name = key_cache_key(hash_key(token))
    found = await cache.get(name)
    if found is None:
        async with request.app.state.sessions() as session:
            row = await find_key(session, token)
        if row is None:
            raise _unauthorized("invalid API key")
        found = [row.tenant_id, row.tenant.plan, row.user_id, row.id]
        await cache.set(name, found, ttl=KEY_CACHE_SECONDS)
    tenant_id, plan, user_id, key_id = found
    bind_request(tenant=tenant_id)  # request logs carry the tenant
    return Principal(tenant_id, plan, user_id, key_id)


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
Session = Annotated[AsyncSession, Depends(get_session)]
ReadSession = Annotated[AsyncSession, Depends(get_read_session)]
