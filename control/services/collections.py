"""Collections: plans with their engines, threads, ramp-up and duration; the ``multi-test`` YAML
config of Shibuya (import and export, :mod:`control.services.config`) and our pass/fail
criteria."""

from __future__ import annotations

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from control.db.models import Collection, CollectionPlan, Launch, Plan, PlanFile, Run
from control.errors import ConflictError, InvalidError, TooLargeError
from control.schemas import CollectionIn, CollectionOut, CollectionPatch, ExecutionPlan, Page
from control.services.access import collection_of, name_free, project_of
from control.services.auth import Caller
from control.services.config import (
    MAX_CONFIG_BYTES,
    Bounds,
    CollectionConfig,
    criteria_problems,
    parse_config,
    render_config,
)
from control.services.pages import Paging, in_project
from control.settings import LimitsSettings


def create(db: Session, who: Caller, project_id: int, body: CollectionIn) -> CollectionOut:
    project = project_of(db, who, project_id)
    _check_criteria(body.thresholds)
    name_free(db, Collection, project.id, body.name)
    c = Collection(project_id=project.id, name=body.name, csv_split=body.csv_split,
                   thresholds=body.thresholds, properties=body.properties,
                   env=body.env)  # fmt: skip
    db.add(c)
    db.flush()
    return _out(db, c)


def listing(db: Session, who: Caller, project_id: int, page: Paging) -> Page[CollectionOut]:
    return in_project(db, who, project_id, Collection, page, lambda c: _out(db, c))


def get(db: Session, who: Caller, collection_id: int) -> CollectionOut:
    return _out(db, collection_of(db, who, collection_id)[0])


def change(db: Session, who: Caller, collection_id: int, body: CollectionPatch) -> CollectionOut:
    c, _ = collection_of(db, who, collection_id)
    if body.name is not None:
        name_free(db, Collection, c.project_id, body.name, c.id)
        c.name = body.name
    if body.csv_split is not None:
        c.csv_split = body.csv_split
    if body.thresholds is not None:
        _check_criteria(body.thresholds)
        c.thresholds = body.thresholds
    if body.properties is not None:
        c.properties = body.properties
    if body.env is not None:
        c.env = body.env
    return _out(db, c)


def delete(db: Session, who: Caller, collection_id: int) -> None:
    c, _ = collection_of(db, who, collection_id)
    why = _busy(db, c.id)
    if why is not None:
        raise ConflictError(f"collection {collection_id} cannot be deleted: {why}")
    db.delete(c)


def put_config(
    db: Session, who: Caller, collection_id: int, document: bytes, limits: LimitsSettings
) -> CollectionOut:
    """Replace the collection's plans (and name, CSV split, criteria) from a ``multi-test``
    YAML document; every problem is reported at once."""
    c, project = collection_of(db, who, collection_id)
    if len(document) > MAX_CONFIG_BYTES:
        raise TooLargeError(f"a config is at most {MAX_CONFIG_BYTES:,} bytes")
    bounds = Bounds(max_engines=limits.max_engines_per_collection,
                    max_threads_per_engine=limits.max_threads_per_engine,
                    max_duration_s=limits.max_duration_s,
                    max_ramp_up_s=limits.max_ramp_up_s)  # fmt: skip
    config = parse_config(document.decode("utf-8", errors="replace"), bounds)
    max_engines = limits.max_engines_per_collection
    problems = []
    if config.collection_id != c.id:
        problems.append(f"collectionid: {config.collection_id} is not this collection ({c.id})")
    if config.project_id != project.id:
        problems.append(f"projectid: {config.project_id} is not this collection's ({project.id})")
    ids = [p.plan_id for p in config.plans]
    known = set(db.scalars(select(Plan.id).where(Plan.id.in_(ids), Plan.project_id == project.id)))
    problems += [f"tests[{i}].testid: plan {pid} is not in project {project.id}"
                 for i, pid in enumerate(ids) if pid not in known]  # fmt: skip
    engines = sum(p.engines for p in config.plans)
    if engines > max_engines:
        problems.append(f"tests: {engines} engines in all, more than the limit of {max_engines}")
    if problems:
        raise InvalidError(problems[0], problems)
    why = _busy(db, c.id)
    if why is not None:
        raise ConflictError(f"collection {collection_id} cannot change its plans: {why}")
    name_free(db, Collection, project.id, config.name, c.id)
    c.name, c.csv_split, c.thresholds = config.name, config.csv_split, config.thresholds
    c.properties, c.env = config.properties, config.env
    db.execute(sql_delete(CollectionPlan).where(CollectionPlan.collection_id == c.id))
    for p in config.plans:
        db.add(CollectionPlan(collection_id=c.id, plan_id=p.plan_id, engines=p.engines,
                              engine=p.engine, users=p.users,
                              threads_per_engine=p.threads_per_engine, ramp_up_s=p.ramp_up_s,
                              duration_s=p.duration_s, csv_split=p.csv_split,
                              properties=p.properties, env=p.env))  # fmt: skip
    db.flush()
    return _out(db, c)


def get_config(db: Session, who: Caller, collection_id: int) -> tuple[str, str]:
    """The collection as a ``multi-test`` YAML document, and a file name for it."""
    c, project = collection_of(db, who, collection_id)
    text = render_config(CollectionConfig(name=c.name, project_id=project.id,
                                          collection_id=c.id, csv_split=c.csv_split,
                                          thresholds=list(c.thresholds),
                                          plans=plans_of(db, c.id),
                                          properties=dict(c.properties),
                                          env=dict(c.env)))  # fmt: skip
    return text, f"{c.id}.yaml"


def plans_of(db: Session, collection_id: int) -> list[ExecutionPlan]:
    rows = db.execute(
        select(CollectionPlan, Plan.name)
        .join(Plan, CollectionPlan.plan_id == Plan.id)
        .where(CollectionPlan.collection_id == collection_id)
        .order_by(CollectionPlan.plan_id)
    ).all()
    return [
        ExecutionPlan(plan_id=cp.plan_id, name=name, engine=cp.engine, engines=cp.engines,
                      threads_per_engine=cp.threads_per_engine, users=cp.users,
                      ramp_up_s=cp.ramp_up_s,
                      duration_s=cp.duration_s, csv_split=cp.csv_split,
                      properties=dict(cp.properties), env=dict(cp.env))
        for cp, name in rows
    ]  # fmt: skip


def _out(db: Session, c: Collection) -> CollectionOut:
    plans = plans_of(db, c.id)
    return CollectionOut(
        id=c.id, project_id=c.project_id, name=c.name, csv_split=c.csv_split,
        thresholds=list(c.thresholds), properties=dict(c.properties), env=dict(c.env),
        plans=plans,
        engines=sum(p.engines for p in plans),
        virtual_users=sum(p.engines * p.threads_per_engine for p in plans),
        created_at=c.created_at, warnings=_split_warnings(db, c, plans),
    )  # fmt: skip


def _split_warnings(db: Session, c: Collection, plans: list[ExecutionPlan]) -> list[str]:
    """The CSV files split among more engines than they have data rows: some engines would get
    the header only (and JMeter's CSV Data Set, at its end of file, stops or recycles nothing)."""
    engines = {p.plan_id: p.engines for p in plans if p.csv_split or c.csv_split}
    csv = (PlanFile.plan_id.in_(engines), PlanFile.kind == "csv", PlanFile.records.is_not(None))
    counted = db.execute(
        select(PlanFile.plan_id, PlanFile.name, PlanFile.records)
        .where(*csv)
        .order_by(PlanFile.plan_id, PlanFile.name)
    ).all()
    warnings = []
    for plan_id, name, records in counted:
        rows, n = max((records or 0) - 1, 0), engines[plan_id]  # the header is every share's
        if rows < n:
            warnings.append(f"plan {plan_id}: {name} has {rows} data rows for {n} engines; "
                            f"{n - rows} engines get its header only (fewer engines, more rows, "
                            "or csv_split off)")  # fmt: skip
    return warnings


def _check_criteria(texts: list[str]) -> None:
    problems = criteria_problems(texts)
    if problems:
        raise InvalidError(problems[0], problems)


def _busy(db: Session, collection_id: int) -> str | None:
    """Why the collection's plans cannot change now, if they cannot."""
    if db.scalar(select(Run.id).where(Run.collection_id == collection_id, Run.ended_at.is_(None))):
        return "it has a run in progress"
    launched = select(Launch.id).where(
        Launch.collection_id == collection_id, Launch.purged_at.is_(None)
    )
    if db.scalar(launched):
        return "its engines are deployed (purge them first)"
    return None
