"""Engine tokens: what an engine fetches its run's plan files with.

A run's start travels on the commands topic, which every engine reads; it carries no secret.
An engine proves it serves the run's collection with a token of that collection instead:

* ``deploy`` tokens: each deploy through a scheduler issues one and hands it to the engines it
  starts (their environment; a Secret on Kubernetes); the purge revokes it;
* ``user`` tokens: issued by a member of the collection's group to engines someone else runs
  (``shibuya engine-token COLLECTION``), valid until revoked.

With a token, an engine reads the plan files of its own collection's run in progress, nothing
else. Only SHA-256 hashes are stored.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from control.db.models import EngineToken, Run, now, utc
from control.errors import ForbiddenError, UnauthenticatedError
from control.schemas import EngineTokenOut
from control.services.access import collection_of
from control.services.auth import Caller, token_hash

PREFIX = "she_"


def issue(db: Session, collection_id: int, kind: str) -> str:
    token = PREFIX + secrets.token_urlsafe(32)
    db.add(EngineToken(collection_id=collection_id, kind=kind, token_hash=token_hash(token)))
    db.flush()
    return token


def issue_to_user(db: Session, who: Caller, collection_id: int) -> EngineTokenOut:
    """A ``user`` token of the caller's collection (shown once)."""
    collection, _ = collection_of(db, who, collection_id)
    return EngineTokenOut(collection_id=collection.id,
                          token=issue(db, collection.id, "user"))  # fmt: skip


def revoke_users(db: Session, who: Caller, collection_id: int) -> int:
    """Revoke every ``user`` token of the caller's collection; how many."""
    collection, _ = collection_of(db, who, collection_id)
    return _revoke(db, collection.id, "user", now())


def revoke_deployed(db: Session, collection_id: int, before: datetime) -> int:
    """Revoke the ``deploy`` tokens issued before a purge."""
    return _revoke(db, collection_id, "deploy", before)


def collection_of_token(db: Session, token: str) -> int | None:
    """The collection a valid (not revoked) engine token serves."""
    return db.scalar(select(EngineToken.collection_id).where(
        EngineToken.token_hash == token_hash(token), EngineToken.revoked_at.is_(None)))  # fmt: skip


def _revoke(db: Session, collection_id: int, kind: str, before: datetime) -> int:
    live = select(EngineToken).where(
        EngineToken.collection_id == collection_id, EngineToken.kind == kind,
        EngineToken.revoked_at.is_(None),
    )  # fmt: skip
    # Compared in Python: SQLite keeps no time zone.
    tokens = [t for t in db.scalars(live) if utc(t.created_at) <= utc(before)]
    at = now()
    for t in tokens:
        t.revoked_at = at
    return len(tokens)


def run_in_progress(db: Session, run_id: str, token: str | None) -> Run:
    """The run, for an engine token of its collection while it is in progress; else refused —
    an engine token opens nothing else, and nothing once its run has ended."""
    run = db.get(Run, run_id)
    serves = collection_of_token(db, token) if token else None
    if run is None or serves is None or serves != run.collection_id:
        raise UnauthenticatedError("an engine token of this run's collection is required")
    if run.ended_at is not None:
        raise ForbiddenError(f"run {run_id} has ended")
    return run
