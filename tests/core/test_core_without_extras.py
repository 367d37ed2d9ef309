"""The embedded defaults need none of the optional extras (redis, asyncpg, hiredis)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    for name in ("redis", "hiredis", "asyncpg", "openfeature"):
        sys.modules[name] = None  # any import of them now raises ImportError

    import httpx
    from headway.demo.app import create_app
    from headway.demo.seed import seed

    async def main():
        app = create_app()
        async with app.router.lifespan_context(app):
            hw = app.state.headway
            keys = await seed(hw.connections.engine())
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                auth = {"Authorization": f"Bearer {keys[0].key}"}
                r = await c.get("/api/v2/posts?limit=2&include=author", headers=auth)
                assert r.status_code == 200, r.text
                r = await c.get("/health/ready")
                assert r.status_code == 200, r.text
        print("ok")

    asyncio.run(main())
    """
)


def test_reference_service_runs_without_optional_extras(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HEADWAY_DEMO_SEED": "false"}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().endswith("ok")
