"""Management endpoints on the hub's admin router (``/admin/flags``).

An invalid definition is a 422 (the JSON error shape, with pydantic's details); the
actor recorded in the audit log is the ``X-Headway-Actor`` header (default ``admin``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, Header, Query

from headway.flags.model import FlagDefinition, FlagPatch
from headway.web.errors import HTTPError

if TYPE_CHECKING:
    from headway.flags.core import Flags

Tenant = Annotated[str | None, Query(max_length=200, description="A tenant's own flag.")]
Actor = Annotated[str, Header(alias="X-Headway-Actor", max_length=200)]


def add_routes(flags: Flags) -> None:
    router = flags.hw.admin_router

    @router.get("/flags", summary="Every flag (global, and a tenant's own)")
    async def list_flags(tenant: Tenant = None) -> dict[str, Any]:
        return {"flags": await flags.list(tenant), "version": flags.version}

    @router.post("/flags", status_code=201, summary="Create a flag (409 if it exists)")
    async def create_flag(
        definition: FlagDefinition, tenant: Tenant = None, actor: Actor = "admin"
    ) -> dict[str, Any]:
        return await flags.save(definition, tenant=tenant, actor=actor, create=True)

    @router.get("/flags/{key}", summary="One flag")
    async def get_flag(key: str, tenant: Tenant = None) -> dict[str, Any]:
        return await flags.get(key, tenant)

    @router.put("/flags/{key}", summary="Create or replace a flag")
    async def put_flag(
        key: str, definition: FlagDefinition, tenant: Tenant = None, actor: Actor = "admin"
    ) -> dict[str, Any]:
        if definition.key != key:
            raise HTTPError(422, "validation_error", "the body's key differs from the URL's")
        return await flags.save(definition, tenant=tenant, actor=actor)

    @router.patch("/flags/{key}", summary="Change some fields of a flag")
    async def patch_flag(
        key: str, patch: FlagPatch, tenant: Tenant = None, actor: Actor = "admin"
    ) -> dict[str, Any]:
        changes = patch.model_dump(mode="json", exclude_unset=True)
        try:
            return await flags.update(key, changes, tenant=tenant, actor=actor)
        except ValueError as exc:  # pydantic's ValidationError of the merged definition
            raise HTTPError(422, "validation_error", "invalid flag definition", str(exc)) from None

    @router.delete("/flags/{key}", status_code=204, summary="Delete a flag")
    async def delete_flag(key: str, tenant: Tenant = None, actor: Actor = "admin") -> None:
        await flags.delete(key, tenant=tenant, actor=actor)

    @router.post("/flags/{key}/evaluate", summary="Evaluate a flag for a context")
    async def evaluate_flag(
        key: str,
        context: Annotated[dict[str, Any] | None, Body()] = None,
        tenant: Tenant = None,
        user: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        ctx = dict(context or {})
        tenant = tenant or _opt(ctx.pop("tenant", None))
        user = user or _opt(ctx.pop("user", None))
        ev = flags.evaluate_now(key, tenant=tenant, user=user, context=ctx, default=None)
        return ev.public()

    @router.get("/flags/{key}/audit", summary="Changes of a flag, newest first")
    async def flag_audit(
        key: str, tenant: Tenant = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> dict[str, Any]:
        return {"audit": await flags.audit(key, tenant=tenant, limit=limit)}


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)
