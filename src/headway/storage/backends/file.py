"""``file:///dir``: objects as files under ``<dir>/objects``, metadata beside them.

A put writes ``<dir>/tmp/<uuid>``, fsyncs, then renames it into place (atomic on one
filesystem): readers see the old object or the whole new one, never a partial file.
Metadata (content type, user metadata, ETag) is a JSON file under ``<dir>/meta``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from headway.storage import signing
from headway.storage.base import InvalidKey, Method, ObjectInfo, ObjectNotFound, StorageBackend
from headway.storage.settings import StorageSettings


def root_of(url: str) -> Path:
    """``file:///abs/dir`` -> /abs/dir; ``file://rel/dir`` -> rel/dir (relative to cwd)."""
    parts = urlsplit(url)
    return Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)


class FileBackend(StorageBackend):
    scheme = "file"

    def __init__(self, url: str, settings: StorageSettings, secret: bytes) -> None:
        self.root = root_of(url).absolute()
        self.settings = settings
        self.secret = secret
        self.chunk_size = settings.chunk_size

    def _path(self, area: str, key: str) -> Path:
        if key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
            raise InvalidKey("not a storage key")
        return self.root / area / key

    async def start(self) -> None:
        for area in ("objects", "meta", "tmp"):
            (self.root / area).mkdir(parents=True, exist_ok=True)

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        metadata: Mapping[str, str],
    ) -> ObjectInfo:
        target, meta_path = self._path("objects", key), self._path("meta", key + ".json")
        tmp = self.root / "tmp" / uuid.uuid4().hex
        tmp.parent.mkdir(parents=True, exist_ok=True)
        md5, size = hashlib.md5(usedforsecurity=False), 0
        try:
            with tmp.open("wb") as fh:
                async for chunk in chunks:
                    md5.update(chunk)
                    size += len(chunk)
                    await asyncio.to_thread(fh.write, chunk)
                await asyncio.to_thread(os.fsync, fh.fileno())
            info = ObjectInfo(key, size, f'"{md5.hexdigest()}"', content_type, dict(metadata))
            await asyncio.to_thread(self._commit, tmp, target, meta_path, info)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return info

    @staticmethod
    def _commit(tmp: Path, target: Path, meta_path: Path, info: ObjectInfo) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"etag": info.etag, "content_type": info.content_type, "metadata": info.metadata}
        meta_tmp = tmp.with_suffix(".meta")
        meta_tmp.write_bytes(orjson.dumps(meta))
        os.replace(meta_tmp, meta_path)
        os.replace(tmp, target)

    async def get(self, key: str) -> AsyncIterator[bytes]:
        path = self._path("objects", key)
        try:
            fh = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        return self._read(fh)

    async def _read(self, fh: Any) -> AsyncIterator[bytes]:
        with fh:
            while chunk := await asyncio.to_thread(fh.read, self.chunk_size):
                yield chunk

    async def head(self, key: str) -> ObjectInfo | None:
        path = self._path("objects", key)
        try:
            size = path.stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        try:
            meta = orjson.loads(self._path("meta", key + ".json").read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            meta = {}
        return ObjectInfo(
            key, size, meta.get("etag"), meta.get("content_type"), meta.get("metadata") or {}
        )

    async def delete(self, key: str) -> bool:
        with contextlib.suppress(FileNotFoundError):
            self._path("meta", key + ".json").unlink()
        try:
            self._path("objects", key).unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return False
        return True

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        base = self.root / "objects"
        # Walk only the directory the prefix names, then filter on the rest.
        directory = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        if ".." in prefix.split("/") or not directory.is_dir():
            return
        for dirpath, _, files in os.walk(directory):
            for name in files:
                path = Path(dirpath) / name
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        yield ObjectInfo(key, path.stat().st_size)

    async def presign(self, key: str, method: Method, expires_in: int) -> str:
        path = signing.signed_path(self.secret, method, key, expires_in)
        return self.settings.public_base_url.rstrip("/") + path

    def object_url(self, key: str) -> str:
        return self._path("objects", key).as_uri()

    async def ping(self) -> None:
        if not os.access(self.root / "objects", os.W_OK):
            raise OSError(f"{self.root / 'objects'} is not writable")
