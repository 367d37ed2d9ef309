"""Storage keys: ``tenants/{tenant}/{category}/{uuid}-{safe filename}``.

Every part is sanitized so that a key never leaves its tenant's prefix: path separators,
``..``, NUL and control characters are removed from names, and :func:`check_key` refuses
any key that is not of this exact shape.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from headway.storage.base import InvalidKey, ObjectNotFound

ROOT = "tenants"
MAX_FILENAME = 150  # UTF-8 bytes
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_UNSAFE = re.compile(r"[^\w.\-+() ]", re.UNICODE)


def check_segment(kind: str, value: str) -> str:
    """A tenant or category: 1-64 characters of ``[A-Za-z0-9_.-]``, no ``..``."""
    if not _SEGMENT.match(value) or ".." in value:
        raise InvalidKey(f"invalid {kind} {value!r}: use 1-64 letters, digits, '_', '-', '.'")
    return value


def safe_filename(name: str) -> str:
    """The last path component of ``name`` with only harmless characters kept."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # NUL, controls
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    name = re.sub(r"\.{2,}", ".", name)
    if len(name.encode()) > MAX_FILENAME:  # bytes: a file system limits names to 255
        stem, dot, ext = name.rpartition(".")
        ext = dot + ext[:16] if dot else ""
        stem = stem if dot else name
        while len((stem + ext).encode()) > MAX_FILENAME:
            stem = stem[:-1]
        name = stem.rstrip(" .") + ext
    return name or "file"


def tenant_prefix(tenant: str, category: str | None = None) -> str:
    prefix = f"{ROOT}/{check_segment('tenant', tenant)}/"
    if category is not None:
        prefix += f"{check_segment('category', category)}/"
    return prefix


def make_key(tenant: str, category: str, filename: str) -> str:
    return f"{tenant_prefix(tenant, category)}{uuid.uuid4().hex}-{safe_filename(filename)}"


def parse_key(key: str) -> tuple[str, str, str]:
    """``(tenant, category, name)`` of a well-formed key; InvalidKey otherwise."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != ROOT:
        raise InvalidKey("not a storage key")
    _, tenant, category, name = parts
    check_segment("tenant", tenant)
    check_segment("category", category)
    if not name or name != safe_filename(name):
        raise InvalidKey("not a storage key")
    return tenant, category, name


def check_key(key: str, tenant: str | None = None) -> tuple[str, str, str]:
    """Parse ``key``; a key of another tenant is reported as missing (404), not forbidden."""
    parsed = parse_key(key)
    if tenant is not None and parsed[0] != tenant:
        raise ObjectNotFound(key)
    return parsed
