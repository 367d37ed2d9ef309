"""L1, keys, codec and settings on their own."""

from __future__ import annotations

import time

import pytest

from headway.cache import CacheSettings, CorruptValue
from headway.cache.codec import decode, encode
from headway.cache.keys import KeyBuilder, glob_regex, tenant_token
from headway.cache.l1 import L1, MISSING
from headway.errors import ConfigError
from headway.settings import SECTIONS, load_section


def test_l1_lru_by_entries_and_bytes() -> None:
    l1 = L1(max_entries=3, max_bytes=100, ttl=10)
    for k in "abc":
        l1.put(k, k, 10, 10, ())
    l1.get("a")  # a is now the most recent
    l1.put("d", "d", 10, 10, ())
    assert l1.get("b") is MISSING and l1.get("a") == "a"
    l1.put("big", "x", 90, 10, ())
    assert len(l1) == 2 and l1.bytes == 100 and l1.evictions == 3
    l1.put("huge", "x", 101, 10, ())
    assert l1.get("huge") is MISSING


def test_l1_ttl_tags_and_globs() -> None:
    l1 = L1(100, 10_000, ttl=0.05)
    l1.put("p:c:{1}:k:user:1", 1, 1, 60, ("t1",))
    l1.put("p:c:{1}:k:user:2", 2, 1, 60, ("t1", "t2"))
    l1.put("p:c:{2}:k:user:1", 3, 1, 60, ())
    assert l1.pop_tags(["t2"]) == 1 and l1.pop_tags(["t1"]) == 1
    assert l1.pop_matching(r"p:c:\{2\}:k:user:*") == 1
    l1.put("x", 1, 1, 60, ())
    time.sleep(0.06)
    assert l1.get("x") is MISSING and l1.bytes == 0


def test_glob_semantics() -> None:
    assert glob_regex("user:*").fullmatch("user:1:x")
    assert glob_regex("u?er").fullmatch("user")
    assert glob_regex("[^a]b").fullmatch("cb") and not glob_regex("[^a]b").fullmatch("ab")
    assert glob_regex(r"a\*").fullmatch("a*") and not glob_regex(r"a\*").fullmatch("ab")


def test_keys_are_cluster_safe_and_bounded() -> None:
    kb = KeyBuilder("hw", 64)
    assert kb.entry("user:1", 7) == "hw:c:{7}:k:user:1"
    assert kb.entry("user:1") == "hw:c:{~g}:k:user:1"
    assert tenant_token("a}b{") != "a}b{" and tenant_token("a}b{").startswith("~")
    assert len(kb.entry("x" * 10_000)) < 100
    assert kb.lock(kb.entry("k", 1)) == "hw:c:{1}:l:k"


def test_codec_roundtrip_and_corruption() -> None:
    raw = encode({"a": [1, 2]}, fresh_until=10.0, took=0.5, tags=("t",), compress_min=1)
    d = decode(raw)
    assert (d.value, d.fresh_until, d.tags) == ({"a": [1, 2]}, 10.0, ("t",))
    assert decode(b"42").value == 42
    for junk in (b"", b"junk", raw[:12], raw[:-3], b"\x00H\x00" + raw[3:]):
        with pytest.raises(CorruptValue):
            decode(junk)
    with pytest.raises(TypeError):
        encode(object(), fresh_until=1.0)


def test_settings_section(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SECTIONS["HEADWAY_CACHE_"] is CacheSettings
    monkeypatch.setenv("HEADWAY_CACHE_DEFAULT_TTL", "12")
    monkeypatch.setenv("HEADWAY_CACHE_TTL_PRESETS", '{"user": 5}')
    s = load_section(CacheSettings)
    assert s.default_ttl == 12 and s.ttl_presets == {"user": 5}
    monkeypatch.setenv("HEADWAY_CACHE_L1_TTL", "-1")
    with pytest.raises(ConfigError, match="HEADWAY_CACHE_L1_TTL"):
        load_section(CacheSettings)
    with pytest.raises(ConfigError, match="HEADWAY_CACHE_PREFIX"):
        load_section(CacheSettings, {"prefix": "a*b", "l1_ttl": 1})
