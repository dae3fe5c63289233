"""Plans and their files: one ``.jmx`` and any data files, checked on upload."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from control.api.deps import Ctx, Db, Id, Pages, Who
from control.api.errors import RESPONSES
from control.schemas import FileOut, Page, PlanIn, PlanOut
from control.services import plans

router = APIRouter(prefix="/api", tags=["plans"], responses=RESPONSES)


@router.post("/projects/{project_id}/plans", status_code=201)
def create_plan(project_id: Id, body: PlanIn, db: Db, who: Who) -> PlanOut:
    return plans.create(db, who, project_id, body.name)


@router.get("/projects/{project_id}/plans")
def list_plans(project_id: Id, db: Db, who: Who, page: Pages) -> Page[PlanOut]:
    return plans.listing(db, who, project_id, page)


@router.get("/plans/{plan_id}")
def get_plan(plan_id: Id, db: Db, who: Who) -> PlanOut:
    return plans.get(db, who, plan_id)


@router.patch("/plans/{plan_id}")
def rename_plan(plan_id: Id, body: PlanIn, db: Db, who: Who) -> PlanOut:
    return plans.rename(db, who, plan_id, body.name)


@router.delete("/plans/{plan_id}", status_code=204)
def delete_plan(plan_id: Id, ctx: Ctx, db: Db, who: Who) -> Response:
    plans.delete(db, ctx.files, who, plan_id)
    return Response(status_code=204)


@router.put(
    "/plans/{plan_id}/files/{name}",
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}, "required": True}},
)
async def upload_file(
    plan_id: Id, name: str, request: Request, ctx: Ctx, db: Db, who: Who
) -> FileOut:
    """Upload (or replace) a file of the plan; the body is the file's bytes."""
    length = request.headers.get("content-length")
    declared = int(length) if length is not None and length.isdigit() else None
    limits = ctx.settings.files
    return await plans.upload(db, ctx.files, who, plan_id, name, request.stream(),
                              limits.max_bytes, declared, jars=limits.plan_jars)  # fmt: skip


@router.get("/plans/{plan_id}/files")
def list_files(plan_id: Id, db: Db, who: Who) -> list[FileOut]:
    return plans.files_of(db, who, plan_id)


@router.get(
    "/plans/{plan_id}/files/{name}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_file(plan_id: Id, name: str, ctx: Ctx, db: Db, who: Who) -> StreamingResponse:
    chunks, sha256 = plans.download(db, ctx.files, who, plan_id, name)
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-SHA256": sha256,
        },
    )


@router.delete("/plans/{plan_id}/files/{name}", status_code=204)
def delete_file(plan_id: Id, name: str, ctx: Ctx, db: Db, who: Who) -> Response:
    plans.delete_file(db, ctx.files, who, plan_id, name)
    return Response(status_code=204)
