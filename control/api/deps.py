"""Request dependencies: the context the lifespan built, the database session and the caller."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Annotated, cast

from fastapi import Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from control.api.context import Context
from control.db.database import Session
from control.errors import ForbiddenError, UnauthenticatedError
from control.services import sessions
from control.services.auth import LOCAL, Caller, authenticate
from control.services.pages import Paging

_bearer = HTTPBearer(auto_error=False, description="an API token: `Authorization: Bearer shb_…`")


async def context(request: Request) -> Context:
    """Async, as every dependency on a request's path: FastAPI runs a plain ``def`` one in a
    worker thread, a hand-off that costs more than what it does here."""
    return cast(Context, request.app.state.context)


Ctx = Annotated[Context, Depends(context)]


async def session(ctx: Ctx) -> AsyncIterator[Session]:
    """A session per request, committed when the endpoint returns and before the response is
    sent — a client's next request (to any replica) sees what this one did. An endpoint with
    side effects outside the database commits first itself. Opening a session does no I/O, nor
    does closing one whose transaction has ended; a commit or rollback runs in a worker thread."""
    s = ctx.db.sessions()
    try:
        yield s
        if s.in_transaction():
            await run_in_threadpool(s.commit)
    except BaseException:
        await run_in_threadpool(s.rollback)
        raise
    finally:
        if s.in_transaction():
            await run_in_threadpool(s.close)
        else:
            s.close()


Db = Annotated[Session, Depends(session, scope="function")]


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Who calls: a bearer token, else the web UI's session cookie — whose state changes must
    carry its CSRF token (:mod:`control.services.sessions`). No database session of the
    request's own: most callers are known already, and a read that needs none opens none. The
    context is taken from the request, not as a dependency: FastAPI solves each dependency
    anew on every request, even one it has cached."""
    ctx = cast(Context, request.app.state.context)
    if ctx.settings.auth.mode == "none":
        return LOCAL
    if credentials is not None:
        token = credentials.credentials
    elif (token := request.cookies.get(sessions.COOKIE, "")) != "":
        if request.method not in sessions.SAFE_METHODS and not sessions.csrf_matches(
            token, request.headers.get(sessions.CSRF_HEADER)
        ):
            raise ForbiddenError(f"a change made with a session needs its {sessions.CSRF_HEADER}")
    else:
        raise UnauthenticatedError("an API token is required: Authorization: Bearer …")
    return await known(ctx, token)


async def known(ctx: Context, token: str) -> Caller:
    """The caller ``token`` (an API token or a session's) stands for, else 401; the database
    is asked (in a session of its own) only when the token is not known already."""
    who = ctx.callers.get(token)
    if who is None:
        who = await run_in_threadpool(_authenticate, ctx, token)
        if who is None:
            raise UnauthenticatedError("unknown, revoked or expired API token or session")
        ctx.callers.remember(token, who)
    return who


def _authenticate(ctx: Context, token: str) -> Caller | None:
    with ctx.db.sessions() as s:
        return authenticate(s, token)


Who = Annotated[Caller, Depends(caller)]


async def shared_json(
    ctx: Context, request: Request, key: Hashable, build: Callable[[], Awaitable[bytes]]
) -> Response:
    """The JSON ``build`` makes, shared with requests for the same ``key`` for
    ``results_cache_s`` — many people watching one run cost one query and one serialization
    per second — with an ``ETag``: a poller that sends it back (``If-None-Match``; a browser does
    by itself) gets ``304 Not Modified`` and no body while the answer is the same. Only for
    answers the caller has been found allowed to see."""

    async def tagged() -> tuple[bytes, str]:
        body = await build()
        return body, f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'

    body, etag = await ctx.answers.get(key, tagged)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in _tags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _tags(header: str) -> set[str]:
    """The entity tags of an ``If-None-Match`` (weak ones compare as strong: RFC 9110 §13.1.2)."""
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


#: Ids in paths: the databases' integer keys are 32-bit.
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


async def paging(
    limit: Annotated[int, Query(ge=1, le=200, description="at most this many items")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="skip this many items")] = 0,
) -> Paging:
    return Paging(limit, offset)


Pages = Annotated[Paging, Depends(paging)]


def set_session(response: Response, request: Request, ctx: Context, token: str) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Secure over TLS (or when told always)."""
    secure = ctx.settings.auth.secure_cookies == "always" or request.url.scheme == "https"
    response.set_cookie(sessions.COOKIE, token, max_age=int(ctx.settings.auth.session_hours * 3600),
                        path="/", secure=secure, httponly=True, samesite="strict")  # fmt: skip
