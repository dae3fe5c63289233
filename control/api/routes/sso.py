"""Single sign-on for the web UI (:mod:`control.services.oidc`): ``/ui/oidc/login`` sends the
browser to the provider, ``/ui/oidc/callback`` takes it back with a session. No token ever
travels in a URL: the provider's code does, once, and is worth nothing without the verifier the
browser kept in an HttpOnly cookie."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from control.api.deps import Ctx, Db, set_session
from control.errors import InvalidError, NotFoundError
from control.services import oidc, sessions

router = APIRouter(prefix="/ui/oidc", include_in_schema=False)

PENDING_COOKIE = "shibuya_oidc"
PENDING_S = 600
CALLBACK = "/ui/oidc/callback"


def _redirect_uri(request: Request, public_url: str) -> str:
    base = public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return base + CALLBACK


@router.get("/login")
async def login(request: Request, ctx: Ctx) -> RedirectResponse:
    if not ctx.oidc.enabled:
        raise NotFoundError("single sign-on (OIDC__ISSUER is not set)")
    url, pending = await ctx.oidc.authorization_url(
        _redirect_uri(request, ctx.settings.oidc.public_url)
    )
    out = RedirectResponse(url, status_code=302)
    # Lax, not Strict: the provider's redirect back is a navigation from another site.
    out.set_cookie(PENDING_COOKIE, pending.dump(), max_age=PENDING_S, path="/ui/oidc",
                   secure=request.url.scheme == "https", httponly=True, samesite="lax")  # fmt: skip
    return out


@router.get("/callback")
async def callback(
    request: Request, ctx: Ctx, db: Db, code: str = "", state: str = "", error: str = ""
) -> RedirectResponse:
    if not ctx.oidc.enabled:
        raise NotFoundError("single sign-on (OIDC__ISSUER is not set)")
    if error:
        raise InvalidError(f"the identity provider refused the login: {error[:200]}")
    pending = oidc.Pending.load(request.cookies.get(PENDING_COOKIE, ""))
    if pending is None or not state or not hmac.compare_digest(pending.state, state):
        raise InvalidError("this login was not started here, or took longer than 10 minutes: "
                           "start again from the login page")  # fmt: skip
    if not code or len(code) > 2000:
        raise InvalidError("the provider sent no code back")
    who = await ctx.oidc.identity(
        code, pending, _redirect_uri(request, ctx.settings.oidc.public_url)
    )
    caller = await run_in_threadpool(oidc.sign_in, db, who)
    token = await run_in_threadpool(sessions.start, db, caller, ctx.settings.auth.session_hours,
                                    "single sign-on")  # fmt: skip
    out = RedirectResponse("/ui/", status_code=303)
    set_session(out, request, ctx, token)
    out.delete_cookie(PENDING_COOKIE, path="/ui/oidc", httponly=True, samesite="lax")
    return out
