"""Launches: a collection's engines deployed, from deploy to purge — the rows usage is counted
from, kept in step with what the scheduler runs.

A deploy inserts the launch first (one active launch per collection is a unique index, so of two
replicas racing, one inserts and the other finds it) and then asks the scheduler, which creates
only what is missing. A purge asks the scheduler to remove the engines deployed before it was
issued and ends the launches begun before then, so a purge executed late never ends a newer
launch. Both are synchronous (the scheduler blocks); the API runs them in a thread.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control.db.models import Collection, CollectionPlan, Launch
from control.schedulers import Deployment, PlanEngines, Scheduler, SchedulerError

log = logging.getLogger(__name__)


def active(db: Session, collection_id: int) -> Launch | None:
    return db.scalar(
        select(Launch).where(Launch.collection_id == collection_id, Launch.purged_at.is_(None))
    )


def deploy(
    db: Session, scheduler: Scheduler, collection: Collection, user_id: int | None
) -> tuple[Launch, bool]:
    """The collection's active launch, created if there is none, with its engines deployed;
    and whether it was created. Deploying again creates only missing engines. A scheduler that
    fails leaves nothing of a new launch behind (:class:`SchedulerError` is raised)."""
    plans = list(db.scalars(select(CollectionPlan).where(
        CollectionPlan.collection_id == collection.id)))  # fmt: skip
    launch, created = active(db, collection.id), False
    if launch is None:
        launch = Launch(collection_id=collection.id, engines=sum(p.engines for p in plans),
                        virtual_users=sum(p.engines * p.threads_per_engine for p in plans),
                        launched_by=user_id)  # fmt: skip
        db.add(launch)
        try:
            db.commit()
            created = True
        except IntegrityError:  # another replica launched it a moment ago
            db.rollback()
            launch = active(db, collection.id)
            if launch is None:
                raise
    deployment = Deployment(
        collection_id=str(collection.id), project_id=str(collection.project_id),
        plans=[PlanEngines(plan_id=str(p.plan_id), engines=p.engines) for p in plans],
    )  # fmt: skip
    try:
        scheduler.deploy(deployment)
    except SchedulerError as exc:
        if created:  # nothing of it may stay behind
            at = datetime.now(UTC)
            scheduler.purge(str(collection.id), ms(at) + 1)
            end(db, collection.id, at, f"deploy failed: {exc}")
        raise
    return launch, created


def purge(
    db: Session, scheduler: Scheduler, collection_id: int, issued: datetime, reason: str
) -> tuple[int, Launch | None]:
    """Remove the engines deployed before ``issued`` and end the launches begun before it;
    (engines removed, the launch ended)."""
    removed = scheduler.purge(str(collection_id), ms(issued))
    return removed, end(db, collection_id, issued, reason, done=datetime.now(UTC))


def end(
    db: Session, collection_id: int, at: datetime, reason: str, done: datetime | None = None
) -> Launch | None:
    """End the active launch if it began before ``at``; it is recorded as purged when its
    engines were gone (``done``, default ``at``): usage counts until then, and heartbeats
    from before then are of engines going away."""
    launch = active(db, collection_id)
    if launch is None or ms(launch.launched_at) > ms(at):
        return None
    db.execute(
        update(Launch)
        .where(Launch.id == launch.id, Launch.purged_at.is_(None))
        .values(purged_at=done or at, purge_reason=reason[:500])
    )
    db.commit()
    db.refresh(launch)
    return launch


def utc(t: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def ms(t: datetime) -> int:
    return int(utc(t).timestamp() * 1000)
