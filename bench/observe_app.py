"""The app bench/observe.py serves: a cheap endpoint, observe on or off by environment."""

from __future__ import annotations

from fastapi import FastAPI

from headway import Headway

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


Headway().install(app)
