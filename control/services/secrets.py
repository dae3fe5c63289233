"""A collection's secrets: set, listed (names only), removed; and given, as JMeter properties,
to the engines of its run in progress — with their engine token, never on the commands topic
(which every engine reads), never in an answer to a user."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from control.db.models import CollectionSecret, now
from control.errors import ForbiddenError, NotFoundError
from control.schemas import SecretOut
from control.services import engine_tokens
from control.services.access import collection_of
from control.services.auth import Caller
from control.vault import Vault

#: At most this many secrets a collection.
MAX_SECRETS = 100


def put(db: Session, vault: Vault, who: Caller, collection_id: int, name: str, value: str
        ) -> SecretOut:  # fmt: skip
    c, _ = collection_of(db, who, collection_id)
    row = _row(db, c.id, name)
    if row is None:
        count = len(db.scalars(select(CollectionSecret.id).where(
            CollectionSecret.collection_id == c.id)).all())  # fmt: skip
        if count >= MAX_SECRETS:
            raise ForbiddenError(f"a collection has at most {MAX_SECRETS} secrets")
        row = CollectionSecret(collection_id=c.id, name=name, sealed="")
        db.add(row)
    row.sealed, row.updated_at = vault.seal(value), now()
    db.flush()
    return SecretOut(name=row.name, updated_at=row.updated_at)


def listing(db: Session, who: Caller, collection_id: int) -> list[SecretOut]:
    c, _ = collection_of(db, who, collection_id)
    rows = db.scalars(select(CollectionSecret).where(CollectionSecret.collection_id == c.id)
                      .order_by(CollectionSecret.name))  # fmt: skip
    return [SecretOut(name=r.name, updated_at=r.updated_at) for r in rows]


def delete(db: Session, who: Caller, collection_id: int, name: str) -> None:
    c, _ = collection_of(db, who, collection_id)
    row = _row(db, c.id, name)
    if row is None:
        raise NotFoundError(f"secret {name!r} of collection {collection_id}")
    db.delete(row)


def any_of(db: Session, collection_id: int) -> bool:
    return db.scalar(select(CollectionSecret.id).where(
        CollectionSecret.collection_id == collection_id).limit(1)) is not None  # fmt: skip


def for_engine(db: Session, vault: Vault, run_id: str, token: str | None) -> dict[str, str]:
    """The secrets of a run in progress, for an engine token of the run's collection."""
    run = engine_tokens.run_in_progress(db, run_id, token)
    rows = db.scalars(select(CollectionSecret).where(
        CollectionSecret.collection_id == run.collection_id))  # fmt: skip
    return {r.name: vault.unseal(r.sealed) for r in rows}


def _row(db: Session, collection_id: int, name: str) -> CollectionSecret | None:
    of = (CollectionSecret.collection_id == collection_id, CollectionSecret.name == name)
    return db.scalar(select(CollectionSecret).where(*of))
