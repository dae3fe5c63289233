"""Collections: plans with their engines, threads, ramp-up and duration; the ``multi-test`` YAML
config of Shibuya (import and export) and our pass/fail criteria."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import delete, select

from control.api.access import collection_of, project_of
from control.api.deps import Db, Id, Pages, Who, paginate
from control.api.errors import RESPONSES, ApiError, conflict, invalid
from control.api.schemas import (
    CollectionIn,
    CollectionOut,
    CollectionPatch,
    ExecutionPlan,
    Page,
)
from control.collections import (
    MAX_CONFIG_BYTES,
    CollectionConfig,
    ConfigError,
    PlanConfig,
    criteria_problems,
    parse_config,
    render_config,
)
from control.db.models import Collection, CollectionPlan, Launch, Plan, Run

router = APIRouter(prefix="/api", tags=["collections"], responses=RESPONSES)


def _plans(db: Db, collection_id: Id) -> list[ExecutionPlan]:
    rows = db.execute(
        select(CollectionPlan, Plan.name)
        .join(Plan, CollectionPlan.plan_id == Plan.id)
        .where(CollectionPlan.collection_id == collection_id)
        .order_by(CollectionPlan.plan_id)
    ).all()
    return [
        ExecutionPlan(plan_id=cp.plan_id, name=name, engines=cp.engines,
                      threads_per_engine=cp.threads_per_engine, ramp_up_s=cp.ramp_up_s,
                      duration_s=cp.duration_s, csv_split=cp.csv_split)
        for cp, name in rows
    ]  # fmt: skip


def _out(db: Db, c: Collection) -> CollectionOut:
    plans = _plans(db, c.id)
    return CollectionOut(
        id=c.id, project_id=c.project_id, name=c.name, csv_split=c.csv_split,
        thresholds=list(c.thresholds), plans=plans,
        engines=sum(p.engines for p in plans),
        virtual_users=sum(p.engines * p.threads_per_engine for p in plans),
        created_at=c.created_at,
    )  # fmt: skip


def _check_criteria(texts: list[str]) -> None:
    problems = criteria_problems(texts)
    if problems:
        raise invalid(problems[0], problems)


def _busy(db: Db, collection_id: Id) -> str | None:
    """Why the collection's plans cannot change now, if they cannot."""
    if db.scalar(select(Run.id).where(Run.collection_id == collection_id, Run.ended_at.is_(None))):
        return "it has a run in progress"
    launched = select(Launch.id).where(
        Launch.collection_id == collection_id, Launch.purged_at.is_(None)
    )
    if db.scalar(launched):
        return "its engines are deployed (purge them first)"
    return None


@router.post("/projects/{project_id}/collections", status_code=201)
def create_collection(project_id: Id, body: CollectionIn, db: Db, who: Who) -> CollectionOut:
    project = project_of(db, who, project_id)
    _check_criteria(body.thresholds)
    c = Collection(project_id=project.id, name=body.name, csv_split=body.csv_split,
                   thresholds=body.thresholds)  # fmt: skip
    db.add(c)
    db.flush()
    return _out(db, c)


@router.get("/projects/{project_id}/collections")
def list_collections(project_id: Id, db: Db, who: Who, page: Pages) -> Page[CollectionOut]:
    project = project_of(db, who, project_id)
    query = select(Collection).where(Collection.project_id == project.id)
    return paginate(db, query, Collection.id, page, lambda c: _out(db, c))


@router.get("/collections/{collection_id}")
def get_collection(collection_id: Id, db: Db, who: Who) -> CollectionOut:
    return _out(db, collection_of(db, who, collection_id)[0])


@router.patch("/collections/{collection_id}")
def change_collection(collection_id: Id, body: CollectionPatch, db: Db, who: Who) -> CollectionOut:
    c, _ = collection_of(db, who, collection_id)
    if body.name is not None:
        c.name = body.name
    if body.csv_split is not None:
        c.csv_split = body.csv_split
    if body.thresholds is not None:
        _check_criteria(body.thresholds)
        c.thresholds = body.thresholds
    return _out(db, c)


@router.delete("/collections/{collection_id}", status_code=204)
def delete_collection(collection_id: Id, db: Db, who: Who) -> Response:
    c, _ = collection_of(db, who, collection_id)
    why = _busy(db, c.id)
    if why is not None:
        raise conflict(f"collection {collection_id} cannot be deleted: {why}")
    db.delete(c)
    return Response(status_code=204)


@router.put(
    "/collections/{collection_id}/config",
    openapi_extra={"requestBody": {"content": {"application/yaml": {}}, "required": True}},
)
async def put_config(collection_id: Id, request: Request, db: Db, who: Who) -> CollectionOut:
    """Replace the collection's plans (and name, CSV split, criteria) from a ``multi-test``
    YAML document (docs/api.md)."""
    c, project = collection_of(db, who, collection_id)
    body = await request.body()
    if len(body) > MAX_CONFIG_BYTES:
        raise ApiError(413, "too_large", f"a config is at most {MAX_CONFIG_BYTES:,} bytes")
    try:
        config = parse_config(body.decode("utf-8", errors="replace"))
    except ConfigError as exc:
        raise invalid(exc.problems[0], exc.problems) from exc
    problems = []
    if config.collection_id != c.id:
        problems.append(f"collectionid: {config.collection_id} is not this collection ({c.id})")
    if config.project_id != project.id:
        problems.append(f"projectid: {config.project_id} is not this collection's ({project.id})")
    ids = [p.plan_id for p in config.plans]
    known = set(db.scalars(select(Plan.id).where(Plan.id.in_(ids), Plan.project_id == project.id)))
    problems += [f"tests[{i}].testid: plan {pid} is not in project {project.id}"
                 for i, pid in enumerate(ids) if pid not in known]  # fmt: skip
    limit: int = request.app.state.settings.limits.max_engines_per_collection
    engines = sum(p.engines for p in config.plans)
    if engines > limit:
        problems.append(f"tests: {engines} engines in all, more than the limit of {limit}")
    if problems:
        raise invalid(problems[0], problems)
    why = _busy(db, c.id)
    if why is not None:
        raise conflict(f"collection {collection_id} cannot change its plans: {why}")
    c.name, c.csv_split, c.thresholds = config.name, config.csv_split, config.thresholds
    db.execute(delete(CollectionPlan).where(CollectionPlan.collection_id == c.id))
    for p in config.plans:
        db.add(CollectionPlan(collection_id=c.id, plan_id=p.plan_id, engines=p.engines,
                              threads_per_engine=p.threads_per_engine, ramp_up_s=p.ramp_up_s,
                              duration_s=p.duration_s, csv_split=p.csv_split))  # fmt: skip
    db.flush()
    return _out(db, c)


@router.get(
    "/collections/{collection_id}/config",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}}}},
)
def get_config(collection_id: Id, db: Db, who: Who) -> Response:
    c, project = collection_of(db, who, collection_id)
    plans = [PlanConfig(**p.model_dump()) for p in _plans(db, c.id)]
    text = render_config(CollectionConfig(name=c.name, project_id=project.id,
                                          collection_id=c.id, csv_split=c.csv_split,
                                          thresholds=list(c.thresholds), plans=plans))  # fmt: skip
    disposition = f'attachment; filename="{c.id}.yaml"'
    return Response(text, media_type="application/yaml",
                    headers={"Content-Disposition": disposition})  # fmt: skip
