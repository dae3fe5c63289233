"""Projects, plans and collections by name: ``shibuya list``, ``get``, ``delete``, and a
collection's history, ``shibuya runs``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from shibuya.cli.common import CollectionRef, Output, session
from shibuya.output import Format, Rows

app = typer.Typer()

_KINDS = {"project": "projects", "plan": "plans", "collection": "collections"}
KindName = StrEnum("KindName", {k: k for k in [*_KINDS, *_KINDS.values()]})  # type: ignore[misc]
Kind = Annotated[KindName, typer.Argument(help="project, plan or collection (or plural)")]
Ref = Annotated[
    str,
    typer.Argument(
        help="a project's NAME; a plan's or collection's "
        "PROJECT/NAME, or NAME when it is the only one"
    ),
]


def _plural(kind: KindName) -> str:
    return _KINDS.get(kind.value, kind.value)


@app.command("list")
def client_list(
    kind: Kind,
    project: Annotated[str | None, typer.Argument(help="only this project's")] = None,
    output: Output = Format.table,
) -> None:
    """List your projects, or the plans or collections of one project (or of all of them)."""
    from rich.console import Console

    from shibuya.names import every
    from shibuya.output import emit
    from shibuya.tables import when

    plural = _plural(kind)
    with session() as (c, names):
        projects = [names.project(project)] if project else names.projects()
        if plural == "projects":
            grid = Rows("projects", ["name", "group", "id", "created (UTC)"])
            for p in projects:
                grid.add(p["name"], p["group"], p["id"], when(p["created_at"]))
            emit(Console(), projects, [grid], output)
            return
        items = [
            {**x, "project": p["name"]}
            for p in projects
            for x in every(c, f"/api/projects/{p['id']}/{plural}")
        ]
    if plural == "plans":
        grid = Rows("plans", ["project/name", "id", "files", "created (UTC)"])
        for x in items:
            files = " ".join(f["name"] for f in x["files"])
            grid.add(f"{x['project']}/{x['name']}", x["id"], files, when(x["created_at"]))
    else:
        grid = Rows(
            "collections",
            ["project/name", "id", "plans", "engines", "virtual users", "criteria"],
            numeric=frozenset({"engines", "virtual users"}),
        )
        for x in items:
            grid.add(
                f"{x['project']}/{x['name']}",
                x["id"],
                " ".join(p["name"] for p in x["plans"]),
                x["engines"],
                x["virtual_users"],
                len(x["thresholds"]),
            )
    emit(Console(), items, [grid], output)


@app.command("get")
def client_get(kind: Kind, ref: Ref, output: Output = Format.table) -> None:
    """One project, plan or collection: its settings, files or plans."""
    from rich.console import Console

    from shibuya.output import emit

    plural = _plural(kind)
    with session() as (_, names):
        found = {"projects": names.project, "plans": names.plan, "collections": names.collection}[
            plural
        ](ref)
    emit(Console(), found, _grids(plural, found), output)


def _grids(kind: str, x: dict[str, Any]) -> list[Rows]:
    from shibuya.tables import when

    if kind == "projects":
        grid = Rows(f"project {x['name']}", ["field", "value"])
        for key in ("name", "group", "id"):
            grid.add(key, x[key])
        grid.add("created (UTC)", when(x["created_at"]))
        return [grid]
    path = f"{x['project']['name']}/{x['name']}"
    if kind == "plans":
        grid = Rows(
            f"plan {path} (id {x['id']})",
            ["file", "kind", "bytes", "sha256", "uploaded (UTC)"],
            numeric=frozenset({"bytes"}),
        )
        for f in x["files"]:
            grid.add(
                f["name"], f["kind"], f"{f['size_bytes']:,}", f["sha256"], when(f["uploaded_at"])
            )
        return [grid]
    plans = Rows(
        f"collection {path} (id {x['id']}), CSV split {x['csv_split']}",
        ["plan", "engines", "threads", "ramp-up s", "duration s", "csv split"],
        numeric=frozenset({"engines", "threads", "ramp-up s", "duration s"}),
    )
    for p in x["plans"]:
        plans.add(
            p["name"],
            p["engines"],
            p["threads_per_engine"],
            p["ramp_up_s"],
            p["duration_s"],
            p["csv_split"],
        )
    criteria = Rows("criteria", ["criterion"])
    for text in x["thresholds"]:
        criteria.add(text)
    return [plans, criteria]


@app.command("delete")
def client_delete(kind: Kind, ref: Ref) -> None:
    """Delete a project (with its plans and collections), a plan, or a collection."""
    from shibuya import client

    plural = _plural(kind)
    with session() as (c, names):
        found = {"projects": names.project, "plans": names.plan, "collections": names.collection}[
            plural
        ](ref)
        client.call(c, "DELETE", f"/api/{plural}/{found['id']}")
    typer.echo(f"{plural[:-1]} {ref} deleted")


@app.command("runs")
def client_runs(
    collection: CollectionRef,
    limit: Annotated[int, typer.Option(help="the newest so many", min=1, max=200)] = 20,
    output: Output = Format.table,
) -> None:
    """A collection's runs, newest first: id, start, duration, samples, errors, verdict."""
    from rich.console import Console

    from shibuya import client, tables
    from shibuya.output import emit

    with session() as (c, names):
        found = names.collection(collection)
        page = client.call(
            c, "GET", f"/api/collections/{found['id']}/runs", params={"limit": limit}
        )
    emit(Console(), page["items"], [tables.runs(page["items"], names.path(found))], output)
