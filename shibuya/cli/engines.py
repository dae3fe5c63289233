"""A collection's engines: ``shibuya deploy``, ``purge``, ``status`` and ``engine-token``."""

from __future__ import annotations

from typing import Annotated

import typer

from shibuya.cli.common import CollectionRef, Output, session
from shibuya.output import Format

app = typer.Typer()


@app.command("deploy")
def client_deploy(collection: CollectionRef) -> None:
    """Deploy a collection's engines (idempotent: only missing engines are started)."""
    from shibuya import client

    with session() as (c, names):
        found = names.collection(collection)
        launch = client.call(c, "POST", f"/api/collections/{found['id']}/deploy")
    typer.echo(f"launch {launch['id']}: {launch['engines']} engines, "
               f"{launch['virtual_users']} virtual users")  # fmt: skip


@app.command("purge")
def client_purge(
    collection: CollectionRef,
    reason: Annotated[str, typer.Option(help="why, for the record")] = "",
) -> None:
    """Remove a collection's engines and end its launch."""
    from shibuya import client

    with session() as (c, names):
        path = f"/api/collections/{names.collection(collection)['id']}/purge"
        out = client.call(c, "POST", path, json={"reason": reason})
    typer.echo(f"{out['engines_removed']} engines removed")


@app.command("engine-token")
def client_engine_token(
    collection: CollectionRef,
    revoke: Annotated[
        bool, typer.Option(help="revoke every engine token issued to users instead")
    ] = False,
) -> None:
    """Print an engine token of a collection (shown once), for engines you run yourself: their
    SHIBUYA_SIDECAR_ENGINE_TOKEN. Engines the API deploys get one of their own."""
    from shibuya import client

    with session() as (c, names):
        path = f"/api/collections/{names.collection(collection)['id']}/engine-tokens"
        if revoke:
            out = client.call(c, "DELETE", path)
            typer.echo(f"{out['revoked']} engine tokens revoked")
            return
        typer.echo(client.call(c, "POST", path)["token"])


@app.command("status")
def client_status(collection: CollectionRef, output: Output = Format.table) -> None:
    """A collection's engines per plan (asked for, deployed, ready, running) and each engine."""
    from rich.console import Console

    from shibuya import client, tables
    from shibuya.output import emit

    with session() as (c, names):
        found = names.collection(collection)
        answer = client.call(c, "GET", f"/api/collections/{found['id']}/status")
    emit(Console(), answer, [tables.status(answer, names.path(found))], output)
