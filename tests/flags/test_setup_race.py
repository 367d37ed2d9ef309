"""Several processes starting at once on a fresh database all set the flag store up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import asyncio, sys
from headway import Headway

async def main(url):
    hw = Headway(database_url=url)
    hw.flags
    async with hw:
        await hw.flags.is_enabled("anything")

asyncio.run(main(sys.argv[1]))
"""


def test_processes_racing_to_create_the_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, url], stderr=subprocess.PIPE, cwd=tmp_path)
        for _ in range(6)
    ]
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            errors.append(err.decode()[-800:])
    assert not errors, errors
