"""Projects: owned by a group; its members (and admins) see and change them."""

from __future__ import annotations

from fastapi import APIRouter, Response

from control.api.deps import Ctx, Db, Id, Pages, Who
from control.api.errors import RESPONSES
from control.schemas import Me, Page, ProjectIn, ProjectOut, ProjectPatch
from control.services import projects

router = APIRouter(prefix="/api", tags=["projects"], responses=RESPONSES)


@router.get("/me")
def me(db: Db, who: Who) -> Me:
    """Who the token belongs to, and their groups."""
    return projects.me(db, who)


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, db: Db, who: Who) -> ProjectOut:
    """Create a project owned by one of the caller's groups (an admin may name any group, and
    creates it if it does not exist)."""
    return projects.create(db, who, body.name, body.group)


@router.get("/projects")
def list_projects(db: Db, who: Who, page: Pages) -> Page[ProjectOut]:
    """The caller's groups' projects (every project for an admin), newest first."""
    return projects.listing(db, who, page)


@router.get("/projects/{project_id}")
def get_project(project_id: Id, db: Db, who: Who) -> ProjectOut:
    return projects.get(db, who, project_id)


@router.patch("/projects/{project_id}")
def rename_project(project_id: Id, body: ProjectPatch, db: Db, who: Who) -> ProjectOut:
    return projects.rename(db, who, project_id, body.name)


@router.delete("/projects/{project_id}", status_code=204)
def delete_project(project_id: Id, ctx: Ctx, db: Db, who: Who) -> Response:
    """Delete the project with its plans, their files and its collections."""
    projects.delete(db, ctx.files, who, project_id)
    return Response(status_code=204)
