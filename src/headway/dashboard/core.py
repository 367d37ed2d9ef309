"""The dashboard object: templates, login guard, CSRF check, flash messages, audit.

Pages live under ``/admin/ui`` (``/admin`` redirects there): the JSON admin API keeps
``/admin/<capability>``. Every page needs a login (a signed session cookie); every
state-changing request is a POST whose form field ``csrf_token`` (or header
``X-CSRF-Token``, which htmx sends) matches the session. Without
``HEADWAY_ADMIN_TOKEN`` the dashboard does not exist (404), like the admin endpoints.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from headway.dashboard import views
from headway.dashboard.audit import AuditLog
from headway.dashboard.samples import Sampler
from headway.dashboard.security import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    FLASH_COOKIE,
    LoginThrottle,
    Session,
    Signer,
    digest,
    verify_password,
)
from headway.dashboard.settings import DashboardSettings
from headway.errors import HeadwayError
from headway.settings import load_section
from headway.web.errors import HTTPError

if TYPE_CHECKING:
    from headway.hub import Headway

log = logging.getLogger("headway.dashboard")

PREFIX = "/admin/ui"
MAX_FORM = 64 * 1024
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}
# Errors of the capability APIs that an operator's action can meet: shown, never a 500.
ACTION_ERRORS = (LookupError, ValueError, HeadwayError)

Handler = Callable[[Request, Session, dict[str, str]], Awaitable[tuple[str, str]]]

# What the pages are, in the navigation's order: (path, label, capability or None).
PAGES = (
    ("/", "Overview", None),
    ("/jobs", "Jobs", "jobs"),
    ("/workflows", "Workflows", "workflows"),
    ("/cache", "Cache", "cache"),
    ("/limits", "Rate limits", "limits"),
    ("/breakers", "Breakers", "breakers"),
    ("/flags", "Flags", "flags"),
    ("/webhooks", "Webhooks", "webhooks"),
    ("/storage", "Storage", "storage"),
    ("/database", "Database", "db"),
    ("/audit", "Audit log", None),
)


class Dashboard:
    """The admin UI of one hub (``hw.install(app)`` mounts it)."""

    def __init__(self, hw: Headway, settings: DashboardSettings | None = None) -> None:
        self.hw = hw
        self.settings = settings or load_section(DashboardSettings)
        self.env = Environment(
            loader=PackageLoader("headway.dashboard", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(views.FILTERS)
        self.sampler = Sampler(hw, self.settings.history, min_gap=1.0)
        self.throttle = LoginThrottle()
        self.router = APIRouter(include_in_schema=False)
        from headway.dashboard.routes import add_all

        add_all(self)

    # -- configuration ------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.settings.enabled and self.hw.settings.admin_token is not None

    @cached_property
    def signer(self) -> Signer:
        token = self.hw.settings.admin_token
        password = self.settings.password_hash
        credentials = b"|".join(
            [
                digest(token.get_secret_value()) if token else b"",
                password.get_secret_value().encode() if password else b"",
            ]
        )
        return Signer(self.hw.settings.secret_bytes(), credentials)

    @cached_property
    def audit_log(self) -> AuditLog:
        return AuditLog(self.hw.connections.engine())

    def has(self, capability: str) -> bool:
        return capability in self.hw.capabilities

    # -- credentials --------------------------------------------------------------------

    async def check_credential(self, supplied: str) -> str | None:
        """``"token"`` or ``"password"`` when ``supplied`` is one of them, else None."""
        token = self.hw.settings.admin_token
        if not supplied or len(supplied) > 1024 or token is None:
            return None
        if hmac.compare_digest(digest(supplied), digest(token.get_secret_value())):
            return "token"
        stored = self.settings.password_hash
        if stored is not None:
            ok = await asyncio.to_thread(verify_password, supplied, stored.get_secret_value())
            if ok:
                return "password"
        return None

    # -- requests -----------------------------------------------------------------------

    def require_enabled(self) -> None:
        if not self.enabled:
            raise HTTPError(404, "not_found", "Not Found")

    def session_of(self, request: Request) -> Session | None:
        return self.signer.load_session(request.cookies.get(COOKIE))

    def login_required(self, request: Request) -> Session:
        """The logged-in session, else a redirect to the login page."""
        self.require_enabled()
        session = self.session_of(request)
        if session is not None and session.authenticated:
            return session
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = f"{PREFIX}/login?next={quote(target, safe='')}"
        if request.headers.get("hx-request"):
            raise HTTPError(401, "unauthorized", "login required", headers={"HX-Redirect": login})
        raise HTTPError(303, "see_other", "login required", headers={"Location": login})

    async def form(self, request: Request) -> dict[str, str]:
        cached: dict[str, str] | None = getattr(request.state, "dashboard_form", None)
        if cached is not None:
            return cached
        body = await request.body()
        if len(body) > MAX_FORM:
            raise HTTPError(413, "payload_too_large", "form too large")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPError(400, "bad_request", "the form is not UTF-8") from None
        form = dict(parse_qsl(text, keep_blank_values=True))
        request.state.dashboard_form = form
        return form

    async def check_csrf(self, request: Request, session: Session | None) -> dict[str, str]:
        form = await self.form(request)
        supplied = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if session is None or not self.signer.csrf_ok(session, supplied):
            raise HTTPError(403, "forbidden", "missing or invalid CSRF token; reload the page")
        return form

    def action(self, name: str, path: str, handler: Handler) -> None:
        """A POST: login + CSRF, then ``handler`` -> (flash text, where to go); audited."""

        async def endpoint(request: Request) -> Response:
            session = self.login_required(request)
            form = await self.check_csrf(request, session)
            target = request.url.path
            try:
                message, goto = await handler(request, session, form)
            except ACTION_ERRORS as exc:
                message, goto = f"error: {exc}", safe_next(form.get("next"), PREFIX + "/")
                await self.record(request, session, name + "_failed", target, {"error": str(exc)})
                return self.redirect(goto, message, error=True)
            await self.record(request, session, name, target, _detail(form))
            return self.redirect(goto, message)

        endpoint.__name__ = f"dashboard_{name}"
        self.router.add_api_route(PREFIX + path, endpoint, methods=["POST"])

    async def record(
        self,
        request: Request,
        session: Session,
        action: str,
        target: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        address = request.client.host if request.client else ""
        try:
            await self.audit_log.record(session.actor or "-", action, target, detail, address)
        except Exception:  # the action happened: say so in the log, never hide it
            log.exception("dashboard audit log write failed for %s %s", action, target)

    # -- responses ----------------------------------------------------------------------

    def set_session(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self.signer.dump_session(session),
            max_age=int(self.settings.session_lifetime),
            path="/admin",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def redirect(self, url: str, message: str = "", *, error: bool = False) -> Response:
        response = RedirectResponse(url, status_code=303)
        if message:
            response.set_cookie(
                FLASH_COOKIE,
                self.signer.sign(b"flash", [message[:500], error]),
                max_age=60,
                path="/admin",
                httponly=True,
                samesite="strict",
            )
        return response

    def flash(self, request: Request) -> tuple[str, bool] | None:
        data = self.signer.unsign(b"flash", request.cookies.get(FLASH_COOKIE, ""))
        if isinstance(data, list) and len(data) == 2 and isinstance(data[0], str):
            return data[0], bool(data[1])
        return None

    def render(
        self,
        request: Request,
        session: Session,
        template: str,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        flash = self.flash(request)
        body = self.env.get_template(template).render(
            prefix=PREFIX,
            path=request.url.path,
            nav=self.nav(),
            csrf=self.signer.csrf_token(session),
            session=session,
            refresh=self.settings.refresh_interval,
            flash=flash,
            **context,
        )
        response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/admin")
        return response

    def nav(self) -> list[tuple[str, str]]:
        return [
            (PREFIX + path, label)
            for path, label, capability in PAGES
            if capability is None or self.has(capability)
        ]


def safe_next(value: str | None, default: str) -> str:
    """A local dashboard path (never another site: no scheme, no ``//``)."""
    if value and value.startswith(PREFIX) and "//" not in value and "\\" not in value:
        return value
    return default


def _detail(form: dict[str, str]) -> dict[str, Any]:
    return {k: v[:200] for k, v in form.items() if k not in (CSRF_FIELD, "next")}
