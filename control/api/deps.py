"""Request dependencies: the database session and the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from control.api.errors import ApiError
from control.api.schemas import Page
from control.auth import LOCAL, Caller, KnownCallers, authenticate
from control.results.recent import Recent

E = TypeVar("E")
T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="an API token: `Authorization: Bearer shb_…`")


async def session(request: Request) -> AsyncIterator[Session]:
    """A session per request, committed when the endpoint returns and before the response is
    sent — a client's next request (to any replica) sees what this one did. An endpoint with
    side effects outside the database commits first itself. Opening a session does no I/O;
    ending it (commit or rollback, and returning the connection) runs in a worker thread."""
    s = request.app.state.sessions()
    try:
        yield s
        if s.in_transaction():
            await run_in_threadpool(s.commit)
    except BaseException:
        await run_in_threadpool(s.rollback)
        raise
    finally:
        await run_in_threadpool(s.close)


Db = Annotated[Session, Depends(session, scope="function")]


async def caller(
    request: Request,
    db: Db,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    settings = request.app.state.settings
    if settings.auth.mode == "none":
        return LOCAL
    if credentials is None:
        raise ApiError(401, "unauthenticated", "an API token is required: Authorization: Bearer …")
    known: KnownCallers = request.app.state.callers
    who = known.get(credentials.credentials)
    if who is None:
        who = await run_in_threadpool(authenticate, db, credentials.credentials)
        if who is None:
            raise ApiError(401, "unauthenticated", "unknown or revoked API token")
        known.remember(credentials.credentials, who)
    return who


Who = Annotated[Caller, Depends(caller)]


async def in_thread(db: Session, work: Callable[..., T], *args: Any) -> T:
    """Database work of an async endpoint, in a worker thread. Its transaction ends with it
    (committed, or rolled back on an error), so the connection goes back to the pool before
    the endpoint awaits anything else — a slow ClickHouse query or a Kafka send."""

    def run() -> T:
        try:
            result = work(*args)
        except BaseException:
            db.rollback()
            raise
        db.commit()
        return result

    return await run_in_threadpool(run)


async def shared_json(
    request: Request, key: Hashable, build: Callable[[], Awaitable[bytes]]
) -> Response:
    """The JSON ``build`` makes, shared with requests for the same ``key`` for
    ``results_cache_s`` — many people watching one run cost one query and one serialization
    per second. Only for answers the caller has been found allowed to see."""
    recent: Recent = request.app.state.answers
    return Response(await recent.get(key, build), media_type="application/json")


#: Ids in paths: the databases' integer keys are 32-bit.
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


class Paging:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=200, description="at most this many items")] = 50,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="skip this many items")] = 0,
    ) -> None:
        self.limit, self.offset = limit, offset


Pages = Annotated[Paging, Depends()]


def paginate(
    db: Session, query: Select[E], order: Any, page: Paging, out: Callable[[E], T]
) -> Page[T]:
    """One page of ``query``'s rows in ``order``, with the total, each row through ``out``."""
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.order_by(order).limit(page.limit).offset(page.offset))
    return Page(items=[out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)
