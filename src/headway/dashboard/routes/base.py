"""Login, logout, the static files and the audit log page."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from headway.dashboard.core import PREFIX, SECURITY_HEADERS, safe_next
from headway.dashboard.routes import page
from headway.dashboard.security import COOKIE, Session
from headway.web.errors import HTTPError

if TYPE_CHECKING:
    from headway.dashboard.core import Dashboard

STATIC = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "NOTICE": "text/plain; charset=utf-8",
}


def add(d: Dashboard) -> None:
    add_entry(d)
    add_login(d)

    @page(d, "/audit")
    async def audit(request: Request, session: Session) -> Response:
        action = request.query_params.get("action") or None
        entries = await d.audit_log.recent(300, action)
        return d.render(request, session, "audit.html", entries=entries, action=action)

    async def logout(request: Request) -> Response:
        session = d.login_required(request)
        await d.check_csrf(request, session)
        await d.record(request, session, "logout", PREFIX + "/logout")
        response = RedirectResponse(PREFIX + "/login", status_code=303)
        response.delete_cookie(COOKIE, path="/admin")
        return response

    d.router.add_api_route(PREFIX + "/logout", logout, methods=["POST"])


def add_entry(d: Dashboard) -> None:
    async def to_overview(request: Request) -> Response:
        d.require_enabled()
        return RedirectResponse(PREFIX + "/", status_code=303)

    for path in ("/admin", "/admin/", PREFIX):
        d.router.add_api_route(path, to_overview, methods=["GET"])

    async def static(request: Request) -> Response:
        d.require_enabled()
        name = request.path_params["name"]
        if name not in STATIC:
            raise HTTPError(404, "not_found", "Not Found")
        data = (resources.files("headway.dashboard") / "static" / name).read_bytes()
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return Response(data, media_type=STATIC[name], headers=headers)

    d.router.add_api_route(PREFIX + "/static/{name}", static, methods=["GET"])


def add_login(d: Dashboard) -> None:
    async def login_form(request: Request) -> Response:
        d.require_enabled()
        session = d.session_of(request)
        goto = safe_next(request.query_params.get("next"), PREFIX + "/")
        if session is not None and session.authenticated:
            return RedirectResponse(goto, status_code=303)
        return _login_page(d, request, session, goto)

    async def login(request: Request) -> Response:
        d.require_enabled()
        session = d.session_of(request)
        form = await d.check_csrf(request, session)
        assert session is not None  # check_csrf refuses a request without one
        goto = safe_next(form.get("next"), PREFIX + "/")
        address = request.client.host if request.client else ""
        wait = d.throttle.wait(address)
        if wait:
            text = f"Too many failed logins: try again in {wait:.0f} s."
            return _login_page(d, request, session, goto, text, 429)
        actor = await d.check_credential(form.get("credential", "").strip())
        if actor is None:
            d.throttle.failed(address)
            await d.record(request, session, "login_failed", PREFIX + "/login")
            return _login_page(d, request, session, goto, "Wrong token or password.", 401)
        d.throttle.succeeded(address)
        fresh = d.signer.new_session(actor, d.settings.session_lifetime)
        await d.record(request, fresh, "login", PREFIX + "/login")
        response = RedirectResponse(goto, status_code=303)
        d.set_session(response, request, fresh)
        return response

    d.router.add_api_route(PREFIX + "/login", login_form, methods=["GET"])
    d.router.add_api_route(PREFIX + "/login", login, methods=["POST"])


def _login_page(
    d: Dashboard,
    request: Request,
    session: Session | None,
    goto: str,
    error: str = "",
    status: int = 200,
) -> Response:
    """The form, with an anonymous session (its CSRF token) created when there is none."""
    if session is None:
        session = d.signer.new_session(None, 3600)
    response = d.render(request, session, "login.html", status, next=goto, error=error)
    d.set_session(response, request, session)
    response.headers.update(SECURITY_HEADERS)
    return response
