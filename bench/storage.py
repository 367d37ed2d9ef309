"""Storage figures: RSS growth while uploading a 200 MB file, upload/download MB/s.

    python bench/storage.py [--mb 200]

Runs the ``file://`` backend and the ``s3://`` backend against a local moto server
(started here on 127.0.0.1, stopped by PID). Prints JSON. The baseline is the RSS just
before the upload; the figure is the peak RSS sampled every 5 ms during it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from headway import Headway
from headway.storage import Storage, StorageSettings

CHUNK = 1024 * 1024


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def data(total_mb: int) -> AsyncIterator[bytes]:
    block = os.urandom(CHUNK)
    for _ in range(total_mb):
        yield block


async def run(url: str, settings: StorageSettings, total_mb: int, tmp: Path) -> dict[str, float]:
    hw = Headway(storage_url=url, data_dir=tmp / "data", database_url=f"sqlite:///{tmp}/b.db")
    storage = hw.add(Storage(hw, settings))
    async with hw:
        await storage.upload("bench", "warm", "w.bin", b"x" * CHUNK)
        base, peak = rss_mb(), 0.0

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, rss_mb())
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        t0 = time.perf_counter()
        info = await storage.upload("bench", "big", "big.bin", data(total_mb))
        up = time.perf_counter() - t0
        t0, n = time.perf_counter(), 0
        async for chunk in await storage.download(info["key"]):
            n += len(chunk)
        down = time.perf_counter() - t0
        sampler.cancel()
        assert n == total_mb * CHUNK
    return {
        "rss_growth_mb": round(peak - base, 1),
        "upload_mb_s": round(total_mb / up, 1),
        "download_mb_s": round(total_mb / down, 1),
    }


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = str(Path(sys.executable).parent / "moto_server")
    proc = subprocess.Popen([cmd, "-H", "127.0.0.1", "-p", str(port)], stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, endpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    out: dict[str, object] = {"file_mb": args.mb, "chunk_mb": 8}
    with tempfile.TemporaryDirectory() as tmp:
        out["file"] = asyncio.run(run(f"file://{tmp}/store", StorageSettings(), args.mb, Path(tmp)))
    proc, endpoint = start_moto()
    try:
        httpx.put(f"{endpoint}/bench-bucket").raise_for_status()
        settings = StorageSettings(
            endpoint=endpoint,
            access_key_id="x",
            secret_access_key="x",  # type: ignore[arg-type]
        )
        with tempfile.TemporaryDirectory() as tmp:
            out["s3_moto"] = asyncio.run(run("s3://bench-bucket", settings, args.mb, Path(tmp)))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
