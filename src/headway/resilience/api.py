"""Management endpoints on the hub's admin router (``/admin/breakers``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headway.resilience.core import Breakers


def add_routes(breakers: Breakers) -> None:
    router = breakers.hw.admin_router

    @router.get("/breakers", summary="Circuit breakers with state and counts")
    async def list_breakers() -> dict[str, Any]:
        return {"breakers": await breakers.list()}

    @router.get("/breakers/{name}", summary="One circuit breaker")
    async def get_breaker(name: str) -> dict[str, Any]:
        return await breakers.describe(name)

    @router.post("/breakers/{name}/reset", summary="Close a breaker and empty its window")
    async def reset_breaker(name: str) -> dict[str, Any]:
        return await breakers.reset(name)

    @router.post("/breakers/{name}/open", summary="Force a breaker open")
    async def open_breaker(name: str) -> dict[str, Any]:
        return await breakers.force_open(name)

    @router.post("/breakers/{name}/close", summary="Force a breaker closed")
    async def close_breaker(name: str) -> dict[str, Any]:
        return await breakers.force_close(name)
