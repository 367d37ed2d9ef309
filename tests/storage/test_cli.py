"""``headway storage migrate`` (file -> s3, resumable, verified) and ``stats``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.storage.conftest import SECRET, make_bucket, s3_settings
from tests.storage.test_contract import chunks
from typer.testing import CliRunner

from headway.cli.storage import storage_app
from headway.storage import open_backend


def test_migrate_file_to_s3(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_url = f"file://{tmp_path / 'src'}"
    source = open_backend(source_url, s3_settings(moto_endpoint), SECRET)
    keys = [f"tenants/acme/docs/{i:032x}-f{i}.txt" for i in range(3)]

    async def fill() -> None:
        await source.start()
        for key in keys:
            await source.put(
                key,
                chunks(b"data-" + key.encode()),
                content_type="text/plain",
                metadata={"filename": "f"},
            )

    asyncio.run(fill())
    for name, value in {
        "ENDPOINT": moto_endpoint,
        "ACCESS_KEY_ID": "t",
        "SECRET_ACCESS_KEY": "testing",
        "CHUNK_SIZE": str(5 * 1024 * 1024),
    }.items():
        monkeypatch.setenv(f"HEADWAY_STORAGE_{name}", value)
    monkeypatch.setenv("HEADWAY_DATA_DIR", str(tmp_path / "data"))
    target_url = f"s3://{make_bucket(moto_endpoint)}"
    args = ["migrate", "--from", source_url, "--to", target_url]
    runner = CliRunner()

    dry = runner.invoke(storage_app, [*args, "--dry-run"])
    assert dry.exit_code == 0 and "would copy 3" in dry.output
    first = runner.invoke(storage_app, [*args, "--verify"])
    assert first.exit_code == 0, first.output
    assert "copied 3" in first.output
    again = runner.invoke(storage_app, args)
    assert "copied 0" in again.output and "3 already there" in again.output

    target = open_backend(target_url, s3_settings(moto_endpoint), SECRET)

    async def check() -> None:
        head = await target.head(keys[0])
        assert head is not None and head.content_type == "text/plain"
        assert head.metadata.get("filename") == "f"
        assert sorted([i.key async for i in source.list("tenants/")]) == keys  # untouched

    asyncio.run(check())


def test_migrate_same_store_is_usage_error() -> None:
    result = CliRunner().invoke(
        storage_app, ["migrate", "--from", "file:///x", "--to", "file:///x"]
    )
    assert result.exit_code == 2


def test_stats_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWAY_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(storage_app, ["stats", "--json"])
    assert result.exit_code == 0, result.output
