"""The README stays true: its example runs, its configuration table is complete."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

import httpx

from headway.constants import BUILTIN_CAPABILITIES
from headway.settings import SECTIONS, Settings, env_name

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_runs() -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    namespace: dict[str, Any] = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    app = namespace["app"]

    async def run() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                assert (await c.get("/db")).json() == {"one": 1}
                r = await c.get("/things/11")
                assert r.status_code == 404
                assert r.json()["error"]["code"] == "not_found"

    import asyncio

    asyncio.run(run())


def test_every_setting_is_documented() -> None:
    # Import every built capability so that its settings section registers itself.
    for target in [*BUILTIN_CAPABILITIES.values(), "headway.dashboard:Dashboard"]:
        module = target.partition(":")[0]
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    text = README.read_text()
    names = [env_name(f) for f in Settings.model_fields]
    for prefix, section in SECTIONS.items():
        names += [prefix + f.upper() for f in section.model_fields]
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"settings missing from the README table: {missing}"


def test_quick_start_has_exactly_two_commands() -> None:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(commands) == 2
    assert commands[0].strip().endswith("headway serve")
    assert commands[1].strip().endswith("pytest")
