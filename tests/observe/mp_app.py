"""The app the multiprocess test serves with ``uvicorn --workers 2``."""

from __future__ import annotations

import os

from fastapi import FastAPI

from headway import Headway

app = FastAPI()


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


Headway().install(app)
