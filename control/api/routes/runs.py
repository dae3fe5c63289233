"""Runs: trigger, stop, status and history; the plan files engines fetch with a per-run token.

Triggering inserts the run first — the database allows one active run per collection, so of two
replicas racing only one gets past the insert — then announces it to the stream
(``run_started``) and starts the engines of each plan (``start`` commands). The stream ends the
run; :class:`control.events.RunOutcomes` writes the end into the run's row.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from control import launches
from control.api.access import collection_of, run_of
from control.api.deps import Db, Id, Pages, Who, in_thread, paginate
from control.api.errors import RESPONSES, ApiError, conflict, not_found
from control.api.schemas import CriterionVerdict, Page, RunOut, StopIn
from control.auth import new_token, token_hash
from control.db.models import Collection, CollectionPlan, PlanFile, Project, Run
from control.events import Publisher, UnavailableError
from control.files.storage import FileStorage
from control.schedulers import Scheduler
from wire import PlanFile as WirePlanFile
from wire import (
    PlanSpec,
    RunStarted,
    RunStatus,
    RunStopRequested,
    StartEngines,
    decode_run_status,
)

router = APIRouter(prefix="/api", tags=["runs"], responses=RESPONSES)

RunId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^run-[0-9a-f]{12}$")]


def run_out(run: Run, status: RunStatus | None) -> RunOut:
    out = RunOut(id=run.id, collection_id=run.collection_id, state=run.state,
                 outcome=run.outcome, reason=run.reason, started_at=run.started_at,
                 ended_at=run.ended_at, thresholds=list(run.thresholds))  # fmt: skip
    if status is not None:
        out.state = run.state if run.ended_at is not None else status.state
        out.reason = status.reason
        out.engines = msgspec.to_builtins(status.engines)
        out.samples, out.failures = status.samples, status.failures
        out.criteria = [CriterionVerdict(criterion=c.criterion, passed=c.passed,
                                         breach_second_s=c.breach_second_s, value=c.value,
                                         error=c.error)
                        for c in status.criteria]  # fmt: skip
    return out


def _publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


@router.post("/collections/{collection_id}/runs", status_code=201)
async def trigger(collection_id: Id, request: Request, db: Db, who: Who) -> RunOut:
    """Start a run of the collection: deploy its engines if they are not (a scheduler other
    than ``external``), announce the run to the stream, start each plan's engines."""
    token = new_token()
    scheduler = request.app.state.scheduler
    run, collection, project, plans, files = await in_thread(
        db, _insert_run, db, who, collection_id, token, scheduler
    )
    request.app.state.answers.forget(("status", collection.id))  # engines may be new
    messages = _start_messages(request, run, collection, project, plans, files, token)
    try:
        await _publisher(request).send(messages)
    except UnavailableError as exc:
        run.ended_at, run.state, run.outcome = datetime.now(UTC), "failed", "failed"
        run.reason = f"could not start: {exc}"
        await run_in_threadpool(db.commit)
        raise ApiError(503, "unavailable", f"the run could not be started: {exc}") from exc
    return run_out(run, None)


def _insert_run(
    db: Db, who: Who, collection_id: int, token: str, scheduler: Scheduler
) -> tuple[Run, Collection, Project, list[CollectionPlan], dict[int, list[PlanFile]]]:
    collection, project = collection_of(db, who, collection_id)
    plans = list(db.scalars(select(CollectionPlan).where(
        CollectionPlan.collection_id == collection.id)))  # fmt: skip
    if not plans:
        raise conflict(f"collection {collection_id} has no plans: import its config first")
    files = {p.plan_id: list(db.scalars(select(PlanFile).where(PlanFile.plan_id == p.plan_id)))
             for p in plans}  # fmt: skip
    missing = [p.plan_id for p in plans if not any(f.kind == "jmx" for f in files[p.plan_id])]
    if missing:
        raise conflict(f"plans without a test plan (.jmx): {missing}")
    if db.scalar(select(Run.id).where(Run.collection_id == collection.id,
                                      Run.ended_at.is_(None))):  # fmt: skip
        raise conflict(f"collection {collection_id} has a run in progress")
    if scheduler.kind != "external":
        launches.deploy(db, scheduler, collection, who.user_id)
    run = Run(id=f"run-{uuid.uuid4().hex[:12]}", collection_id=collection.id,
              thresholds=list(collection.thresholds), started_by=who.user_id,
              file_token_hash=token_hash(token))  # fmt: skip
    db.add(run)
    try:
        db.commit()  # the one-active-run index decides a race between replicas here
    except IntegrityError as exc:
        raise conflict(f"collection {collection_id} has a run in progress") from exc
    return run, collection, project, plans, files


def _start_messages(
    request: Request,
    run: Run,
    collection: Collection,
    project: Project,
    plans: list[CollectionPlan],
    files: dict[int, list[PlanFile]],
    token: str,
) -> list[tuple[str, bytes, msgspec.Struct]]:
    publisher = _publisher(request)
    base = request.app.state.settings.base_url
    now_ms = int(time.time() * 1000)
    cid = str(collection.id)
    announced = RunStarted(
        run_id=run.id, collection_id=cid, project_id=str(project.id), started_ms=now_ms,
        plans=[PlanSpec(plan_id=str(p.plan_id), engines=p.engines,
                        threads_per_engine=p.threads_per_engine, ramp_up_s=p.ramp_up_s,
                        duration_s=p.duration_s) for p in plans],
        thresholds=list(run.thresholds),
    )  # fmt: skip
    out: list[tuple[str, bytes, msgspec.Struct]] = [publisher.run_event(run.id, announced)]
    for p in plans:
        wire_files = [
            WirePlanFile(name=f.name, url=f"{base}/api/engine-files/{run.id}/{p.plan_id}/{f.name}",
                         size_bytes=f.size_bytes, sha256=f.sha256,
                         csv_header=f.kind == "csv")
            for f in files[p.plan_id]
        ]  # fmt: skip
        start = StartEngines(
            command_id=f"{run.id}.start.{p.plan_id}", collection_id=cid, run_id=run.id,
            plan_id=str(p.plan_id), engine_count=p.engines,
            threads_per_engine=p.threads_per_engine, ramp_up_s=p.ramp_up_s,
            duration_s=p.duration_s, files=wire_files, file_token=token,
            split_csv=p.csv_split or collection.csv_split, issued_ms=now_ms,
        )  # fmt: skip
        out.append(publisher.command(cid, start))
    return out


@router.get("/runs/{run_id}")
async def get_run(run_id: RunId, request: Request, db: Db, who: Who) -> RunOut:
    """The run with its progress as the stream reports it (engines, samples, verdicts)."""
    return await current(request, db, who, run_id)


async def current(request: Request, db: Db, who: Who, run_id: str) -> RunOut:
    """The caller's run with its progress: the final status from SQL once it has ended, else
    the latest one in ClickHouse."""
    run = await in_thread(db, run_of, db, who, run_id)
    if run.final_status is not None:
        # Through the wire decoder, built once: building msgspec type info in two threads at
        # once can deadlock (wire/messages.py).
        return run_out(run, decode_run_status(msgspec.json.encode(run.final_status)))
    return run_out(run, await request.app.state.results.run_status(run_id))


@router.post("/runs/{run_id}/stop", status_code=202)
async def stop(run_id: RunId, body: StopIn, request: Request, db: Db, who: Who) -> RunOut:
    """Ask the stream to stop the run (it ends *aborted*); answered at once."""
    run = await in_thread(db, run_of, db, who, run_id)
    if run.ended_at is not None:
        raise conflict(f"run {run_id} has ended")
    reason = f"stopped by {who.name}" + (f": {body.reason}" if body.reason else "")
    message = RunStopRequested(run_id=run.id, requested_ms=int(time.time() * 1000), reason=reason)
    try:
        await _publisher(request).send([_publisher(request).run_event(run.id, message)])
    except UnavailableError as exc:
        raise ApiError(503, "unavailable", f"the stop could not be sent: {exc}") from exc
    return run_out(run, None)


@router.get("/collections/{collection_id}/runs")
def list_runs(collection_id: Id, db: Db, who: Who, page: Pages) -> Page[RunOut]:
    """The collection's runs, newest first."""
    collection, _ = collection_of(db, who, collection_id)
    query = select(Run).where(Run.collection_id == collection.id)
    return paginate(db, query, Run.started_at.desc(), page, lambda r: run_out(r, None))


_run_token = HTTPBearer(auto_error=False, description="the run's file token (engines only)")


@router.get(
    "/engine-files/{run_id}/{plan_id}/{name}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
    tags=["engines"],
)
def engine_file(
    run_id: RunId,
    plan_id: Id,
    name: str,
    request: Request,
    db: Db,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_run_token)],
) -> StreamingResponse:
    """A plan file for an engine of a run in progress, with the run's file token — it opens
    nothing else, and nothing once the run has ended."""
    run = db.get(Run, run_id)
    if (
        credentials is None
        or run is None
        or run.file_token_hash != token_hash(credentials.credentials)
    ):
        raise ApiError(401, "unauthenticated", "a valid file token of this run is required")
    if run.ended_at is not None:
        raise ApiError(403, "forbidden", f"run {run_id} has ended")
    of_run = (CollectionPlan.collection_id == run.collection_id, CollectionPlan.plan_id == plan_id)
    in_run = db.scalar(select(CollectionPlan.plan_id).where(*of_run))
    row = db.scalar(select(PlanFile).where(PlanFile.plan_id == plan_id, PlanFile.name == name))
    if in_run is None or row is None:
        raise not_found(f"file {name!r} of plan {plan_id} in run {run_id}")
    storage: FileStorage = request.app.state.files
    return StreamingResponse(storage.read(f"plans/{plan_id}/{name}"),
                             media_type="application/octet-stream",
                             headers={"X-Content-SHA256": row.sha256})  # fmt: skip
