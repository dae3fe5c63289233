"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from control.db.database import Database
from control.db.models import Base


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_migrations_match_the_models(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(url)
    try:
        db.migrate()
        db.migrate()  # a second start changes nothing
        with db.engine.connect() as c:
            diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    finally:
        db.close()
    assert diff == []
