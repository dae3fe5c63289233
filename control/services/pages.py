"""One page of a listing, newest or oldest first, with the total."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from control.schemas import Page
from control.services.access import project_of
from control.services.auth import Caller

E = TypeVar("E")
T = TypeVar("T")


@dataclass(frozen=True)
class Paging:
    limit: int = 50
    offset: int = 0


def in_project(
    db: Session, who: Caller, project_id: int, model: Any, page: Paging, out: Callable[[Any], T]
) -> Page[T]:
    """One page of the caller's project's plans or collections (``model``), oldest first."""
    project = project_of(db, who, project_id)
    query = select(model).where(model.project_id == project.id)
    return paginate(db, query, model.id, page, out)


def paginate(
    db: Session, query: Select[E], order: Any, page: Paging, out: Callable[[E], T]
) -> Page[T]:
    """One page of ``query``'s rows in ``order``, with the total, each row through ``out``."""
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.order_by(order).limit(page.limit).offset(page.offset))
    return Page(items=[out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)
