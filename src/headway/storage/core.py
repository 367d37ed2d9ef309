"""The ``Storage`` capability: tenant-scoped uploads over one backend contract."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from headway import registry
from headway.capability import Capability, Readiness
from headway.settings import load_section
from headway.storage.base import InvalidKey, Method, ObjectInfo, ObjectNotFound, StorageBackend
from headway.storage.keys import ROOT, check_key, make_key, parse_key, safe_filename, tenant_prefix
from headway.storage.metrics import StorageMetrics
from headway.storage.settings import StorageSettings
from headway.storage.stats import StorageStats

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from starlette.applications import Starlette

    from headway.hub import Headway

Data = bytes | AsyncIterable[bytes]


class Storage(Capability):
    """``hw.storage``: upload, download, list, delete and sign tenants' files."""

    name = "storage"

    def __init__(self, hw: Headway, settings: StorageSettings | None = None) -> None:
        super().__init__(hw)
        self.settings = settings or load_section(StorageSettings)
        self.url = hw.settings.file_storage_url
        self._backend: StorageBackend | None = None
        self._stats: StorageStats | None = None
        self.metrics: StorageMetrics | None = None

    # -- lifecycle ------------------------------------------------------------------

    @property
    def backend(self) -> StorageBackend:
        if self._backend is None:
            self._backend = open_backend(self.url, self.settings, self.hw.settings.secret_bytes())
        return self._backend

    @property
    def stats_store(self) -> StorageStats:
        if self._stats is None:
            self._stats = StorageStats(self.hw.connections.engine())
        return self._stats

    async def start(self) -> None:
        await self.backend.start()
        await self.stats_store.create()

    async def stop(self) -> None:
        if self._backend is not None:
            await self._backend.close()

    def install(self, app: Starlette) -> None:
        from headway.storage.web import add_signed_routes

        add_signed_routes(app, self)

    # -- the API --------------------------------------------------------------------

    async def upload(
        self,
        tenant: str,
        category: str,
        filename: str,
        data: Data,
        *,
        content_type: str = "application/octet-stream",
        public: bool = False,
    ) -> dict[str, Any]:
        """Store ``data`` (bytes or an async iterator of chunks) as a new file.

        Returns ``{key, url, cdn_url, size, etag, content_type, filename}``. If ``data``
        raises or the store fails, nothing is stored and the stats do not change.
        """
        key = make_key(tenant, category, filename)
        metadata = {"filename": quote(safe_filename(filename)), "public": str(int(public))}
        with self._timed("upload"):
            info = await self.backend.put(
                key, self._counted(_chunks(data)), content_type=content_type, metadata=metadata
            )
            try:
                await self.stats_store.add(tenant, category, 1, info.size)
            except BaseException:
                await self.backend.delete(key)  # keep the store and the totals in step
                raise
        return self.describe(info, public=public)

    async def put_key(self, key: str, data: Data, *, content_type: str) -> dict[str, Any]:
        """Write an existing key (the signed PUT route); the stats follow the new size."""
        tenant, category, _ = parse_key(key)
        old = await self.backend.head(key)
        meta = dict(old.metadata) if old else {"filename": quote(key.rsplit("-", 1)[-1])}
        with self._timed("upload"):
            info = await self.backend.put(
                key, self._counted(_chunks(data)), content_type=content_type, metadata=meta
            )
        files, prev = (0, old.size) if old else (1, 0)
        await self.stats_store.add(tenant, category, files, info.size - prev)
        return self.describe(info)

    async def download(self, key: str, *, tenant: str | None = None) -> AsyncIterator[bytes]:
        """The file's bytes in chunks; ObjectNotFound (404) if missing or another tenant's."""
        check_key(key, tenant)
        with self._timed("download"):
            chunks = await self.backend.get(key)
        return self._counted(chunks, "out")

    async def info(self, key: str, *, tenant: str | None = None) -> dict[str, Any]:
        check_key(key, tenant)
        found = await self.backend.head(key)
        if found is None:
            raise ObjectNotFound(key)
        return self.describe(found)

    async def exists(self, key: str, *, tenant: str | None = None) -> bool:
        try:
            check_key(key, tenant)
        except (ObjectNotFound, InvalidKey):
            return False
        with self._timed("exists"):
            return await self.backend.head(key) is not None

    async def delete(self, key: str, *, tenant: str | None = None) -> bool:
        """Remove the file; False when there was none."""
        owner, category, _ = check_key(key, tenant)
        with self._timed("delete"):
            found = await self.backend.head(key)
            if found is None or not await self.backend.delete(key):
                return False
        await self.stats_store.add(owner, category, -1, -found.size)
        return True

    async def list(
        self, tenant: str, category: str | None = None, prefix: str = ""
    ) -> list[dict[str, Any]]:
        """The tenant's files (in one category), whose name starts with ``prefix``."""
        if "/" in prefix or "\x00" in prefix or (prefix and category is None):
            raise InvalidKey("prefix is a file-name prefix within one category")
        base = tenant_prefix(tenant, category)
        with self._timed("list"):
            found = [i async for i in self.backend.list(base + prefix)]
        return [self.describe(i) for i in sorted(found, key=lambda i: i.key)]

    async def signed_url(
        self,
        key: str,
        expires_in: int = 3600,
        method: Method = "GET",
        *,
        tenant: str | None = None,
    ) -> str:
        """A URL allowing ``method`` (GET or PUT) on ``key`` for ``expires_in`` seconds."""
        check_key(key, tenant)
        if method not in ("GET", "PUT"):
            raise InvalidKey(f"method must be GET or PUT, not {method!r}")
        if not 1 <= expires_in <= self.settings.max_signed_expiry:
            limit = self.settings.max_signed_expiry
            raise InvalidKey(f"expires_in must be between 1 and {limit} seconds")
        if method == "GET" and await self.backend.head(key) is None:
            raise ObjectNotFound(key)
        with self._timed("sign"):
            return await self.backend.presign(key, method, expires_in)

    async def stats(self, tenant: str | None = None) -> dict[str, dict[str, Any]]:
        """``{tenant: {files, bytes, categories: {category: {files, bytes}}}}``."""
        return await self.stats_store.get(tenant)

    async def recount(self, tenant: str | None = None) -> dict[str, dict[str, Any]]:
        """Rebuild the totals (of one tenant, or all) from a listing of the store."""
        totals: dict[tuple[str, str], list[int]] = {}
        base = tenant_prefix(tenant) if tenant is not None else f"{ROOT}/"
        async for item in self.backend.list(base):
            try:
                owner, category, _ = parse_key(item.key)
            except InvalidKey:
                continue
            cell = totals.setdefault((owner, category), [0, 0])
            cell[0] += 1
            cell[1] += item.size
        rows = [(t, c, f, b) for (t, c), (f, b) in totals.items()]
        await self.stats_store.replace(tenant, rows)
        return await self.stats(tenant)

    # -- helpers --------------------------------------------------------------------

    def describe(self, info: ObjectInfo, *, public: bool | None = None) -> dict[str, Any]:
        if public is None:
            public = info.metadata.get("public") == "1"
        cdn = self.settings.cdn_base_url.rstrip("/")
        name = info.metadata.get("filename")
        return {
            "key": info.key,
            "url": self.backend.object_url(info.key),
            "cdn_url": f"{cdn}/{quote(info.key)}" if cdn and public else None,
            "size": info.size,
            "etag": info.etag,
            "content_type": info.content_type,
            "filename": unquote(name) if name else info.key.rsplit("/", 1)[-1][33:],
        }

    @contextmanager
    def _timed(self, op: str) -> Iterator[None]:
        started, outcome = time.perf_counter(), "error"
        try:
            yield
            outcome = "ok"
        except ObjectNotFound:
            outcome = "not_found"
            raise
        finally:
            if self.metrics is not None:
                self.metrics.done(op, outcome, time.perf_counter() - started)

    async def _counted(
        self, chunks: AsyncIterable[bytes], direction: str = "in"
    ) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if self.metrics is not None:
                self.metrics.bytes.labels(direction).inc(len(chunk))
            yield chunk

    # -- observability --------------------------------------------------------------

    def register_metrics(self, registry: CollectorRegistry) -> None:
        self.metrics = StorageMetrics(registry)

    async def refresh_metrics(self) -> None:
        if self.metrics is None:
            return
        totals = await self.stats()
        self.metrics.stored.labels("files").set(sum(t["files"] for t in totals.values()))
        self.metrics.stored.labels("bytes").set(sum(t["bytes"] for t in totals.values()))

    async def check_ready(self) -> Readiness | None:
        await self.backend.ping()
        return Readiness(ok=True, detail={"backend": self.backend.scheme}, critical=False)


def open_backend(url: str, settings: StorageSettings, secret: bytes) -> StorageBackend:
    """The backend registered for ``url``'s scheme (a missing extra names its install)."""
    cls: Any = registry.resolve_callable("storage", url)
    backend: StorageBackend = cls(url, settings, secret)
    return backend


async def _chunks(data: Data, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), size):
            yield bytes(view[start : start + size])
        return
    async for chunk in data:
        if chunk:
            yield bytes(chunk)
