"""Runs' rows read once a second for every caller (control/services/access.py ``Owned``): the
row is shared, the access decision is not — each caller's groups are checked on every call —
and a run not found is asked for again, since it may be committed a moment later."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event

from control.db.database import Database
from control.db.models import Collection, Group, Project, Run
from control.errors import NotFoundError
from control.services import access
from control.services.auth import Caller

ALICE = Caller(user_id=1, name="alice", groups=frozenset({1}), is_admin=False)
BOB = Caller(user_id=2, name="bob", groups=frozenset({2}), is_admin=False)


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'api.db'}")
    db.migrate()
    with db.sessions() as s, s.begin():
        rows = [Group(id=1, name="a"), Group(id=2, name="b"), Project(id=1, name="p", group_id=1)]
        for row in [*rows, Collection(id=1, project_id=1, name="c")]:
            s.add(row)
            s.flush()  # in order: the rows have no relationships to order them by
    return db


def _add_run(db: Database, run_id: str) -> None:
    with db.sessions() as s, s.begin():
        s.add(Run(id=run_id, collection_id=1, thresholds=["p99 > 1s"]))


def _count_queries(db: Database) -> list[str]:
    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_one_query_a_second_however_many_ask_and_each_caller_checked(db: Database) -> None:
    _add_run(db, "run-000000000001")
    clock = Clock()
    runs = access.runs(db, 1.0, clock)
    queries = _count_queries(db)

    async def main() -> None:
        rows = await asyncio.gather(*(runs.of(ALICE, "run-000000000001") for _ in range(20)))
        assert {id(r) for r in rows} == {id(rows[0])}
        assert rows[0].thresholds == ["p99 > 1s"]  # readable with its session closed
        with pytest.raises(NotFoundError, match="run run-000000000001"):
            await runs.of(BOB, "run-000000000001")  # the same row, another caller's groups
        assert len(queries) == 1
        clock.now += 1.0
        await runs.of(ALICE, "run-000000000001")
        assert len(queries) == 2

    asyncio.run(main())


def test_a_run_not_found_is_asked_for_again(db: Database) -> None:
    runs = access.runs(db, 1.0, Clock())
    queries = _count_queries(db)

    async def main() -> None:
        for _ in range(2):
            with pytest.raises(NotFoundError):
                await runs.of(ALICE, "run-000000000002")
        _add_run(db, "run-000000000002")
        assert (await runs.of(ALICE, "run-000000000002")).id == "run-000000000002"

    asyncio.run(main())
    assert len([q for q in queries if "FROM runs" in q]) == 3
