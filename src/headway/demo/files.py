"""File uploads of the reference service: ``/api/v1/files``, on ``hw.storage``.

A file's id is its storage key (without the tenant prefix) in URL-safe base64: opaque to
clients, and checked against the caller's tenant on every use, so another tenant's id is
simply not found (404). Uploads count against the ``upload`` rate-limit policy.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from headway.demo.auth import CurrentPrincipal
from headway.hub import from_request
from headway.storage.uploads import read_upload
from headway.web import HTTPError

MB = 1024 * 1024
# category -> (size limit, content types accepted: checked against the bytes)
CATEGORIES: dict[str, tuple[int, frozenset[str]]] = {
    "avatars": (5 * MB, frozenset({"image/png", "image/jpeg", "image/gif"})),
    "documents": (20 * MB, frozenset({"application/pdf", "text/csv", "text/plain"})),
    "attachments": (
        50 * MB,
        frozenset({"application/pdf", "application/zip", "image/png", "image/jpeg", "text/plain"}),
    ),
}

router = APIRouter(prefix="/api/v1/files")
FileId = Annotated[str, Path(min_length=4, max_length=600, pattern=r"^[A-Za-z0-9_-]+$")]
Category = Annotated[str, Query(max_length=50, description=f"One of {sorted(CATEGORIES)}.")]


def _prefix(principal: CurrentPrincipal) -> str:
    return f"tenants/{principal.tenant_id}/"


def file_id(key: str) -> str:
    relative = key.split("/", 2)[2]  # drop "tenants/{tenant}/"
    return base64.urlsafe_b64encode(relative.encode()).decode().rstrip("=")


def _key(principal: CurrentPrincipal, fid: str) -> str:
    try:
        relative = base64.urlsafe_b64decode(fid + "=" * (-len(fid) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise HTTPError(404, "not_found", "file not found") from None
    return _prefix(principal) + relative


def _category(name: str) -> tuple[int, frozenset[str]]:
    if name not in CATEGORIES:
        raise HTTPError(
            400, "invalid_category", f"unknown category {name!r}", {"allowed": sorted(CATEGORIES)}
        )
    return CATEGORIES[name]


def _out(info: dict[str, Any]) -> dict[str, Any]:
    return {"id": file_id(info["key"]), **info}


@router.post("", status_code=201, summary="Upload a file (multipart field 'file')")
async def upload_file(
    request: Request, principal: CurrentPrincipal, category: Category
) -> dict[str, Any]:
    max_bytes, types = _category(category)
    hw = from_request(request)
    tenant = str(principal.tenant_id)
    (await hw.limits.hit("upload", tenant, tenant=tenant)).raise_for_status()
    incoming = await read_upload(request, max_bytes=max_bytes, allowed_types=types)
    info = await hw.storage.upload(
        tenant, category, incoming.filename, incoming.chunks, content_type=incoming.content_type
    )
    return _out(info)


@router.get("", summary="The tenant's files")
async def list_files(
    request: Request,
    principal: CurrentPrincipal,
    category: Category | None = None,
    prefix: Annotated[str, Query(max_length=100)] = "",
) -> dict[str, Any]:
    if category is not None:
        _category(category)
    elif prefix:
        raise HTTPError(400, "invalid_prefix", "prefix needs a category")
    files = await from_request(request).storage.list(str(principal.tenant_id), category, prefix)
    return {"data": [_out(f) for f in files]}


@router.delete("/{fid}", status_code=204, summary="Delete a file")
async def delete_file(request: Request, principal: CurrentPrincipal, fid: FileId) -> Response:
    hw = from_request(request)
    if not await hw.storage.delete(_key(principal, fid), tenant=str(principal.tenant_id)):
        raise HTTPError(404, "not_found", "file not found")
    return Response(status_code=204)


@router.get("/{fid}/url", summary="A signed download URL")
async def file_url(
    request: Request,
    principal: CurrentPrincipal,
    fid: FileId,
    expires_in: Annotated[int, Query(ge=1, le=7 * 24 * 3600)] = 600,
) -> dict[str, Any]:
    hw = from_request(request)
    key, tenant = _key(principal, fid), str(principal.tenant_id)
    if not await hw.storage.exists(key, tenant=tenant):
        raise HTTPError(404, "not_found", "file not found")
    url = await hw.storage.signed_url(key, expires_in, tenant=tenant)
    return {"url": url, "expires_in": expires_in}
