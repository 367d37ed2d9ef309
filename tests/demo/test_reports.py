"""The CSV report job: executions -> CSV in storage -> a signed link, tenant-scoped."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

from tests.demo.conftest import Demo


async def _wait(demo: Demo, path: str, tenant: str = "acme") -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(200):
        r = await demo.client.get(path, headers=demo.auth(tenant))
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in {"completed", "failed"}:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"stuck: {body}")


async def _execute(demo: Demo, prompt: str) -> int:
    r = await demo.client.get("/api/v2/agents?limit=1", headers=demo.auth())
    agent = r.json()["data"][0]["id"]
    r = await demo.client.post(
        f"/api/v1/agents/{agent}/execute", json={"prompt": prompt}, headers=demo.auth()
    )
    assert r.status_code == 202
    execution = int(r.json()["execution_id"])
    await _wait(demo, f"/api/v1/executions/{execution}")
    return execution


async def test_report_exports_the_tenants_executions_as_csv(demo: Demo) -> None:
    ids = [await _execute(demo, "hello"), await _execute(demo, "=cmd|' /C calc'!A0")]
    r = await demo.client.post("/api/v1/reports/executions", headers=demo.auth())
    assert r.status_code == 202
    report_id = r.json()["report_id"]
    assert r.headers["location"] == f"/api/v1/reports/{report_id}"
    done = await _wait(demo, f"/api/v1/reports/{report_id}")
    assert done["status"] == "completed", done
    assert done["rows"] >= 2 and done["url"]
    # the signed link downloads the CSV (local files are served by the service itself)
    download = await demo.client.get(done["url"])
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert {int(row["id"]) for row in rows} >= set(ids)
    assert all(row["status"] == "completed" for row in rows if int(row["id"]) in ids)
    # a tampered link is refused
    tampered = await demo.client.get(done["url"].replace("sig=", "sig=0"))
    assert tampered.status_code == 403
    # another tenant sees neither the report nor, in its own export, acme's executions
    assert (
        await demo.client.get(f"/api/v1/reports/{report_id}", headers=demo.auth("globex"))
    ).status_code == 404
    r = await demo.client.post("/api/v1/reports/executions", headers=demo.auth("globex"))
    other = await _wait(demo, f"/api/v1/reports/{r.json()['report_id']}", "globex")
    other_rows = list(csv.DictReader(io.StringIO((await demo.client.get(other["url"])).text)))
    assert not {int(row["id"]) for row in other_rows} & set(ids)


async def test_report_cells_cannot_become_spreadsheet_formulas(demo: Demo) -> None:
    await _execute(demo, "=HYPERLINK(1) [fail]")
    r = await demo.client.post("/api/v1/reports/executions", headers=demo.auth())
    done = await _wait(demo, f"/api/v1/reports/{r.json()['report_id']}")
    text = (await demo.client.get(done["url"])).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert any(r["prompt"] == "'=HYPERLINK(1) [fail]" for r in rows)
    assert any(r["status"] == "failed" and r["error"] for r in rows)
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value


async def test_unknown_or_malformed_report_ids(demo: Demo) -> None:
    r = await demo.client.get("/api/v1/reports/report-" + "0" * 32, headers=demo.auth())
    assert r.status_code == 404
    r = await demo.client.get("/api/v1/reports/../../etc", headers=demo.auth())
    assert r.status_code in (404, 422)
