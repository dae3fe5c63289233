"""Engines of a collection: deploy, purge, status (the scheduler's view and the engines'
heartbeats), logs, launch history; and usage in engine-hours and virtual-user-hours."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from control import launches
from control.api.access import collection_of
from control.api.deps import Db, Id, Pages, Who, in_thread, paginate, shared_json
from control.api.errors import RESPONSES, conflict, invalid, not_found
from control.api.schemas import (
    CollectionStatusOut,
    EngineOut,
    LaunchOut,
    Page,
    PlanStatusOut,
    PurgeIn,
    PurgeOut,
    UsageOut,
    UsageReportOut,
)
from control.db.models import Collection, CollectionPlan, Group, Launch, Plan, Project, Run
from control.events import Publisher, UnavailableError
from control.results.queries import Results
from control.schedulers import Scheduler
from wire import PurgeEngines

router = APIRouter(prefix="/api", tags=["engines"], responses=RESPONSES)
log = logging.getLogger(__name__)

#: Heartbeat states of an engine that takes part in a run.
BUSY = frozenset({"preparing", "running", "stopping"})


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.scheduler
    return scheduler


def launch_out(launch: Launch) -> LaunchOut:
    return LaunchOut(id=launch.id, collection_id=launch.collection_id, engines=launch.engines,
                     virtual_users=launch.virtual_users, launched_at=launch.launched_at,
                     purged_at=launch.purged_at, purge_reason=launch.purge_reason)  # fmt: skip


@router.post("/collections/{collection_id}/deploy", status_code=201,
             responses={200: {"model": LaunchOut, "description": "already deployed: only "
                              "missing engines were started"}})  # fmt: skip
def deploy(collection_id: Id, request: Request, response: Response, db: Db, who: Who) -> LaunchOut:
    """Deploy the collection's engines (as many per plan as its config says). Idempotent: a
    second deploy starts only engines that are missing and answers 200."""
    collection, _ = collection_of(db, who, collection_id)
    if not db.scalar(select(CollectionPlan.plan_id).where(
            CollectionPlan.collection_id == collection.id)):  # fmt: skip
        raise conflict(f"collection {collection_id} has no plans: import its config first")
    launch, created = launches.deploy(db, _scheduler(request), collection, who.user_id)
    request.app.state.answers.forget(("status", collection.id))
    response.status_code = 201 if created else 200
    return launch_out(launch)


@router.post("/collections/{collection_id}/purge")
async def purge(collection_id: Id, body: PurgeIn, request: Request, db: Db, who: Who) -> PurgeOut:
    """Remove the collection's engines and end its launch (refused while a run is in
    progress: stop it first). Idempotent."""
    collection, _ = await in_thread(db, collection_of, db, who, collection_id)
    running = await in_thread(db, _run_in_progress, db, collection.id)
    if running is not None:
        raise conflict(f"collection {collection_id} has run {running} in progress: stop it first")
    issued = datetime.now(UTC)
    reason = f"purged by {who.name}" + (f": {body.reason}" if body.reason else "")
    removed, launch = await in_thread(
        db, launches.purge, db, _scheduler(request), collection.id, issued, reason
    )
    request.app.state.answers.forget(("status", collection.id))
    # The stream's GC learns of it (and counts the collection as purged); the replica that
    # executes the command finds nothing left to remove.
    publisher: Publisher = request.app.state.publisher
    command = PurgeEngines(command_id=f"{collection.id}.purge.{int(issued.timestamp() * 1000)}",
                           collection_id=str(collection.id), reason=reason,
                           issued_ms=int(issued.timestamp() * 1000))  # fmt: skip
    try:
        await publisher.send([publisher.command(str(collection.id), command)])
    except UnavailableError as exc:  # the engines are gone either way; the GC finds out later
        log.warning("purge of collection %d not announced to the stream: %s", collection.id, exc)
    return PurgeOut(engines_removed=removed, launch=launch_out(launch) if launch else None)


def _run_in_progress(db: Session, collection_id: int) -> str | None:
    return db.scalar(select(Run.id).where(Run.collection_id == collection_id,
                                          Run.ended_at.is_(None)))  # fmt: skip


@router.get("/collections/{collection_id}/launches")
def list_launches(collection_id: Id, db: Db, who: Who, page: Pages) -> Page[LaunchOut]:
    """The collection's launches, newest first."""
    collection, _ = collection_of(db, who, collection_id)
    query = select(Launch).where(Launch.collection_id == collection.id)
    return paginate(db, query, Launch.launched_at.desc(), page, launch_out)


@router.get("/collections/{collection_id}/status", response_model=CollectionStatusOut)
async def status(collection_id: Id, request: Request, db: Db, who: Who) -> Response:
    """Per plan: engines asked for, deployed (the scheduler), ready and running (heartbeats
    within ``scheduler.status_window_s``); and every engine known to either."""
    collection, _ = await in_thread(db, collection_of, db, who, collection_id)
    sessions = request.app.state.sessions

    async def build() -> bytes:
        with sessions() as s:
            view = await _status(request, s, collection)
        return view.model_dump_json().encode()

    return await shared_json(request, ("status", collection.id), build)


async def _status(request: Request, db: Session, collection: Collection) -> CollectionStatusOut:
    plans, launch, run_id, last = await in_thread(db, _status_rows, db, collection.id)
    scheduler = _scheduler(request)
    deployed = await asyncio.to_thread(scheduler.engines, str(collection.id))
    window_s = request.app.state.settings.scheduler.status_window_s
    since_ms = int(time.time() * 1000) - window_s * 1000
    results: Results = request.app.state.results
    heard = {h.engine_id: h for h in await results.engines(str(collection.id), since_ms)
             if h.ts_ms > last}  # fmt: skip
    engines = {e.engine_id: EngineOut(engine_id=e.engine_id, plan_id=e.plan_id, index=e.index,
                                      phase=e.phase, phase_detail=e.detail, state=None,
                                      run_id=None, heard_at=None, threads=0, cpu_cores=None,
                                      memory_bytes=None, detail="")
               for e in deployed}  # fmt: skip
    for h in heard.values():
        e = engines.get(h.engine_id) or EngineOut(
            engine_id=h.engine_id, plan_id=h.plan_id, index=h.index, phase=None, state=None,
            run_id=None, heard_at=None, threads=0, cpu_cores=None, memory_bytes=None, detail="",
        )  # fmt: skip
        engines[h.engine_id] = e.model_copy(update={
            "state": h.state, "run_id": h.run_id, "threads": h.threads, "cpu_cores": h.cpu_cores,
            "memory_bytes": h.memory_bytes, "detail": h.detail,
            "heard_at": datetime.fromtimestamp(h.ts_ms / 1000, UTC),
        })  # fmt: skip
    out = []
    for plan_id, name, wanted in plans:
        mine = [e for e in engines.values() if e.plan_id == str(plan_id)]
        out.append(PlanStatusOut(
            plan_id=plan_id, name=name, engines=wanted,
            deployed=sum(e.phase == "running" for e in mine),
            ready=sum(e.state is not None and e.state not in BUSY for e in mine),
            running=sum(e.state in BUSY for e in mine),
        ))  # fmt: skip
    return CollectionStatusOut(
        collection_id=collection.id, scheduler=scheduler.kind,
        launch=launch_out(launch) if launch else None, run_id=run_id, plans=out,
        engines=sorted(engines.values(), key=lambda e: (e.plan_id, e.index)),
    )  # fmt: skip


def _status_rows(
    db: Session, collection_id: int
) -> tuple[list[tuple[int, str, int]], Launch | None, str | None, int]:
    """The plans (id, name, engines asked for), the active launch, the run in progress, and
    when the engines were last purged (heartbeats from before are of engines going away)."""
    plans = db.execute(
        select(CollectionPlan.plan_id, Plan.name, CollectionPlan.engines)
        .join(Plan, Plan.id == CollectionPlan.plan_id)
        .where(CollectionPlan.collection_id == collection_id)
        .order_by(CollectionPlan.plan_id)
    ).all()
    purged = db.scalar(select(func.max(Launch.purged_at)).where(
        Launch.collection_id == collection_id))  # fmt: skip
    return ([(p, n, e) for p, n, e in plans], launches.active(db, collection_id),
            _run_in_progress(db, collection_id),
            0 if purged is None else launches.ms(purged))  # fmt: skip


@router.get("/collections/{collection_id}/engines/{plan_id}/{index}/logs",
            response_class=PlainTextResponse)  # fmt: skip
def engine_logs(
    collection_id: Id,
    plan_id: Id,
    index: Annotated[int, Path(ge=0, le=9999)],
    request: Request,
    db: Db,
    who: Who,
    tail_bytes: Annotated[int, Query(ge=1, le=10 * 2**20)] = 65536,
) -> PlainTextResponse:
    """The end of an engine's log (the sidecar's and JMeter's output)."""
    collection, _ = collection_of(db, who, collection_id)
    text = _scheduler(request).logs(str(collection.id), str(plan_id), index, tail_bytes)
    if text is None:
        raise not_found(f"engine {plan_id}-{index} of collection {collection_id} (with the "
                        f"{_scheduler(request).kind} scheduler)")  # fmt: skip
    return PlainTextResponse(text)


@router.get("/usage", tags=["usage"])
def usage(
    db: Db,
    who: Who,
    since: Annotated[datetime | None, Query(description="default: 30 days before until")] = None,
    until: Annotated[datetime | None, Query(description="default: now")] = None,
) -> UsageReportOut:
    """Engine-hours and virtual-user-hours of launches (the part within the period), and runs
    started in it, per project the caller can see."""
    until = launches.utc(until) if until else datetime.now(UTC)
    since = launches.utc(since) if since else until - timedelta(days=30)
    if since >= until:
        raise invalid("since must be before until")
    theirs = [] if who.is_admin else [Project.group_id.in_(who.groups)]
    project = (Project.id, Project.name, Group.name)
    rows = db.execute(
        select(Launch, *project)
        .join(Collection, Launch.collection_id == Collection.id)
        .join(Project, Collection.project_id == Project.id)
        .join(Group, Project.group_id == Group.id)
        .where(Launch.launched_at < until,
               or_(Launch.purged_at.is_(None), Launch.purged_at > since), *theirs)
    ).all()  # fmt: skip
    runs = db.execute(
        select(func.count(Run.id), *project)
        .join(Collection, Run.collection_id == Collection.id)
        .join(Project, Collection.project_id == Project.id)
        .join(Group, Project.group_id == Group.id)
        .where(Run.started_at >= since, Run.started_at < until, *theirs)
        .group_by(*project)
    ).all()  # fmt: skip
    projects: dict[int, UsageOut] = {}

    def of(pid: int, name: str, group: str) -> UsageOut:
        return projects.setdefault(pid, UsageOut(project_id=pid, project=name, group=group,
                                                 launches=0, engine_hours=0.0,
                                                 virtual_user_hours=0.0, runs=0))  # fmt: skip

    for count, pid, name, group in runs:
        of(pid, name, group).runs = count
    for launch, pid, name, group in rows:
        u = of(pid, name, group)
        start = max(launches.utc(launch.launched_at), since)
        stop = min(launches.utc(launch.purged_at) if launch.purged_at else until, until)
        hours = max(0.0, (stop - start).total_seconds() / 3600)
        u.launches += 1
        u.engine_hours += launch.engines * hours
        u.virtual_user_hours += launch.virtual_users * hours
    out = sorted(projects.values(), key=lambda u: u.project_id)
    return UsageReportOut(since=since, until=until, projects=out,
                          engine_hours=sum(u.engine_hours for u in out),
                          virtual_user_hours=sum(u.virtual_user_hours for u in out))  # fmt: skip
