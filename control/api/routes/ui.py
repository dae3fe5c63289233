"""The web UI: its static pages and its sessions (docs/ui.md).

The pages are a small application of plain JavaScript modules (``control/ui/``) that call the
API itself, same origin, with the session cookie: what they show has passed the API's checks,
as for any other client. Served with a Content-Security-Policy that allows scripts, styles and
connections of this origin only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control.api.context import Context
from control.api.deps import Ctx, Db, Who, known, set_session
from control.api.routes import sso
from control.errors import UnauthenticatedError
from control.services import sessions
from control.services.auth import LOCAL, Caller

HERE = Path(__file__).resolve().parents[2]
PAGES = HERE / "ui"
VENDOR = HERE / "results" / "assets"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]  # fmt: skip

router = APIRouter(prefix="/ui", tags=["web UI"], include_in_schema=False)


class Login(BaseModel):
    token: str = Field(min_length=1, max_length=200, description="an API token (shb_…)")


class SessionOut(BaseModel):
    name: str | None
    """Who is logged in; None: nobody."""
    is_admin: bool
    csrf: str
    """Sent back as ``X-CSRF-Token`` with every change."""
    auth: str
    """The API's ``AUTH__MODE``: ``tokens``, or ``none`` (no login)."""
    sso: bool
    """Single sign-on is set up (``/ui/oidc/login``)."""


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(PAGES / "index.html", headers={"Cache-Control": "no-cache"})


@router.post("/login")
async def login(body: Login, request: Request, response: Response, ctx: Ctx,
                db: Db) -> SessionOut:  # fmt: skip
    """Exchange an API token for a session: the token never travels again, the cookie does."""
    who = await known(ctx, body.token)
    token = await run_in_threadpool(sessions.start, db, who, ctx.settings.auth.session_hours,
                                    "token")  # fmt: skip
    set_session(response, request, ctx, token)
    return _out(who, token, ctx)


@router.post("/logout", status_code=204)
async def logout(request: Request, response: Response, ctx: Ctx, db: Db, who: Who) -> None:
    """End the session (a change: it needs the CSRF token)."""
    token = request.cookies.get(sessions.COOKIE)
    if token:
        await run_in_threadpool(sessions.end, db, token)
        ctx.callers.forget(token)
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="strict")


@router.get("/session")
async def session(request: Request, ctx: Ctx) -> SessionOut:
    """Who the session is, with its CSRF token; nobody (``name`` null) without a valid one —
    a page's first question, answered without an error."""
    if ctx.settings.auth.mode == "none":
        return _out(LOCAL, "", ctx)
    token = request.cookies.get(sessions.COOKIE, "")
    try:
        who = await known(ctx, token) if token else None
    except UnauthenticatedError:
        who = None
    return _out(who, token, ctx)


def _out(who: Caller | None, token: str, ctx: Context) -> SessionOut:
    mode, sso = ctx.settings.auth.mode, ctx.oidc.enabled
    if who is None:
        return SessionOut(name=None, is_admin=False, csrf="", auth=mode, sso=sso)
    csrf = sessions.csrf_token(token) if token and who is not LOCAL else ""
    return SessionOut(name=who.name, is_admin=who.is_admin, csrf=csrf, auth=mode, sso=sso)


class SecurityHeaders:
    """The CSP and its companions on every answer under ``/ui``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (scope["path"] + "/").startswith("/ui/"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(sso.router)
    app.mount("/ui/static", StaticFiles(directory=PAGES), name="ui-static")
    app.mount("/ui/vendor", StaticFiles(directory=VENDOR, check_dir=False), name="ui-vendor")
    app.add_middleware(SecurityHeaders)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/ui/")
