"""Runs: trigger, stop, status and history; the plan files engines fetch with a per-run token.

Triggering inserts the run first — the database allows one active run per collection, so of two
replicas racing only one gets past the insert — then announces it to the stream
(``run_started``) and starts the engines of each plan (``start`` commands). The stream ends the
run; :func:`control.services.followers.run_outcomes` writes the end into the run's row
(:func:`record_status`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from control.db.database import in_thread
from control.db.models import Collection, CollectionPlan, PlanFile, Project, Run
from control.errors import (
    ConflictError,
    ConstraintError,
    NotFoundError,
    UnavailableError,
)
from control.kafka import Outgoing, Producer
from control.results.recent import RecentResults
from control.schedulers import Scheduler
from control.schemas import CriterionVerdict, Page, RunOut
from control.services import engine_tokens, launches, secrets
from control.services.access import Owned, collection_of, run_of
from control.services.auth import Caller
from control.services.messages import command, run_event
from control.services.pages import Paging, paginate
from control.settings import LimitsSettings
from wire import (
    EngineKind,
    PlanSpec,
    RunStarted,
    RunStatus,
    RunStopRequested,
    StartEngines,
    Topics,
    decode_run_status,
)
from wire import PlanFile as WirePlanFile

#: The file kind each engine runs, and how a user would name it.
MAIN_KIND = {"jmeter": "jmx", "locust": "py", "gatling": "java"}
MAIN_FILE = {"jmeter": "a .jmx", "locust": "a locustfile (.py)", "gatling": "a simulation (.java)"}


@dataclass(frozen=True)
class Launcher:
    """What starting and stopping runs needs besides the database."""

    producer: Producer
    scheduler: Scheduler
    limits: LimitsSettings
    topics: Topics
    base_url: str
    """Where engines fetch plan files: the API's public URL."""


def run_out(run: Run, status: RunStatus | None) -> RunOut:
    out = RunOut(id=run.id, collection_id=run.collection_id, state=run.state,
                 outcome=run.outcome, reason=run.reason, started_at=run.started_at,
                 ended_at=run.ended_at, thresholds=list(run.thresholds),
                 properties=dict(run.properties or {}), env=dict(run.env or {}),
                 plan_engines=dict(run.plan_engines or {}))  # fmt: skip
    if status is not None:
        out.state = run.state if run.ended_at is not None else status.state
        out.reason = status.reason
        out.engines = msgspec.to_builtins(status.engines)
        out.samples, out.failures = status.samples, status.failures
        out.samples_missing = status.samples_missing
        out.criteria = [CriterionVerdict(**msgspec.to_builtins(c)) for c in status.criteria]
    return out


async def trigger(
    db: Session, launcher: Launcher, who: Caller, collection_id: int,
    properties: dict[str, str] | None = None, env: dict[str, str] | None = None,
    external: bool = False,
) -> RunOut:  # fmt: skip
    """Start a run of the collection: deploy its engines if they are not (a scheduler other
    than ``external``), announce the run to the stream, start each plan's engines with the
    collection's, the plan's and the run's ``properties`` (each overriding the one before).
    ``external``: announce it only — engines of the caller's own feed it."""
    run, collection, project, plans, files, has_secrets = await in_thread(
        db, _insert_run, db, who, collection_id, launcher, properties or {}, env or {}, external
    )
    # External: the run's announcement only, no engine is told to start.
    started = [] if external else plans
    messages = _start_messages(launcher, run, collection, project, plans, started, files,
                               has_secrets)  # fmt: skip
    try:
        await launcher.producer.send(messages)
    except UnavailableError as exc:
        await in_thread(db, _failed, run, f"could not start: {exc}")
        raise UnavailableError(f"the run could not be started: {exc}") from exc
    return run_out(run, None)


def _failed(run: Run, reason: str) -> None:
    run.ended_at, run.state, run.outcome, run.reason = datetime.now(UTC), "failed", "failed", reason


def _insert_run(
    db: Session,
    who: Caller,
    collection_id: int,
    launcher: Launcher,
    properties: dict[str, str],
    env: dict[str, str],
    external: bool = False,
) -> tuple[Run, Collection, Project, list[CollectionPlan], dict[int, list[PlanFile]], bool]:
    collection, project = collection_of(db, who, collection_id)
    plans = list(db.scalars(select(CollectionPlan).where(
        CollectionPlan.collection_id == collection.id)))  # fmt: skip
    if not plans:
        raise ConflictError(f"collection {collection_id} has no plans: import its config first")
    files = {p.plan_id: list(db.scalars(select(PlanFile).where(PlanFile.plan_id == p.plan_id)))
             for p in plans}  # fmt: skip
    missing = [f"{p.plan_id} ({p.engine}: {MAIN_FILE[p.engine]})" for p in plans
               if not any(f.kind == MAIN_KIND[p.engine] for f in files[p.plan_id])]  # fmt: skip
    if missing and not external:
        raise ConflictError(f"plans without what their engine runs: {', '.join(missing)}")
    if launches.run_in_progress(db, collection.id):
        raise ConflictError(f"collection {collection_id} has a run in progress")
    if launcher.scheduler.kind != "external" and not external:
        launches.deploy(db, launcher.scheduler, launcher.limits, collection, who.user_id)
    run = Run(id=f"run-{uuid.uuid4().hex[:12]}", collection_id=collection.id,
              thresholds=list(collection.thresholds), started_by=who.user_id,
              properties=properties, env=env,
              plan_engines={str(p.plan_id): p.engine for p in plans})  # fmt: skip
    db.add(run)
    try:
        db.commit()  # the one-active-run index decides a race between replicas here
    except ConstraintError as exc:
        raise ConflictError(f"collection {collection_id} has a run in progress") from exc
    return run, collection, project, plans, files, secrets.any_of(db, collection.id)


def _start_messages(
    launcher: Launcher,
    run: Run,
    collection: Collection,
    project: Project,
    plans: list[CollectionPlan],
    started: list[CollectionPlan],
    files: dict[int, list[PlanFile]],
    has_secrets: bool,
) -> list[Outgoing]:
    """The run's announcement (of ``plans``), then the start command of each of ``started``."""
    topics, base = launcher.topics, launcher.base_url
    now_ms = int(time.time() * 1000)
    cid = str(collection.id)
    announced = RunStarted(
        run_id=run.id, collection_id=cid, project_id=str(project.id), started_ms=now_ms,
        plans=[PlanSpec(plan_id=str(p.plan_id), engines=p.engines,
                        threads_per_engine=p.threads_per_engine, ramp_up_s=p.ramp_up_s,
                        duration_s=p.duration_s, engine=EngineKind(p.engine)) for p in plans],
        thresholds=list(run.thresholds),
    )  # fmt: skip
    out = [run_event(topics, run.id, announced)]
    for p in started:
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
            duration_s=p.duration_s, files=wire_files,
            split_csv=p.csv_split or collection.csv_split, issued_ms=now_ms,
            engine=EngineKind(p.engine), users=p.users,
            properties={**collection.properties, **p.properties, **run.properties},
            env={**collection.env, **p.env, **run.env},
            secrets_url=f"{base}/api/engine-secrets/{run.id}" if has_secrets else "",
        )  # fmt: skip
        out.append(command(topics, cid, start))
    return out


async def current(
    rows: Owned[str, Run], results: RecentResults, who: Caller, run_id: str
) -> RunOut:
    """The caller's run with its progress: the final status from SQL once it has ended, else
    the latest one in ClickHouse."""
    return await progress(results, await rows.of(who, run_id))


async def progress(results: RecentResults, run: Run) -> RunOut:
    """The run with its final status once it has ended, else the latest one in ClickHouse."""
    if run.final_status is not None:
        return run_out(run, _final(run))
    return run_out(run, await results.run_status(run.id))


def _final(run: Run) -> RunStatus | None:
    """The run's last status, once it has ended. Through the wire decoder, built once: building
    msgspec type info in two threads at once can deadlock (wire/messages.py)."""
    if run.final_status is None:
        return None
    return decode_run_status(msgspec.json.encode(run.final_status))


async def stop(
    db: Session, producer: Producer, topics: Topics, who: Caller, run_id: str, reason: str
) -> RunOut:
    """Ask the stream to stop the run (it ends *aborted*)."""
    run = await in_thread(db, run_of, db, who, run_id)
    if run.ended_at is not None:
        raise ConflictError(f"run {run_id} has ended")
    why = f"stopped by {who.name}" + (f": {reason}" if reason else "")
    message = RunStopRequested(run_id=run.id, requested_ms=int(time.time() * 1000), reason=why)
    try:
        await producer.send([run_event(topics, run.id, message)])
    except UnavailableError as exc:
        raise UnavailableError(f"the stop could not be sent: {exc}") from exc
    return run_out(run, None)


def listing(db: Session, who: Caller, collection_id: int, page: Paging) -> Page[RunOut]:
    """The collection's runs, newest first; those ended with their counts and verdicts."""
    collection, _ = collection_of(db, who, collection_id)
    query = select(Run).where(Run.collection_id == collection.id)
    return paginate(db, query, Run.started_at.desc(), page, lambda r: run_out(r, _final(r)))


def engine_file(db: Session, run_id: str, plan_id: int, name: str, token: str | None) -> str:
    """The SHA-256 of a plan file for an engine of a run in progress, with an engine token of
    the run's collection — it opens nothing else, and nothing once the run has ended."""
    run = engine_tokens.run_in_progress(db, run_id, token)
    of_run = (CollectionPlan.collection_id == run.collection_id, CollectionPlan.plan_id == plan_id)
    in_run = db.scalar(select(CollectionPlan.plan_id).where(*of_run))
    row = db.scalar(select(PlanFile).where(PlanFile.plan_id == plan_id, PlanFile.name == name))
    if in_run is None or row is None:
        raise NotFoundError(f"file {name!r} of plan {plan_id} in run {run_id}")
    return row.sha256


def record_status(db: Session, status: RunStatus) -> None:
    """Write what the stream says of a run into its row: changes of state while it goes on,
    and once its end (outcome, reason, verdicts); an ended run's row no longer changes."""
    values: dict[str, object] = {"state": status.state, "reason": status.reason}
    row = update(Run).where(Run.id == status.run_id, Run.ended_at.is_(None))
    if status.ended_ms is None:
        # Progress arrives every flush; the row takes only changes of state (the live details
        # are in ClickHouse).
        row = row.where(Run.state != status.state)
    else:
        values |= {
            "ended_at": datetime.fromtimestamp(status.ended_ms / 1000, UTC),
            "outcome": status.state,
            "verdicts": {c.criterion: c.passed for c in status.criteria},
            "final_status": msgspec.to_builtins(status),
        }
    db.execute(row.values(**values))
