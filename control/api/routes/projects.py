"""Projects: owned by a group; its members (and admins) see and change them."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select

from control.api.access import project_of
from control.api.deps import Db, Id, Pages, Who
from control.api.errors import RESPONSES, forbidden
from control.api.schemas import Me, Page, ProjectIn, ProjectOut, ProjectPatch
from control.db.models import Group, Plan, Project

router = APIRouter(prefix="/api", tags=["projects"], responses=RESPONSES)


def _out(project: Project, group: str) -> ProjectOut:
    return ProjectOut(id=project.id, name=project.name, group=group, created_at=project.created_at)


@router.get("/me")
def me(db: Db, who: Who) -> Me:
    """Who the token belongs to, and their groups."""
    names = db.scalars(select(Group.name).where(Group.id.in_(who.groups)).order_by(Group.name))
    return Me(name=who.name, groups=list(names), is_admin=who.is_admin)


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, db: Db, who: Who) -> ProjectOut:
    """Create a project owned by one of the caller's groups (an admin may name any group, and
    creates it if it does not exist)."""
    group = db.scalar(select(Group).where(Group.name == body.group))
    if group is None:
        if not who.is_admin:
            raise forbidden(f"you are not a member of group {body.group!r}")
        group = Group(name=body.group)
        db.add(group)
        db.flush()
    if not who.owns(group.id):
        raise forbidden(f"you are not a member of group {body.group!r}")
    project = Project(name=body.name, group_id=group.id)
    db.add(project)
    db.flush()
    return _out(project, group.name)


@router.get("/projects")
def list_projects(db: Db, who: Who, page: Pages) -> Page[ProjectOut]:
    """The caller's groups' projects (every project for an admin), newest first."""
    query = select(Project, Group.name).join(Group, Project.group_id == Group.id)
    if not who.is_admin:
        query = query.where(Project.group_id.in_(who.groups))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.execute(query.order_by(Project.id.desc()).limit(page.limit).offset(page.offset)).all()
    return Page(
        items=[_out(p, g) for p, g in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/projects/{project_id}")
def get_project(project_id: Id, db: Db, who: Who) -> ProjectOut:
    project = project_of(db, who, project_id)
    return _out(project, db.get_one(Group, project.group_id).name)


@router.patch("/projects/{project_id}")
def rename_project(project_id: Id, body: ProjectPatch, db: Db, who: Who) -> ProjectOut:
    project = project_of(db, who, project_id)
    project.name = body.name
    return _out(project, db.get_one(Group, project.group_id).name)


@router.delete("/projects/{project_id}", status_code=204)
def delete_project(project_id: Id, request: Request, db: Db, who: Who) -> Response:
    """Delete the project with its plans, their files and its collections."""
    project = project_of(db, who, project_id)
    plan_ids = list(db.scalars(select(Plan.id).where(Plan.project_id == project.id)))
    db.delete(project)
    db.commit()  # the rows first: files of plans still in the database are never lost
    storage = request.app.state.files
    for plan_id in plan_ids:
        storage.delete_prefix(f"plans/{plan_id}/")
    return Response(status_code=204)
