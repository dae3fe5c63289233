"""Usage: engine-hours and virtual-user-hours of launches, and runs started, per project."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from control.db.models import Collection, Group, Launch, Project, Run, utc
from control.errors import InvalidError
from control.schemas import RunningOut, UsageOut, UsageReportOut
from control.services.auth import Caller

#: The dates a usage report may name (arithmetic on them stays within datetime's range).
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def report(
    db: Session, who: Caller, since: datetime | None, until: datetime | None
) -> UsageReportOut:
    """The part of each launch within the period (default: the 30 days before ``until``, which
    defaults to now), and runs started in it, per project the caller can see."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and not EARLIEST <= utc(value) <= LATEST:
            raise InvalidError(f"{name}: between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    until = utc(until) if until else datetime.now(UTC)
    since = utc(since) if since else until - timedelta(days=30)
    if since >= until:
        raise InvalidError("since must be before until")
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
        start = max(utc(launch.launched_at), since)
        stop = min(utc(launch.purged_at) if launch.purged_at else until, until)
        hours = max(0.0, (stop - start).total_seconds() / 3600)
        u.launches += 1
        u.engine_hours += launch.engines * hours
        u.virtual_user_hours += launch.virtual_users * hours
    out = sorted(projects.values(), key=lambda u: u.project_id)
    return UsageReportOut(since=since, until=until, projects=out,
                          engine_hours=sum(u.engine_hours for u in out),
                          virtual_user_hours=sum(u.virtual_user_hours for u in out))  # fmt: skip


def running(db: Session, who: Caller) -> list[RunningOut]:
    """Collections with engines deployed or a run in progress, of the projects the caller can
    see (every one for an admin): the admin's page of what is running."""
    theirs = [] if who.is_admin else [Project.group_id.in_(who.groups)]
    rows = db.execute(
        select(Collection, Project.id, Project.name, Group.name, Launch, Run)
        .join(Project, Collection.project_id == Project.id)
        .join(Group, Project.group_id == Group.id)
        .outerjoin(Launch, (Launch.collection_id == Collection.id) & Launch.purged_at.is_(None))
        .outerjoin(Run, (Run.collection_id == Collection.id) & Run.ended_at.is_(None))
        .where(or_(Launch.id.is_not(None), Run.id.is_not(None)), *theirs)
        .order_by(Project.name, Collection.name)
    ).all()  # fmt: skip
    return [
        RunningOut(project_id=pid, project=project, group=group, collection_id=c.id,
                   collection=c.name, engines=launch.engines if launch else 0,
                   virtual_users=launch.virtual_users if launch else 0,
                   launched_at=launch.launched_at if launch else None,
                   run_id=run.id if run else None, run_state=run.state if run else None)
        for c, pid, project, group, launch, run in rows
    ]  # fmt: skip
