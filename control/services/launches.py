"""Launches: a collection's engines deployed, from deploy to purge — the rows usage is counted
from, kept in step with what the scheduler runs.

A deploy inserts the launch first (one active launch per collection is a unique index, so of two
replicas racing, one inserts and the other finds it) and then asks the scheduler, which creates
only what is missing. A purge asks the scheduler to remove the engines deployed before it was
issued and ends the launches begun before then, so a purge executed late never ends a newer
launch. The scheduler blocks: async callers run these in a thread.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from control.db.database import in_thread
from control.db.models import Collection, CollectionPlan, Group, Launch, Project, Run, utc
from control.errors import ConflictError, ConstraintError, SchedulerError, UnavailableError
from control.kafka import Producer
from control.schedulers import Deployment, PlanEngines, Scheduler
from control.schemas import LaunchOut, Page, PurgeOut
from control.services import engine_tokens
from control.services.access import collection_of
from control.services.auth import Caller
from control.services.messages import command
from control.services.pages import Paging, paginate
from control.settings import LimitsSettings
from wire import PurgeEngines, Topics

log = logging.getLogger(__name__)


def launch_out(launch: Launch) -> LaunchOut:
    return LaunchOut(id=launch.id, collection_id=launch.collection_id, engines=launch.engines,
                     virtual_users=launch.virtual_users, launched_at=launch.launched_at,
                     purged_at=launch.purged_at, purge_reason=launch.purge_reason)  # fmt: skip


def deploy_collection(
    db: Session, scheduler: Scheduler, limits: LimitsSettings, who: Caller, collection_id: int
) -> tuple[LaunchOut, bool]:
    """Deploy the collection's engines (as many per plan as its config says); the launch, and
    whether it is new. Deploying again starts only engines that are missing."""
    collection, _ = collection_of(db, who, collection_id)
    if not db.scalar(select(CollectionPlan.plan_id).where(
            CollectionPlan.collection_id == collection.id)):  # fmt: skip
        raise ConflictError(f"collection {collection_id} has no plans: import its config first")
    launch, created = deploy(db, scheduler, limits, collection, who.user_id)
    return launch_out(launch), created


async def purge_collection(
    db: Session,
    scheduler: Scheduler,
    producer: Producer,
    topics: Topics,
    who: Caller,
    collection_id: int,
    reason: str,
) -> PurgeOut:
    """Remove the collection's engines and end its launch (refused while a run is in progress),
    then tell the stream's GC, which counts the collection as purged; the replica that executes
    the command finds nothing left to remove."""
    collection, _ = await in_thread(db, collection_of, db, who, collection_id)
    running = await in_thread(db, run_in_progress, db, collection.id)
    if running is not None:
        raise ConflictError(f"collection {collection_id} has run {running} in progress: stop it "
                            "first")  # fmt: skip
    issued = datetime.now(UTC)
    why = f"purged by {who.name}" + (f": {reason}" if reason else "")
    removed, launch = await in_thread(db, purge, db, scheduler, collection.id, issued, why)
    purged = PurgeEngines(command_id=f"{collection.id}.purge.{ms(issued)}",
                          collection_id=str(collection.id), reason=why,
                          issued_ms=ms(issued))  # fmt: skip
    try:
        await producer.send([command(topics, str(collection.id), purged)])
    except UnavailableError as exc:  # the engines are gone either way; the GC finds out later
        log.warning("purge of collection %d not announced to the stream: %s", collection.id, exc)
    return PurgeOut(engines_removed=removed, launch=launch_out(launch) if launch else None)


def execute_purge(db: Session, scheduler: Scheduler, command: PurgeEngines) -> None:
    """A purge the stream decided (or a user's, announced): executed once more finds nothing."""
    issued = datetime.fromtimestamp(command.issued_ms / 1000, UTC)
    try:
        removed, launch = purge(db, scheduler, int(command.collection_id), issued, command.reason)
    except SchedulerError as exc:
        # Not retried here: engines left running keep heartbeating, so the stream's GC sees the
        # collection deployed again and purges it after another idle period.
        log.error("purge %s failed: %s", command.command_id, exc)
        return
    if removed or launch is not None:
        log.info("purge %s: %d engines removed (%s)", command.command_id, removed,
                 command.reason)  # fmt: skip


def listing(db: Session, who: Caller, collection_id: int, page: Paging) -> Page[LaunchOut]:
    """The collection's launches, newest first."""
    collection, _ = collection_of(db, who, collection_id)
    query = select(Launch).where(Launch.collection_id == collection.id)
    return paginate(db, query, Launch.launched_at.desc(), page, launch_out)


def _within_quota(db: Session, limits: LimitsSettings, collection: Collection, new: Launch) -> None:
    """Refuse a launch that would take its group past its quota of engines or virtual users."""
    group_id = db.scalar(select(Project.group_id).where(Project.id == collection.project_id))
    engines, users = db.execute(
        select(func.coalesce(func.sum(Launch.engines), 0),
               func.coalesce(func.sum(Launch.virtual_users), 0))
        .join(Collection, Launch.collection_id == Collection.id)
        .join(Project, Collection.project_id == Project.id)
        .where(Project.group_id == group_id, Launch.purged_at.is_(None))
    ).one()  # fmt: skip
    group = db.scalar(select(Group.name).where(Group.id == group_id))
    for what, deployed, more, quota, setting in (
        ("engines", engines, new.engines, limits.max_engines_per_group, "MAX_ENGINES_PER_GROUP"),
        ("virtual users", users, new.virtual_users, limits.max_virtual_users_per_group,
         "MAX_VIRTUAL_USERS_PER_GROUP"),
    ):  # fmt: skip
        if deployed + more > quota:
            raise ConflictError(
                f"group {group!r} has {deployed:,} {what} deployed; {more:,} more would pass its "
                f"quota of {quota:,} (LIMITS__{setting}): purge other collections first"
            )


def run_in_progress(db: Session, collection_id: int) -> str | None:
    return db.scalar(select(Run.id).where(Run.collection_id == collection_id,
                                          Run.ended_at.is_(None)))  # fmt: skip


def active(db: Session, collection_id: int) -> Launch | None:
    return db.scalar(
        select(Launch).where(Launch.collection_id == collection_id, Launch.purged_at.is_(None))
    )


def deploy(
    db: Session, scheduler: Scheduler, limits: LimitsSettings, collection: Collection,
    user_id: int | None,
) -> tuple[Launch, bool]:  # fmt: skip
    """The collection's active launch, created if there is none, with its engines deployed;
    and whether it was created. Deploying again creates only missing engines. A new launch must
    fit its group's quotas. A scheduler that fails leaves nothing of a new launch behind
    (:class:`SchedulerError` is raised)."""
    plans = list(db.scalars(select(CollectionPlan).where(
        CollectionPlan.collection_id == collection.id)))  # fmt: skip
    launch, created = active(db, collection.id), False
    if launch is None:
        launch = Launch(collection_id=collection.id, engines=sum(p.engines for p in plans),
                        virtual_users=sum(p.engines * p.threads_per_engine for p in plans),
                        launched_by=user_id)  # fmt: skip
        _within_quota(db, limits, collection, launch)
        db.add(launch)
        try:
            db.commit()
            created = True
        except ConstraintError:  # another replica launched it a moment ago
            db.rollback()
            launch = active(db, collection.id)
            if launch is None:
                raise
    token = ""
    if scheduler.kind != "external":  # the engines it starts get a token of their own
        token = engine_tokens.issue(db, collection.id, "deploy")
        db.commit()
    deployment = Deployment(
        collection_id=str(collection.id), project_id=str(collection.project_id),
        plans=[PlanEngines(plan_id=str(p.plan_id), engines=p.engines, engine=p.engine)
               for p in plans],
        engine_token=token,
    )  # fmt: skip
    try:
        scheduler.deploy(deployment)
    except SchedulerError as exc:
        if created:  # nothing of it may stay behind
            at = datetime.now(UTC)
            scheduler.purge(str(collection.id), ms(at) + 1)
            engine_tokens.revoke_deployed(db, collection.id, at)
            end(db, collection.id, at, f"deploy failed: {exc}")
        raise
    return launch, created


def purge(
    db: Session, scheduler: Scheduler, collection_id: int, issued: datetime, reason: str
) -> tuple[int, Launch | None]:
    """Remove the engines deployed before ``issued`` and end the launches begun before it;
    (engines removed, the launch ended)."""
    removed = scheduler.purge(str(collection_id), ms(issued))
    engine_tokens.revoke_deployed(db, collection_id, issued)
    db.commit()
    kept = scheduler.kept(str(collection_id))
    if kept:
        reason += (f"; {len(kept)} engines could not publish all their results in time: kept in "
                   f"{', '.join(kept)}")  # fmt: skip
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


def ms(t: datetime) -> int:
    return int(utc(t).timestamp() * 1000)
