"""Request dependencies: the database session and the caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from control.api.errors import ApiError
from control.api.schemas import Page
from control.auth import LOCAL, Caller, authenticate

E = TypeVar("E")
T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="an API token: `Authorization: Bearer shb_…`")


def session(request: Request) -> Iterator[Session]:
    """A session per request, committed when the endpoint returns and before the response is
    sent — a client's next request (to any replica) sees what this one did. An endpoint with
    side effects outside the database commits first itself."""
    with request.app.state.sessions() as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


Db = Annotated[Session, Depends(session, scope="function")]


def caller(
    request: Request,
    db: Db,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if request.app.state.settings.auth.mode == "none":
        return LOCAL
    if credentials is None:
        raise ApiError(401, "unauthenticated", "an API token is required: Authorization: Bearer …")
    who = authenticate(db, credentials.credentials)
    if who is None:
        raise ApiError(401, "unauthenticated", "unknown or revoked API token")
    return who


Who = Annotated[Caller, Depends(caller)]


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
