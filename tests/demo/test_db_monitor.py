"""The query monitor on the reference service: a deliberate lazy-load loop is reported."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from tests.demo.conftest import ADMIN_TOKEN, Demo

from headway.demo.auth import CurrentPrincipal, Session
from headway.demo.models import Post, User


async def test_a_lazy_load_loop_is_reported_as_n_plus_one(demo: Demo) -> None:
    # The service itself loads relations eagerly (its models refuse lazy loads); this test
    # route does what an ORM lazy load does: one author query per post.
    async def authors_one_by_one(
        request: Request, principal: CurrentPrincipal, session: Session
    ) -> dict[str, Any]:
        posts = (
            await session.scalars(
                select(Post).where(Post.tenant_id == principal.tenant_id).limit(20)
            )
        ).all()
        names = []
        for post in posts:
            author = await session.scalar(select(User).where(User.id == post.author_id))
            names.append(None if author is None else author.name)
        return {"authors": names}

    demo.app.add_api_route("/test/authors", authors_one_by_one)
    r = await demo.client.get("/test/authors", headers=demo.auth())
    assert r.status_code == 200 and len(r.json()["authors"]) == 20

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    reports = (await demo.client.get("/admin/db/metrics", headers=admin)).json()["n_plus_one"]
    mine = [rep for rep in reports if "users" in rep["fingerprint"]]
    assert mine, reports
    assert mine[0]["count"] == 10  # reported when the threshold is reached
    assert "test_db_monitor.py" in mine[0]["caller"]  # the call site in the app's code
    assert "/test/authors" in mine[0]["scope"]

    # the eager listing of 50 posts with their authors is not an N+1
    before = len(reports)
    r = await demo.client.get("/api/v2/posts?limit=50&include=author,tags", headers=demo.auth())
    assert r.status_code == 200
    after = (await demo.client.get("/admin/db/metrics", headers=admin)).json()["n_plus_one"]
    assert len(after) == before
