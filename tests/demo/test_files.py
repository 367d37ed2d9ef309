"""File uploads in the reference service: limits, content types, tenants, signed URLs."""

from __future__ import annotations

from tests.demo.conftest import Demo

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _upload(demo: Demo, tenant: str, body: bytes, name: str, ctype: str, cat: str) -> object:
    return await demo.client.post(
        f"/api/v1/files?category={cat}",
        files={"file": (name, body, ctype)},
        headers=demo.auth(tenant),
    )


async def test_upload_list_sign_download_delete(demo: Demo) -> None:
    r = await _upload(demo, "acme", PNG, "../../me.png", "image/png", "avatars")
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    info = r.json()  # type: ignore[attr-defined]
    assert info["size"] == len(PNG) and info["key"].startswith("tenants/1/avatars/")
    assert ".." not in info["key"]
    assert (await demo.hw.storage.stats("1"))["1"]["files"] == 1
    files = (await demo.client.get("/api/v1/files", headers=demo.auth())).json()["data"]
    assert [f["id"] for f in files] == [info["id"]]
    url = (await demo.client.get(f"/api/v1/files/{info['id']}/url", headers=demo.auth())).json()
    got = await demo.client.get(url["url"])
    assert got.status_code == 200 and got.content == PNG
    tampered = url["url"].replace("sig=", "sig=x")
    assert (await demo.client.get(tampered)).status_code == 403
    # another tenant: not found, whatever it tries
    g = demo.auth("globex")
    assert (await demo.client.get(f"/api/v1/files/{info['id']}/url", headers=g)).status_code == 404
    assert (await demo.client.delete(f"/api/v1/files/{info['id']}", headers=g)).status_code == 404
    assert (await demo.client.get("/api/v1/files", headers=g)).json()["data"] == []
    r = await demo.client.delete(f"/api/v1/files/{info['id']}", headers=demo.auth())
    assert r.status_code == 204
    assert (await demo.client.get("/api/v1/files", headers=demo.auth())).json()["data"] == []


async def test_bad_uploads_are_refused_and_leave_nothing(demo: Demo) -> None:
    big = PNG + b"\x00" * (5 * 1024 * 1024)
    r = await _upload(demo, "acme", big, "big.png", "image/png", "avatars")
    assert r.status_code == 413  # type: ignore[attr-defined]
    r = await _upload(demo, "acme", b"%PDF-1.4 not an image", "x.png", "image/png", "avatars")
    assert r.status_code == 415  # type: ignore[attr-defined]
    r = await _upload(demo, "acme", PNG, "x.png", "image/png", "secrets")
    assert r.status_code == 400  # type: ignore[attr-defined]
    assert (await demo.client.get("/api/v1/files", headers=demo.auth())).json()["data"] == []
    stats = await demo.hw.storage.stats("1")
    assert stats.get("1", {}).get("files", 0) == 0


async def test_uploads_count_against_the_upload_policy(demo: Demo) -> None:
    codes = []
    for i in range(11):  # upload: 10/minute per tenant
        r = await _upload(demo, "globex", PNG, f"{i}.png", "image/png", "avatars")
        codes.append(r.status_code)  # type: ignore[attr-defined]
    assert codes[:10] == [201] * 10 and codes[10] == 429
