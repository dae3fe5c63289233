"""Plans and their files: one ``.jmx`` and any data files, checked on upload."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from defusedxml import ElementTree
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from control.api.access import plan_of, project_of
from control.api.deps import Db, Id, Pages, Who, paginate
from control.api.errors import RESPONSES, ApiError, conflict, invalid, not_found
from control.api.schemas import FileOut, Page, PlanIn, PlanOut
from control.db.models import Plan, PlanFile, now
from control.files.storage import FileStorage, TooLargeError

router = APIRouter(prefix="/api", tags=["plans"], responses=RESPONSES)

#: Safe file names: no path, no leading dot, printable ASCII letters, digits and ``._ -``.
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,254}$")
DATA_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".json", ".dat"})


def _files(db: Db, plan_id: Id) -> list[FileOut]:
    rows = db.scalars(select(PlanFile).where(PlanFile.plan_id == plan_id).order_by(PlanFile.name))
    return [
        FileOut(name=f.name, kind=f.kind, size_bytes=f.size_bytes, sha256=f.sha256,
                uploaded_at=f.uploaded_at)
        for f in rows
    ]  # fmt: skip


def _out(db: Db, plan: Plan) -> PlanOut:
    return PlanOut(id=plan.id, project_id=plan.project_id, name=plan.name,
                   created_at=plan.created_at, files=_files(db, plan.id))  # fmt: skip


@router.post("/projects/{project_id}/plans", status_code=201)
def create_plan(project_id: Id, body: PlanIn, db: Db, who: Who) -> PlanOut:
    project = project_of(db, who, project_id)
    plan = Plan(project_id=project.id, name=body.name)
    db.add(plan)
    db.flush()
    return _out(db, plan)


@router.get("/projects/{project_id}/plans")
def list_plans(project_id: Id, db: Db, who: Who, page: Pages) -> Page[PlanOut]:
    project = project_of(db, who, project_id)
    query = select(Plan).where(Plan.project_id == project.id)
    return paginate(db, query, Plan.id, page, lambda p: _out(db, p))


@router.get("/plans/{plan_id}")
def get_plan(plan_id: Id, db: Db, who: Who) -> PlanOut:
    return _out(db, plan_of(db, who, plan_id)[0])


@router.patch("/plans/{plan_id}")
def rename_plan(plan_id: Id, body: PlanIn, db: Db, who: Who) -> PlanOut:
    plan, _ = plan_of(db, who, plan_id)
    plan.name = body.name
    return _out(db, plan)


@router.delete("/plans/{plan_id}", status_code=204)
def delete_plan(plan_id: Id, request: Request, db: Db, who: Who) -> Response:
    plan, _ = plan_of(db, who, plan_id)
    db.delete(plan)
    db.commit()  # refused while a collection uses the plan (a foreign key)
    request.app.state.files.delete_prefix(f"plans/{plan_id}/")
    return Response(status_code=204)


def _kind(name: str) -> str:
    if not FILE_NAME.match(name) or ".." in name:
        raise invalid(
            f"file name {name!r}: use letters, digits, '.', '_', '-' and spaces, starting with a "
            "letter or digit, at most 255 characters"
        )
    suffix = Path(name).suffix.lower()
    if suffix == ".jmx":
        return "jmx"
    if suffix in DATA_SUFFIXES:
        return "csv" if suffix == ".csv" else "data"
    accepted = ", ".join(sorted(DATA_SUFFIXES))
    raise ApiError(
        415, "unsupported_file", f"{name}: a plan takes one .jmx and data files ({accepted})"
    )


def _check_content(storage: FileStorage, key: str, name: str, kind: str) -> None:
    """A JMX must be a JMeter test plan; CSV and text data must be UTF-8."""
    path = storage.path(key)
    assert path is not None
    if kind == "jmx":
        try:
            root = ElementTree.parse(path).getroot()
        except Exception as exc:  # defusedxml refuses entities; ParseError for bad XML
            raise invalid(f"{name} is not a JMeter test plan: {exc}") from exc
        tag = "" if root is None else root.tag
        if tag != "jmeterTestPlan":
            raise invalid(f"{name} is not a JMeter test plan: its root is <{tag}>")
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in storage.read(key):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise invalid(f"{name} is not UTF-8 text (byte {exc.start} of a chunk)") from exc


@router.put(
    "/plans/{plan_id}/files/{name}",
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}, "required": True}},
)
async def upload_file(plan_id: Id, name: str, request: Request, db: Db, who: Who) -> FileOut:
    """Upload (or replace) a file of the plan; the body is the file's bytes."""
    plan, _ = plan_of(db, who, plan_id)
    kind = _kind(name)
    if kind == "jmx":
        jmx = (PlanFile.plan_id == plan.id, PlanFile.kind == "jmx", PlanFile.name != name)
        other = db.scalar(select(PlanFile.name).where(*jmx))
        if other is not None:
            raise conflict(f"plan {plan.id} has a test plan already ({other}); delete it first")
    limit: int = request.app.state.settings.files.max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"{name}: larger than the limit of {limit:,} bytes")
    storage: FileStorage = request.app.state.files
    key = f"plans/{plan.id}/{name}"
    try:
        stored = await storage.put(key, request.stream(), limit)
    except TooLargeError as exc:
        raise ApiError(413, "too_large", f"{name}: {exc}") from exc
    try:
        _check_content(storage, key, name, kind)
    except ApiError:
        storage.delete(key)
        raise
    row = db.scalar(select(PlanFile).where(PlanFile.plan_id == plan.id, PlanFile.name == name))
    if row is None:
        row = PlanFile(plan_id=plan.id, name=name, kind=kind, size_bytes=0, sha256="")
        db.add(row)
    row.size_bytes, row.sha256, row.uploaded_at = stored.size_bytes, stored.sha256, now()
    db.flush()
    return FileOut(name=name, kind=kind, size_bytes=stored.size_bytes, sha256=stored.sha256,
                   uploaded_at=row.uploaded_at)  # fmt: skip


@router.get("/plans/{plan_id}/files")
def list_files(plan_id: Id, db: Db, who: Who) -> list[FileOut]:
    plan, _ = plan_of(db, who, plan_id)
    return _files(db, plan.id)


@router.get(
    "/plans/{plan_id}/files/{name}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_file(plan_id: Id, name: str, request: Request, db: Db, who: Who) -> StreamingResponse:
    plan, _ = plan_of(db, who, plan_id)
    row = db.scalar(select(PlanFile).where(PlanFile.plan_id == plan.id, PlanFile.name == name))
    if row is None:
        raise not_found(f"file {name!r} of plan {plan_id}")
    storage: FileStorage = request.app.state.files
    return StreamingResponse(
        storage.read(f"plans/{plan.id}/{name}"),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-SHA256": row.sha256,
        },
    )


@router.delete("/plans/{plan_id}/files/{name}", status_code=204)
def delete_file(plan_id: Id, name: str, request: Request, db: Db, who: Who) -> Response:
    plan, _ = plan_of(db, who, plan_id)
    row = db.scalar(select(PlanFile).where(PlanFile.plan_id == plan.id, PlanFile.name == name))
    if row is None:
        raise not_found(f"file {name!r} of plan {plan_id}")
    db.delete(row)
    db.commit()
    request.app.state.files.delete(f"plans/{plan.id}/{name}")
    return Response(status_code=204)
