"""Plans and their files: one ``.jmx`` (a JMeter plan) or locustfiles (``.py``, a Locust plan),
and any data files, checked on upload."""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session

from control.db.models import Plan, PlanFile, now
from control.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    TooLargeError,
    UnsupportedError,
)
from control.files.storage import FileStorage
from control.schemas import FileOut, Page, PlanOut
from control.services.access import name_free, plan_of, project_of
from control.services.auth import Caller
from control.services.jmx import check_jar, check_jmx, check_python, check_text
from control.services.pages import Paging, in_project

#: Safe file names: no path, no leading dot, printable ASCII letters, digits and ``._ -``.
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,254}$")
DATA_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".json", ".dat"})


def create(db: Session, who: Caller, project_id: int, name: str) -> PlanOut:
    project = project_of(db, who, project_id)
    name_free(db, Plan, project.id, name)
    plan = Plan(project_id=project.id, name=name)
    db.add(plan)
    db.flush()
    return _out(db, plan)


def listing(db: Session, who: Caller, project_id: int, page: Paging) -> Page[PlanOut]:
    return in_project(db, who, project_id, Plan, page, lambda p: _out(db, p))


def get(db: Session, who: Caller, plan_id: int) -> PlanOut:
    return _out(db, plan_of(db, who, plan_id)[0])


def rename(db: Session, who: Caller, plan_id: int, name: str) -> PlanOut:
    plan, _ = plan_of(db, who, plan_id)
    name_free(db, Plan, plan.project_id, name, plan.id)
    plan.name = name
    return _out(db, plan)


def delete(db: Session, files: FileStorage, who: Caller, plan_id: int) -> None:
    plan, _ = plan_of(db, who, plan_id)
    db.delete(plan)
    db.commit()  # refused while a collection uses the plan (a foreign key)
    files.delete_prefix(f"plans/{plan_id}/")


def files_of(db: Session, who: Caller, plan_id: int) -> list[FileOut]:
    plan, _ = plan_of(db, who, plan_id)
    return _files(db, plan.id)


async def upload(
    db: Session,
    files: FileStorage,
    who: Caller,
    plan_id: int,
    name: str,
    body: AsyncIterator[bytes],
    max_bytes: int,
    declared_bytes: int | None = None,
    jars: bool = False,
) -> FileOut:
    """Store (or replace) a file of the plan from ``body``, checked: one test plan per plan, a
    JMX must be a JMeter test plan, data must be UTF-8 text, a ``.jar`` (where the server takes
    them: ``jars``) a jar; a body declared larger than ``max_bytes`` is refused before it is
    read."""
    plan, _ = plan_of(db, who, plan_id)
    kind = kind_of(name, jars)
    if kind == "jmx":
        jmx = (PlanFile.plan_id == plan.id, PlanFile.kind == "jmx", PlanFile.name != name)
        other = db.scalar(select(PlanFile.name).where(*jmx))
        if other is not None:
            raise ConflictError(
                f"plan {plan.id} has a test plan already ({other}); delete it first"
            )
    if declared_bytes is not None and declared_bytes > max_bytes:
        raise TooLargeError(f"{name}: larger than the limit of {max_bytes:,} bytes")
    key = f"plans/{plan.id}/{name}"
    try:
        stored = await files.put(key, body, max_bytes)
    except TooLargeError as exc:
        raise TooLargeError(f"{name}: {exc}") from exc
    code = [files.path(f"plans/{plan.id}/{n}") for n in db.scalars(select(PlanFile.name).where(
        PlanFile.plan_id == plan.id, PlanFile.kind == "jar"))] if kind == "jmx" else []  # fmt: skip
    try:  # a JMX is parsed in a worker thread: the event loop serves others meanwhile
        records = await to_thread.run_sync(_check_content, files, key, name, kind, code)
    except InvalidError:
        files.delete(key)
        raise
    row = db.scalar(select(PlanFile).where(PlanFile.plan_id == plan.id, PlanFile.name == name))
    if row is None:
        row = PlanFile(plan_id=plan.id, name=name, kind=kind, size_bytes=0, sha256="")
        db.add(row)
    row.size_bytes, row.sha256, row.uploaded_at = stored.size_bytes, stored.sha256, now()
    row.records = records
    db.flush()
    return FileOut(name=name, kind=kind, size_bytes=stored.size_bytes, sha256=stored.sha256,
                   uploaded_at=row.uploaded_at)  # fmt: skip


def download(
    db: Session, files: FileStorage, who: Caller, plan_id: int, name: str
) -> tuple[Iterator[bytes], str]:
    """The file's bytes and its SHA-256."""
    plan, _ = plan_of(db, who, plan_id)
    row = _file(db, plan.id, name)
    return files.read(f"plans/{plan.id}/{name}"), row.sha256


def delete_file(db: Session, files: FileStorage, who: Caller, plan_id: int, name: str) -> None:
    plan, _ = plan_of(db, who, plan_id)
    db.delete(_file(db, plan.id, name))
    db.commit()
    files.delete(f"plans/{plan.id}/{name}")


def _file(db: Session, plan_id: int, name: str) -> PlanFile:
    row = db.scalar(select(PlanFile).where(PlanFile.plan_id == plan_id, PlanFile.name == name))
    if row is None:
        raise NotFoundError(f"file {name!r} of plan {plan_id}")
    return row


def _files(db: Session, plan_id: int) -> list[FileOut]:
    rows = db.scalars(select(PlanFile).where(PlanFile.plan_id == plan_id).order_by(PlanFile.name))
    return [
        FileOut(name=f.name, kind=f.kind, size_bytes=f.size_bytes, sha256=f.sha256,
                uploaded_at=f.uploaded_at)
        for f in rows
    ]  # fmt: skip


def _out(db: Session, plan: Plan) -> PlanOut:
    return PlanOut(id=plan.id, project_id=plan.project_id, name=plan.name,
                   created_at=plan.created_at, files=_files(db, plan.id))  # fmt: skip


def kind_of(name: str, jars: bool = False) -> str:
    """``jmx``, ``py``, ``java``, ``csv``, ``data`` or (``jars``) ``jar`` by its name; a name a
    plan does not take is refused."""
    if not FILE_NAME.match(name) or ".." in name:
        raise InvalidError(
            f"file name {name!r}: use letters, digits, '.', '_', '-' and spaces, starting with a "
            "letter or digit, at most 255 characters"
        )
    suffix = Path(name).suffix.lower()
    if suffix == ".jmx":
        return "jmx"
    if suffix in DATA_SUFFIXES:
        return "csv" if suffix == ".csv" else "data"
    if suffix in (".py", ".java"):
        return suffix[1:]
    if suffix == ".jar":
        if jars:
            return "jar"
        raise UnsupportedError(f"{name}: this server takes no .jar files in plans (JMeter would "
                               "run their code; FILES__PLAN_JARS turns them on)")  # fmt: skip
    accepted = ", ".join(sorted(DATA_SUFFIXES))
    raise UnsupportedError(f"{name}: a plan takes one .jmx (JMeter), .py files (Locust) or .java "
                           f"files (Gatling), and data files ({accepted})")  # fmt: skip


def _check_content(
    files: FileStorage, key: str, name: str, kind: str, code: list[Path | None]
) -> int | None:
    """A JMX must be a JMeter test plan the engines can run (with the plan's jars, ``code``); a
    jar a jar; CSV and text data must be UTF-8. A CSV's records (its header included; a quoted
    field may hold newlines) are counted, for the collections that split it among engines."""
    path = files.path(key)
    assert path is not None
    if kind == "jmx":
        check_jmx(path, name, [p for p in code if p is not None])
        return None
    if kind == "jar":
        check_jar(path, name)
        return None
    if kind == "py":
        check_python(path, name)
        return None
    if kind == "java":
        check_text(path, name)
        return None
    records = None
    try:
        with path.open(encoding="utf-8", newline="") as text:
            if kind == "csv":
                with contextlib.suppress(csv.Error):  # a field over the csv module's limit
                    records = sum(1 for _ in csv.reader(text))
            while text.read(1 << 20):  # the rest is UTF-8 too
                pass
    except UnicodeDecodeError as exc:
        raise InvalidError(f"{name} is not UTF-8 text: {exc.reason} at byte {exc.start} of a "
                           "block") from exc  # fmt: skip
    return records
