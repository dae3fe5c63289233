"""The metadata store (SQLite by default, PostgreSQL for replicas): engine, sessions, migrations.

:class:`Database` is the one way into it. A write a constraint refuses (a duplicate name, a row
still in use, the one active run per collection) raises :class:`control.errors.ConstraintError`,
never SQLAlchemy's own error: callers above this package deal in the control plane's errors. The
services hold SQLAlchemy ``Session`` objects; routes and the CLI only pass them along
(``Session`` is re-exported here for their annotations).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from anyio import to_thread
from sqlalchemy import Engine, ExceptionContext, create_engine, event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from control.errors import ConstraintError

__all__ = ["Database", "Session", "Sessions", "in_thread"]

T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"

Sessions = sessionmaker[Session]


class Database:
    def __init__(self, url: str) -> None:
        self.engine = _open_engine(url)
        self.sessions: Sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent; safe for replicas starting at
        once on PostgreSQL)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self.engine.connect() as c:
            c.execute(text("SELECT 1"))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed at the end, rolled back on an error."""
        with self.sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()


async def in_thread(db: Session, work: Callable[..., T], *args: Any) -> T:
    """Database work of async code, in a worker thread. Its transaction ends with it (committed,
    or rolled back on an error), so the connection goes back to the pool before the caller awaits
    anything else — a slow ClickHouse query or a Kafka send."""

    def run() -> T:
        try:
            result = work(*args)
        except BaseException:
            db.rollback()
            raise
        db.commit()
        return result

    return await to_thread.run_sync(run)


def _open_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys on and a busy timeout (it is one file
    shared by the threads of one process)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=10, max_overflow=20)  # fmt: skip

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    event.listen(engine, "handle_error", _constraint_errors)
    return engine


def _constraint_errors(context: ExceptionContext) -> None:
    error = context.sqlalchemy_exception
    if isinstance(error, IntegrityError):
        raise ConstraintError(error.orig) from error
