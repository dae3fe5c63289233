"""Projects: owned by a group; its members (and admins) see and change them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from control.db.models import Group, Plan, Project
from control.errors import ForbiddenError
from control.files.storage import FileStorage
from control.schemas import Me, Page, ProjectOut
from control.services.access import name_free, project_of
from control.services.auth import Caller
from control.services.pages import Paging, paginate


def me(db: Session, who: Caller) -> Me:
    names = db.scalars(select(Group.name).where(Group.id.in_(who.groups)).order_by(Group.name))
    return Me(name=who.name, groups=list(names), is_admin=who.is_admin)


def create(db: Session, who: Caller, name: str, group_name: str) -> ProjectOut:
    """A project owned by one of the caller's groups (an admin may name any group, and creates
    it if it does not exist)."""
    group = db.scalar(select(Group).where(Group.name == group_name))
    if group is None:
        if not who.is_admin:
            raise ForbiddenError(f"you are not a member of group {group_name!r}")
        group = Group(name=group_name)
        db.add(group)
        db.flush()
    if not who.owns(group.id):
        raise ForbiddenError(f"you are not a member of group {group_name!r}")
    name_free(db, Project, group.id, name)
    project = Project(name=name, group_id=group.id)
    db.add(project)
    db.flush()
    return _out(project, group.name)


def listing(db: Session, who: Caller, page: Paging) -> Page[ProjectOut]:
    """The caller's groups' projects (every project for an admin), newest first."""
    query = select(Project)
    if not who.is_admin:
        query = query.where(Project.group_id.in_(who.groups))
    projects = paginate(db, query, Project.id.desc(), page, lambda p: p)
    ids = {p.group_id for p in projects.items}
    names = dict(db.execute(select(Group.id, Group.name).where(Group.id.in_(ids))).all())
    return Page(items=[_out(p, names[p.group_id]) for p in projects.items], total=projects.total,
                limit=page.limit, offset=page.offset)  # fmt: skip


def get(db: Session, who: Caller, project_id: int) -> ProjectOut:
    project = project_of(db, who, project_id)
    return _out(project, db.get_one(Group, project.group_id).name)


def rename(db: Session, who: Caller, project_id: int, name: str) -> ProjectOut:
    project = project_of(db, who, project_id)
    name_free(db, Project, project.group_id, name, project.id)
    project.name = name
    return _out(project, db.get_one(Group, project.group_id).name)


def delete(db: Session, files: FileStorage, who: Caller, project_id: int) -> None:
    """Delete the project with its plans, their files and its collections."""
    project = project_of(db, who, project_id)
    plan_ids = list(db.scalars(select(Plan.id).where(Plan.project_id == project.id)))
    db.delete(project)
    db.commit()  # the rows first: files of plans still in the database are never lost
    for plan_id in plan_ids:
        files.delete_prefix(f"plans/{plan_id}/")


def _out(project: Project, group: str) -> ProjectOut:
    return ProjectOut(id=project.id, name=project.name, group=group, created_at=project.created_at)
