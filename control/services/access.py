"""Finding things on behalf of a caller: what is not theirs does not exist for them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from control.db.models import Collection, Plan, Project, Run
from control.errors import ConflictError, NotFoundError
from control.services.auth import Caller


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
    row = db.execute(
        select(Run, Project.group_id)
        .join(Collection, Run.collection_id == Collection.id)
        .join(Project, Collection.project_id == Project.id)
        .where(Run.id == run_id)
    ).first()
    if row is None or not who.owns(row[1]):
        raise NotFoundError(f"run {run_id}")
    return row[0]
