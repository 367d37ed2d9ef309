"""The storage backend contract: a flat key -> bytes store with a little metadata.

Semantics every backend keeps (checked by ``tests/storage/test_contract.py``):

- ``put`` consumes an async iterable of chunks and holds at most about one chunk (one
  S3 part) in memory. It is atomic: if the iterable raises or the store fails, no
  object (and no partial object) exists under the key afterwards, and a previous object
  under the key is untouched. It returns the stored size and an ETag.
- ``get`` raises :class:`ObjectNotFound` *before* it returns the chunk iterator.
- ``head`` and ``delete`` answer None / False for a missing key; they never raise for it.
- ``list`` yields every object whose key starts with ``prefix`` (any order).
- ``presign`` returns a URL that allows ``method`` on the key until ``expires_in``.
- Keys are already validated by :mod:`headway.storage.keys`; a backend must still never
  touch anything outside its root or bucket.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from headway.web.errors import HTTPError

Method = Literal["GET", "PUT"]


class ObjectNotFound(HTTPError):
    """No object under this key (or not one the caller's tenant may see): a 404."""

    def __init__(self, key: str) -> None:
        super().__init__(404, "not_found", "file not found")
        self.key = key


class InvalidKey(HTTPError):
    """A key that is not a storage key of headway's shape: a 400."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "bad_request", message)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store knows about one object. ``metadata`` is empty in listings."""

    key: str
    size: int
    etag: str | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class StorageBackend(ABC):
    """One store (a directory, a bucket). Subclasses implement the methods below only."""

    scheme: ClassVar[str] = ""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open clients, create the root directory."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients; safe to call twice."""

    @abstractmethod
    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        metadata: Mapping[str, str],
    ) -> ObjectInfo:
        """Store the chunks under ``key``, atomically (see the module docstring)."""

    @abstractmethod
    async def get(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes, in chunks of about ``chunk_size``."""

    @abstractmethod
    async def head(self, key: str) -> ObjectInfo | None:
        """Size, ETag, content type and metadata; None when missing."""

    @abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove the object; False when there was none."""

    @abstractmethod
    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix``."""

    @abstractmethod
    async def presign(self, key: str, method: Method, expires_in: int) -> str:
        """A URL that allows ``method`` on ``key`` for ``expires_in`` seconds."""

    @abstractmethod
    def object_url(self, key: str) -> str:
        """The object's plain (unsigned) address in this store."""

    @abstractmethod
    async def ping(self) -> None:
        """One cheap round trip; raises when the store cannot be used."""
