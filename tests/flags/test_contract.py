"""The flag store contract and the Flags API, on every store (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest
from tests.conftest import backend_params
from tests.flags.conftest import MakeFlags

from headway.flags import FlagExists, FlagNotFound, Flags

pytestmark = pytest.mark.parametrize("backend", backend_params("memory", "sqlite", "postgres"))


@pytest.fixture
async def flags(make_flags: MakeFlags, backend: str, backend_url: str) -> Flags:
    return await make_flags(backend_url)


async def test_store_versions_and_audit(flags: Flags) -> None:
    store = flags.store
    v0 = await store.version()
    v1 = await store.put("", "a", {"key": "a", "enabled": True}, "ann", create=True)
    assert v1 == v0 + 1
    with pytest.raises(FlagExists):
        await store.put("", "a", {"key": "a"}, "ann", create=True)
    v2 = await store.put("", "a", {"key": "a", "enabled": False}, "bob", create=False)
    v3 = await store.put("t1", "a", {"key": "a", "enabled": True}, "bob", create=True)
    version, rows = await store.load()
    assert (v2, v3, version) == (v1 + 1, v1 + 2, v3)
    assert {(r.tenant, r.key) for r in rows} == {("", "a"), ("t1", "a")}
    got = await store.get("", "a")
    assert got is not None and got.definition == {"key": "a", "enabled": False}
    assert got.updated_by == "bob" and got.updated_at is not None
    assert await store.delete("t1", "a", "cy") == v3 + 1
    with pytest.raises(FlagNotFound):
        await store.delete("t1", "a", "cy")
    log = await store.audit(key="a")
    assert [e.action for e in log] == ["delete", "create", "update", "create"]
    assert log[0].before == {"key": "a", "enabled": True} and log[0].after is None
    assert log[2].before == {"key": "a", "enabled": True}
    assert log[2].after == {"key": "a", "enabled": False} and log[2].actor == "bob"
    assert log[0].at is not None and log[0].at.tzinfo is not None
    assert len(await store.audit(tenant="t1")) == 2


async def test_flags_api_and_tenant_override(flags: Flags) -> None:
    await flags.save({"key": "beta", "enabled": False}, actor="ann")
    assert not await flags.is_enabled("beta", tenant="acme")
    await flags.save({"key": "beta", "enabled": True}, tenant="acme", actor="ann")
    assert await flags.is_enabled("beta", tenant="acme")
    assert not await flags.is_enabled("beta", tenant="globex")  # one tenant only
    await flags.update("beta", {"enabled": True})
    assert await flags.is_enabled("beta", tenant="globex")
    listed = await flags.list()
    assert [(f["key"], f["tenant"]) for f in listed] == [("beta", None), ("beta", "acme")]
    await flags.delete("beta", tenant="acme")
    assert flags.find("beta", "acme") is flags.find("beta")
    ev = await flags.evaluate("nope", default="x")
    assert (ev.value, ev.reason, ev.error_code) == ("x", "ERROR", "FLAG_NOT_FOUND")
    assert await flags.is_enabled("nope") is False
    assert await flags.is_enabled("nope", default=True) is True
    audit = await flags.audit("beta")
    assert audit[0]["action"] == "delete" and audit[-1]["actor"] == "ann"


async def test_defaults_seed_once(make_flags: MakeFlags, backend: str, backend_url: str) -> None:
    if backend == "memory":
        pytest.skip("memory:// is per hub")
    first = await make_flags(backend_url)
    await first.save({"key": "core-api", "enabled": False})
    from headway import Headway

    hw = Headway()
    second = hw.add(Flags(hw, first.settings, url=backend_url))
    second.defaults([{"key": "core-api", "enabled": True}, {"key": "new", "rollout": 5}])
    async with hw:
        assert not await second.is_enabled("core-api")  # existing flags are never changed
        assert second.find("new") is not None
