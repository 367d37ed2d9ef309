"""The backend registry: URL scheme -> class, lazy imports, install hints."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import headway.connections  # registers the "connection" backends
from headway import MissingExtraError, UnknownBackendError, registry
from headway.connections import Connections
from headway.settings import Settings


@pytest.fixture
def kind() -> Iterator[str]:
    """A backend kind of the test's own, emptied afterwards."""
    name = f"testkind-{uuid.uuid4().hex[:8]}"
    yield name
    for scheme in registry.schemes(name):
        registry.unregister(name, scheme)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of a fresh importable module holding a backend class and a factory."""
    name = f"hw_plugin_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "class DummyBackend:\n"
        "    def __init__(self, url):\n"
        "        self.url = url\n"
        "\n"
        "def make_backend(url):\n"
        "    return DummyBackend(url)\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_register_then_resolve_imports_the_class(kind: str, plugin: str) -> None:
    assert plugin not in sys.modules  # registering is lazy
    registry.register(kind, "dummy", f"{plugin}:DummyBackend")
    assert plugin not in sys.modules
    cls = registry.resolve(kind, "dummy://somewhere/0")
    assert cls.__name__ == "DummyBackend"
    assert cls.__module__ == plugin
    assert cls("dummy://x").url == "dummy://x"


def test_resolve_ignores_driver_suffix_and_case(kind: str, plugin: str) -> None:
    registry.register(kind, "Dummy", f"{plugin}:DummyBackend")
    assert registry.schemes(kind) == ["dummy"]
    assert registry.resolve(kind, "DUMMY+fast://h").__name__ == "DummyBackend"


def test_resolve_callable_returns_a_factory(kind: str, plugin: str) -> None:
    registry.register(kind, "dummy", f"{plugin}:make_backend")
    factory = registry.resolve_callable(kind, "dummy://h")
    assert callable(factory)
    assert factory("dummy://h").url == "dummy://h"  # type: ignore[operator]


def test_resolve_refuses_something_that_is_not_a_class(kind: str, plugin: str) -> None:
    registry.register(kind, "dummy", f"{plugin}:make_backend")
    with pytest.raises(TypeError, match="not a class"):
        registry.resolve(kind, "dummy://h")


def test_register_requires_module_colon_attr(kind: str) -> None:
    with pytest.raises(ValueError, match="module:attr"):
        registry.register(kind, "dummy", "just.a.module")


def test_unregister_removes_the_scheme(kind: str, plugin: str) -> None:
    registry.register(kind, "dummy", f"{plugin}:DummyBackend")
    registry.unregister(kind, "dummy")
    with pytest.raises(UnknownBackendError):
        registry.resolve(kind, "dummy://h")


def test_unknown_scheme_lists_the_known_ones(kind: str, plugin: str) -> None:
    registry.register(kind, "dummy", f"{plugin}:DummyBackend")
    registry.register(kind, "other", f"{plugin}:DummyBackend")
    with pytest.raises(UnknownBackendError) as info:
        registry.resolve(kind, "nosuch://host")
    message = str(info.value)
    assert "nosuch://" in message
    assert "dummy://" in message
    assert "other://" in message
    assert kind in message


def test_url_without_scheme_is_an_unknown_backend(kind: str, plugin: str) -> None:
    registry.register(kind, "dummy", f"{plugin}:DummyBackend")
    with pytest.raises(UnknownBackendError, match="dummy://"):
        registry.resolve(kind, "localhost:6379")


def test_unknown_backend_error_is_a_headway_error() -> None:
    with pytest.raises(headway.HeadwayError):
        registry.resolve("connection", "mongodb://x")


def test_missing_dependency_of_a_backend_names_the_extra(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"hw_needs_extra_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "import some_module_that_does_not_exist_xyz\n\nclass Backend:\n    pass\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.register(kind, "fancy", f"{name}:Backend", extra="redis")
    with pytest.raises(MissingExtraError) as info:
        registry.resolve(kind, "fancy://h")
    message = str(info.value)
    assert "pip install 'headway[redis]'" in message
    assert "some_module_that_does_not_exist_xyz" in message
    assert isinstance(info.value, ImportError)  # `except ImportError` still catches it


def test_missing_dependency_without_an_extra_is_a_plain_import_error(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"hw_broken_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "import some_module_that_does_not_exist_xyz\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.register(kind, "plain", f"{name}:Backend")
    with pytest.raises(ImportError) as info:
        registry.resolve(kind, "plain://h")
    assert not isinstance(info.value, MissingExtraError)


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` unimportable and forget headway's connection modules."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    for cached in ("headway.connections.redis", "headway.connections.postgres"):
        monkeypatch.delitem(sys.modules, cached, raising=False)


@pytest.mark.parametrize("url", ["redis://localhost", "rediss://localhost:6380/0"])
def test_redis_not_installed_names_the_redis_extra(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    _hide(monkeypatch, "redis", "redis.asyncio")
    with pytest.raises(MissingExtraError) as info:
        registry.resolve_callable("connection", url)
    assert "pip install 'headway[redis]'" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@localhost/db",
        "postgres://u@localhost/db",
        "postgresql+asyncpg://u@localhost/db",
    ],
)
def test_asyncpg_not_installed_names_the_postgres_extra(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    _hide(monkeypatch, "asyncpg")
    with pytest.raises(MissingExtraError) as info:
        registry.resolve_callable("connection", url)
    assert "pip install 'headway[postgres]'" in str(info.value)


async def test_connections_report_the_missing_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _hide(monkeypatch, "redis", "redis.asyncio")
    conns = Connections(Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/0"))
    try:
        with pytest.raises(MissingExtraError, match=r"headway\[redis\]"):
            conns.redis()
        # A check reports it instead of raising.
        result = await conns.check_redis()
        assert result.ok is False
        assert result.error is not None
        assert "headway[redis]" in result.error
    finally:
        await conns.close()


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("postgresql+asyncpg://u:p@h:5432/db", "postgresql"),
        ("postgresql://u@h/db", "postgresql"),
        ("SQLITE+aiosqlite:///x.db", "sqlite"),
        ("redis://h:6379/0", "redis"),
        ("memory://", "memory"),
        ("localhost:6379", ""),
        ("", ""),
    ],
)
def test_scheme_of(url: str, scheme: str) -> None:
    assert registry.scheme_of(url) == scheme


def test_connection_backends_are_registered() -> None:
    known = registry.schemes("connection")
    for scheme in ("sqlite", "postgresql", "postgres", "redis", "rediss", "unix"):
        assert scheme in known
    assert headway.connections.Connections is Connections
