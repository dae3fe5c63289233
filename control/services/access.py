"""Finding things on behalf of a caller: what is not theirs does not exist for them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session

from control.db.database import Database
from control.db.models import Collection, Plan, Project, Run
from control.errors import ConflictError, NotFoundError
from control.results.recent import Recent
from control.services.auth import Caller

K = TypeVar("K", str, int)
T = TypeVar("T")
Reader = Callable[[Session, K], tuple[T, int] | None]


def name_free(
    db: Session,
    kind: type[Project] | type[Plan] | type[Collection],
    parent: int,
    name: str,
    itself: int | None = None,
) -> None:
    """Refuse ``name`` if another of ``kind`` under ``parent`` (a project's group, a plan's or a
    collection's project) has it: names address things in the CLI and in config files."""
    column = kind.group_id if kind is Project else kind.project_id  # type: ignore[union-attr]
    other = db.scalar(select(kind.id).where(column == parent, kind.name == name))
    if other is not None and other != itself:
        what = {Project: "project", Plan: "plan", Collection: "collection"}[kind]
        where = "in its group" if kind is Project else "in its project"
        raise ConflictError(f"a {what} named {name!r} exists already {where} (id {other})")


def project_of(db: Session, who: Caller, project_id: int) -> Project:
    project = db.get(Project, project_id)
    if project is None or not who.owns(project.group_id):
        raise NotFoundError(f"project {project_id}")
    return project


def plan_of(db: Session, who: Caller, plan_id: int) -> tuple[Plan, Project]:
    row = db.execute(
        select(Plan, Project).join(Project, Plan.project_id == Project.id).where(Plan.id == plan_id)
    ).first()
    if row is None or not who.owns(row[1].group_id):
        raise NotFoundError(f"plan {plan_id}")
    return row[0], row[1]


def _collection_and_group(db: Session, collection_id: int) -> tuple[Collection, int] | None:
    row = db.execute(
        select(Collection, Project.group_id)
        .join(Project, Collection.project_id == Project.id)
        .where(Collection.id == collection_id)
    ).first()
    return None if row is None else (row[0], row[1])


def collection_of(db: Session, who: Caller, collection_id: int) -> tuple[Collection, Project]:
    row = db.execute(
        select(Collection, Project)
        .join(Project, Collection.project_id == Project.id)
        .where(Collection.id == collection_id)
    ).first()
    if row is None or not who.owns(row[1].group_id):
        raise NotFoundError(f"collection {collection_id}")
    return row[0], row[1]


def run_of(db: Session, who: Caller, run_id: str) -> Run:
    found = _run_and_group(db, run_id)
    if found is None or not who.owns(found[1]):
        raise NotFoundError(f"run {run_id}")
    return found[0]


def _run_and_group(db: Session, run_id: str) -> tuple[Run, int] | None:
    row = db.execute(
        select(Run, Project.group_id)
        .join(Collection, Run.collection_id == Collection.id)
        .join(Project, Collection.project_id == Project.id)
        .where(Run.id == run_id)
    ).first()
    return None if row is None else (row[0], row[1])


class Owned(Generic[K, T]):
    """Rows (runs, collections) each with the group that owns it, read once per ``ttl_s``
    whoever asks: a second of many people polling a run costs one query, and a request that
    needs only the row opens no database session. For reads only — a row may be ``ttl_s``
    old, as the answers made from it are (``results_cache_s``); a change reads afresh
    (:func:`run_of`, :func:`collection_of`)."""

    def __init__(
        self, db: Database, ttl_s: float, what: str, read: Reader[K, T],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._db, self._what = db, what
        self._recent: Recent = Recent(ttl_s, clock)
        self._read: Reader[K, T] = read

    async def of(self, who: Caller, key: K) -> T:
        """The caller's row, else :class:`NotFoundError` (what is not theirs is not there). A
        row not found is not remembered: it may be committed a moment later."""
        row, group = await self._recent.get(key, lambda: to_thread.run_sync(self._row, key))
        if not who.owns(group):
            raise NotFoundError(f"{self._what} {key}")
        return row

    def _row(self, key: K) -> tuple[T, int]:
        with self._db.sessions() as db:  # expire_on_commit=False: the row stays readable
            found = self._read(db, key)
        if found is None:
            raise NotFoundError(f"{self._what} {key}")
        return found


def runs(
    db: Database, ttl_s: float, clock: Callable[[], float] = time.monotonic
) -> Owned[str, Run]:
    return Owned(db, ttl_s, "run", _run_and_group, clock)


def collections(db: Database, ttl_s: float) -> Owned[int, Collection]:
    return Owned(db, ttl_s, "collection", _collection_and_group)
