"""``s3://bucket[/prefix]``: AWS S3, Cloudflare R2, MinIO (any S3-compatible store).

Through obstore (Rust ``object_store`` bindings): async, typed, streams an async
iterator as a multipart upload part by part (one ``chunk_size`` part buffered at a
time), presigns natively. An object appears only when the multipart upload completes,
so a failed upload leaves no object; the upload itself is aborted by obstore.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import S3Store

from headway.storage.base import Method, ObjectInfo, ObjectNotFound, StorageBackend
from headway.storage.settings import StorageSettings

if TYPE_CHECKING:
    from obstore import GetResult

# Metadata attributes obstore treats as HTTP headers, not user metadata.
_HEADERS = {"Content-Type", "Content-Disposition", "Content-Encoding", "Content-Language"}
_HEADERS |= {"Cache-Control", "Storage-Class"}


class S3Backend(StorageBackend):
    scheme = "s3"

    def __init__(self, url: str, settings: StorageSettings, secret: bytes) -> None:
        parts = urlsplit(url)
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        if not self.bucket:
            raise ValueError(f"{url!r}: expected s3://bucket or s3://bucket/prefix")
        self.settings = settings
        self.chunk_size = settings.chunk_size
        config: dict[str, Any] = {"region": settings.region}
        if settings.endpoint:
            config["endpoint"] = settings.endpoint
        if settings.access_key_id:
            config["access_key_id"] = settings.access_key_id
        if settings.secret_access_key is not None:
            config["secret_access_key"] = settings.secret_access_key.get_secret_value()
        if settings.session_token is not None:
            config["session_token"] = settings.session_token.get_secret_value()
        self.store = S3Store(
            self.bucket,
            prefix=self.prefix or None,
            config=config,  # type: ignore[arg-type]
            client_options={"allow_http": settings.endpoint.startswith("http://")},
        )

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        metadata: Mapping[str, str],
    ) -> ObjectInfo:
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                yield chunk

        attributes: dict[str, str] = {**metadata, "Content-Type": content_type}
        result = await obstore.put_async(
            self.store,
            key,
            counted(),
            attributes=attributes,
            chunk_size=self.chunk_size,
            max_concurrency=2,
        )
        return ObjectInfo(key, size, result["e_tag"], content_type, dict(metadata))

    async def _get(self, key: str, head: bool = False) -> GetResult:
        try:
            return await obstore.get_async(self.store, key, options={"head": head})
        except (FileNotFoundError, NotFoundError):
            raise ObjectNotFound(key) from None

    async def get(self, key: str) -> AsyncIterator[bytes]:
        result = await self._get(key)
        return aiter(result.stream(min_chunk_size=self.chunk_size))

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            result = await self._get(key, head=True)
        except ObjectNotFound:
            return None
        meta, attrs = result.meta, result.attributes
        user = {str(k): str(v) for k, v in attrs.items() if k not in _HEADERS}
        ctype = attrs.get("Content-Type")
        return ObjectInfo(key, meta["size"], meta["e_tag"], ctype and str(ctype), user)

    async def delete(self, key: str) -> bool:
        if await self.head(key) is None:
            return False
        await obstore.delete_async(self.store, key)
        return True

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        # obstore lists by path segment: list the prefix's directory, filter the rest.
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else None
        async for batch in obstore.list(self.store, directory, chunk_size=1000):
            for meta in batch:
                if meta["path"].startswith(prefix):
                    yield ObjectInfo(meta["path"], meta["size"], meta["e_tag"])

    async def presign(self, key: str, method: Method, expires_in: int) -> str:
        return await obstore.sign_async(self.store, method, key, timedelta(seconds=expires_in))

    def object_url(self, key: str) -> str:
        path = quote(f"{self.prefix}/{key}" if self.prefix else key)
        if self.settings.endpoint:
            return f"{self.settings.endpoint.rstrip('/')}/{self.bucket}/{path}"
        return f"https://{self.bucket}.s3.{self.settings.region}.amazonaws.com/{path}"

    async def ping(self) -> None:
        stream = obstore.list(self.store, chunk_size=1)
        async for _ in stream:
            break
