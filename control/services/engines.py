"""A collection's engines as the scheduler and their heartbeats tell, and their logs."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control.db.database import in_thread
from control.db.models import Collection, CollectionPlan, Launch, Plan
from control.errors import NotFoundError
from control.results.queries import Results
from control.schedulers import Scheduler
from control.schemas import CollectionStatusOut, EngineOut, PlanStatusOut
from control.services import launches
from control.services.access import collection_of
from control.services.auth import Caller

#: Heartbeat states of an engine that takes part in a run.
BUSY = frozenset({"preparing", "running", "stopping"})


async def status(
    db: Session, scheduler: Scheduler, results: Results, collection: Collection, window_s: int,
    purge_at_ms: int | None = None,
) -> CollectionStatusOut:  # fmt: skip
    """Per plan: engines asked for, deployed (the scheduler), ready and running (heartbeats
    within ``window_s``); and every engine known to either."""
    plans, launch, run_id, last = await in_thread(db, _status_rows, db, collection.id)
    deployed = await asyncio.to_thread(scheduler.engines, str(collection.id))
    since_ms = int(time.time() * 1000) - window_s * 1000
    # Heartbeats from before the last purge, or a sidecar's last one, are of engines gone.
    heard = {h.engine_id: h for h in await results.engines(str(collection.id), since_ms)
             if h.ts_ms > last and not h.exiting}  # fmt: skip
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
        launch=launches.launch_out(launch) if launch else None, run_id=run_id, plans=out,
        engines=sorted(engines.values(), key=lambda e: (e.plan_id, e.index)),
        purge_at=datetime.fromtimestamp(purge_at_ms / 1000, UTC)
        if purge_at_ms is not None and engines else None,
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
            launches.run_in_progress(db, collection_id),
            0 if purged is None else launches.ms(purged))  # fmt: skip


def logs(
    db: Session, scheduler: Scheduler, who: Caller, collection_id: int, plan_id: int, index: int,
    tail_bytes: int,
) -> str:  # fmt: skip
    """The end of an engine's log (the sidecar's and JMeter's output)."""
    collection, _ = collection_of(db, who, collection_id)
    text = scheduler.logs(str(collection.id), str(plan_id), index, tail_bytes)
    if text is None:
        raise NotFoundError(f"engine {plan_id}-{index} of collection {collection_id} (with the "
                            f"{scheduler.kind} scheduler)")  # fmt: skip
    return text
