"""How a (tenant, key) becomes an L2 key, Redis-Cluster safe.

Layout (``P`` = ``HEADWAY_CACHE_PREFIX``, default ``hw``)::

    P:c:{<tenant>}:k:<key>     a value
    P:c:{<tenant>}:t:<tag>     the set of value keys carrying <tag>
    P:c:{<tenant>}:l:<key>     the loader lock of <key>
    P:c:inval                  the L1 invalidation channel (pub/sub)

The hash tag is the tenant, so every key a script touches for one tenant lives in one
slot. A tenant id outside ``[A-Za-z0-9_.@-]{1,64}`` is replaced by ``~`` + a digest; no
tenant at all is ``~g``. A key longer than ``max_key_length`` is replaced by ``#`` + its
SHA-256 (it then no longer matches a pattern).
"""

from __future__ import annotations

import hashlib
import re

_SAFE_TENANT = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
GLOBAL_TENANT = "~g"

Tenant = str | int | None


def glob_escape(text: str) -> str:
    """Escape Redis/fnmatch glob characters so that ``text`` matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def tenant_token(tenant: Tenant) -> str:
    if tenant is None:
        return GLOBAL_TENANT
    text = str(tenant)
    if _SAFE_TENANT.fullmatch(text):
        return text
    return "~" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def namespace_of(key: str) -> str:
    """The stats namespace of a key: what comes before its first ``:`` (or ``-``)."""
    head, sep, _ = key.partition(":")
    return head if sep else "-"


class KeyBuilder:
    """Builds the L2 keys of one cache (one prefix), memoizing the tenant spaces."""

    __slots__ = ("_spaces", "channel", "entry_prefixes", "max_len", "prefix")

    def __init__(self, prefix: str, max_key_length: int) -> None:
        self.prefix = prefix
        self.max_len = max_key_length
        self.channel = f"{prefix}:c:inval"
        self._spaces: dict[Tenant, str] = {}
        self.entry_prefixes: dict[Tenant, str] = {}

    def space(self, tenant: Tenant) -> str:
        space = self._spaces.get(tenant)
        if space is None:
            if len(self._spaces) > 100_000:
                self._spaces.clear()
            space = self._spaces[tenant] = f"{self.prefix}:c:{{{tenant_token(tenant)}}}"
        return space

    def entry_prefix(self, tenant: Tenant) -> str:
        """``P:c:{<tenant>}:k:``: a short key's entry key is this plus the key."""
        found = self.entry_prefixes.get(tenant)
        if found is None:
            if len(self.entry_prefixes) > 100_000:
                self.entry_prefixes.clear()
            found = self.entry_prefixes[tenant] = self.space(tenant) + ":k:"
        return found

    def name(self, key: str) -> str:
        if len(key) <= self.max_len:
            return key
        return "#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def entry(self, key: str, tenant: Tenant = None) -> str:
        if len(key) <= self.max_len:
            return self.entry_prefix(tenant) + key
        return self.entry_prefix(tenant) + self.name(key)

    def tag(self, tag: str, tenant: Tenant = None) -> str:
        return f"{self.space(tenant)}:t:{self.name(tag)}"

    def lock(self, entry_key: str) -> str:
        space, _, name = entry_key.partition(":k:")
        return f"{space}:l:{name}"

    def entry_pattern(self, pattern: str, tenant: Tenant = None) -> str:
        """A glob over the key names of one tenant; it cannot reach another tenant."""
        return f"{glob_escape(self.space(tenant))}:k:{pattern}"

    def tenant_pattern(self, tenant: Tenant) -> str:
        return f"{glob_escape(self.space(tenant))}:*"

    def all_pattern(self) -> str:
        return f"{glob_escape(self.prefix)}:c:{{*"


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Redis ``MATCH`` glob semantics (``* ? [abc] [^a] [a-z] \\x``) as a regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            i = _char_class(pattern, i, out)
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _char_class(pattern: str, i: int, out: list[str]) -> int:
    end = pattern.find("]", i + 1 if pattern[i : i + 1] == "^" else i)
    if end < 0:
        out.append(re.escape("["))
        return i
    body = pattern[i:end]
    negate = body.startswith("^")
    body = body[1:] if negate else body
    parts = [re.escape(c) if c != "-" else "-" for c in body.replace("\\", "")]
    out.append("[" + ("^" if negate else "") + "".join(parts) + "]")
    return end + 1
