"""The metadata: who may do what (users, groups, tokens) and what they own (projects, plans,
files, collections, launches, runs).

Ownership is by group: a project belongs to one group; its members (and admins) may read and
change it and everything in it. Invariants that two API replicas could race on are constraints of
the database, not checks in Python: one active launch and one active run per collection are
partial unique indexes (SQLite and PostgreSQL both have them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def now() -> datetime:
    return datetime.now(UTC)


def utc(t: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Group(Timestamped, Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class User(Timestamped, Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    oidc_subject: Mapped[str | None] = mapped_column(String(300), unique=True, default=None)
    """``<issuer> <sub>`` of a user who logs in through OpenID Connect (None: a user of tokens
    only); their groups and admin flag are the provider's, taken at each login."""


class Membership(Base):
    __tablename__ = "memberships"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )


class ApiToken(Timestamped, Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    """A browser session's end (:mod:`control.services.sessions`); API tokens do not expire."""


class EngineToken(Timestamped, Base):
    """What an engine of a collection fetches a run's plan files with; only its SHA-256 is
    stored. ``deploy`` tokens are handed to the engines a deploy starts and revoked by the
    purge; ``user`` tokens are issued to engines someone else runs, until revoked."""

    __tablename__ = "engine_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class CollectionSecret(Timestamped, Base):
    """A secret of a collection (a password, an API key), sealed with the API's key
    (:class:`control.vault.Vault`): its engines get it as a JMeter property of their runs; the
    API never returns it."""

    __tablename__ = "collection_secrets"
    __table_args__ = (UniqueConstraint("collection_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    sealed: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Project(Timestamped, Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), index=True)
    """The owning group."""


class Plan(Timestamped, Base):
    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))


class PlanFile(Base):
    """A file of a plan: its ``.jmx`` or a data file. The bytes live in the file storage."""

    __tablename__ = "plan_files"
    __table_args__ = (UniqueConstraint("plan_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(10))
    """``jmx``, ``csv`` or ``data``."""
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    records: Mapped[int | None] = mapped_column(Integer, default=None)
    """A CSV's records, its header row included (``None``: not a CSV, or not countable)."""
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Collection(Timestamped, Base):
    __tablename__ = "collections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    csv_split: Mapped[bool] = mapped_column(Boolean, default=False)
    thresholds: Mapped[list[str]] = mapped_column(JSON, default=list)
    properties: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    env: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")


class CollectionPlan(Base):
    __tablename__ = "collection_plans"
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), primary_key=True)
    engine: Mapped[str] = mapped_column(String(20), default="jmeter", server_default="jmeter")
    engines: Mapped[int] = mapped_column(Integer)
    threads_per_engine: Mapped[int] = mapped_column(Integer)
    users: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ramp_up_s: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[int] = mapped_column(Integer)
    csv_split: Mapped[bool] = mapped_column(Boolean, default=False)
    properties: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    env: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")


class Launch(Base):
    """Engines deployed for a collection, from deploy to purge (usage in engine-hours)."""

    __tablename__ = "launches"
    __table_args__ = (
        Index(
            "uq_launches_one_active",
            "collection_id",
            unique=True,
            sqlite_where=text("purged_at IS NULL"),
            postgresql_where=text("purged_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    engines: Mapped[int] = mapped_column(Integer)
    virtual_users: Mapped[int] = mapped_column(Integer, server_default="0")
    """Threads over all engines: usage is counted in engine-hours and virtual-user-hours."""
    launched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    launched_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    purge_reason: Mapped[str] = mapped_column(String(500), server_default="")


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index(
            "uq_runs_one_active",
            "collection_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    state: Mapped[str] = mapped_column(String(20), default="deploying")
    outcome: Mapped[str | None] = mapped_column(String(20), default=None)
    reason: Mapped[str] = mapped_column(String(1000), default="")
    thresholds: Mapped[list[str]] = mapped_column(JSON, default=list)
    properties: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    env: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    plan_engines: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    """The engine type each plan ran on (plan id → jmeter, locust, gatling), as started."""
    verdicts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    file_token_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    """SHA-256 of the token the run's engines fetch its plan files with."""
    final_status: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """The stream's last ``run_status`` of the run (engines, samples, verdicts)."""
