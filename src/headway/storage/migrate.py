"""Copy every object from one store to another (``headway storage migrate``).

Resumable: an object already at the target with the same size is skipped, so a rerun
after an interruption continues where it stopped. Nothing is deleted from the source.
``verify`` re-reads both sides and compares size and SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from headway.storage.base import ObjectInfo, StorageBackend
from headway.storage.keys import ROOT


@dataclass
class MigrateReport:
    total: int = 0
    copied: int = 0
    skipped: int = 0
    bytes: int = 0
    mismatched: list[str] = field(default_factory=list)


async def checksum(backend: StorageBackend, key: str) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    async for chunk in await backend.get(key):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


async def copy_one(source: StorageBackend, target: StorageBackend, item: ObjectInfo) -> int:
    head = await source.head(item.key)
    if head is None:  # deleted since the listing
        return 0
    chunks = await source.get(item.key)
    ctype = head.content_type or "application/octet-stream"
    info = await target.put(item.key, chunks, content_type=ctype, metadata=head.metadata)
    return info.size


async def migrate(
    source: StorageBackend,
    target: StorageBackend,
    *,
    dry_run: bool = False,
    verify: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> MigrateReport:
    """Copy what is missing; ``progress(done, total)`` after each object."""
    items = [i async for i in source.list(f"{ROOT}/")]
    report = MigrateReport(total=len(items))
    for done, item in enumerate(items, 1):
        existing = await target.head(item.key)
        if existing is not None and existing.size == item.size:
            report.skipped += 1
        elif not dry_run:
            report.bytes += await copy_one(source, target, item)
            report.copied += 1
        else:
            report.copied += 1
        if (
            verify
            and not dry_run
            and await checksum(source, item.key) != await checksum(target, item.key)
        ):
            report.mismatched.append(item.key)
        if progress is not None:
            progress(done, report.total)
    return report
