"""The route that serves ``file://`` signed URLs: ``GET|PUT /_headway/storage/<key>``.

An expired, tampered or missing signature is a 403 (JSON error shape); a valid
signature for a key that no longer exists is a 404. S3 signed URLs point at S3 itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from headway.storage import signing
from headway.web.errors import HTTPError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from headway.storage.core import Storage


def add_signed_routes(app: Starlette, storage: Storage) -> None:
    secret = storage.hw.settings.secret_bytes()

    def authorize(request: Request) -> str:
        key = request.path_params["key"]
        q = request.query_params
        method = request.method
        ok = q.get("method") == method and signing.verify(
            secret, method, key, q.get("expires", ""), q.get("sig", "")
        )
        if not ok:
            raise HTTPError(403, "forbidden", "invalid or expired signature")
        return str(key)

    async def serve(request: Request) -> Response:
        key = authorize(request)
        if request.method == "PUT":
            ctype = request.headers.get("content-type", "application/octet-stream")
            info = await storage.put_key(key, request.stream(), content_type=ctype)
            return Response(status_code=200, headers={"ETag": info["etag"] or ""})
        found = await storage.info(key)
        chunks = await storage.download(key)
        headers = {"Content-Length": str(found["size"]), "ETag": found["etag"] or ""}
        media = found["content_type"] or "application/octet-stream"
        return StreamingResponse(chunks, media_type=media, headers=headers)

    route = Route(signing.ROUTE_PREFIX + "/{key:path}", serve, methods=["GET", "PUT"])
    app.router.routes.insert(0, route)
