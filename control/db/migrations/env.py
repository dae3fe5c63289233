"""Alembic's environment: migrations run on the connection
:meth:`control.db.database.Database.migrate` passes in (never from alembic.ini); on PostgreSQL
under an advisory lock, so replicas starting together migrate once."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from control.db.models import Base

connection = context.config.attributes["connection"]
if connection.dialect.name == "postgresql":
    connection.execute(text("SELECT pg_advisory_xact_lock(727274)"))  # "shibuya" migrations
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
)
with context.begin_transaction():
    context.run_migrations()
