"""File storage: tenants' files on local disk or any S3-compatible store.

::

    info = await hw.storage.upload("acme", "avatars", "me.png", data, content_type="image/png")
    async for chunk in await hw.storage.download(info["key"], tenant="acme"): ...
    url = await hw.storage.signed_url(info["key"], expires_in=600)

Keys are ``tenants/{tenant}/{category}/{uuid}-{safe filename}``; the store is
``HEADWAY_STORAGE_URL`` (``file:///dir`` by default, ``s3://bucket`` with the ``s3``
extra). Per-tenant totals live in the hub's SQL database (see :mod:`.stats`).
"""

from __future__ import annotations

from headway import registry
from headway.storage.base import InvalidKey, ObjectInfo, ObjectNotFound, StorageBackend
from headway.storage.core import Storage, open_backend
from headway.storage.keys import make_key, safe_filename
from headway.storage.settings import StorageSettings

registry.register("storage", "file", "headway.storage.backends.file:FileBackend")
registry.register("storage", "s3", "headway.storage.backends.s3:S3Backend", extra="s3")

__all__ = [
    "InvalidKey",
    "ObjectInfo",
    "ObjectNotFound",
    "Storage",
    "StorageBackend",
    "StorageSettings",
    "make_key",
    "open_backend",
    "safe_filename",
]
