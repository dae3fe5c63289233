"""A collection's engines: ``shibuya deploy``, ``purge`` and ``status``."""

from __future__ import annotations

from typing import Annotated

import typer

from shibuya.cli.common import or_exit, show

app = typer.Typer()


@app.command("deploy")
def client_deploy(collection_id: Annotated[int, typer.Argument(help="the collection")]) -> None:
    """Deploy a collection's engines (idempotent: only missing engines are started)."""
    from shibuya import client

    with client.connect() as c:
        launch = or_exit(lambda: client.call(c, "POST", f"/api/collections/{collection_id}/deploy"))
    typer.echo(f"launch {launch['id']}: {launch['engines']} engines, "
               f"{launch['virtual_users']} virtual users")  # fmt: skip


@app.command("purge")
def client_purge(
    collection_id: Annotated[int, typer.Argument(help="the collection")],
    reason: Annotated[str, typer.Option(help="why, for the record")] = "",
) -> None:
    """Remove a collection's engines and end its launch."""
    from shibuya import client

    path = f"/api/collections/{collection_id}/purge"
    with client.connect() as c:
        out = or_exit(lambda: client.call(c, "POST", path, json={"reason": reason}))
    typer.echo(f"{out['engines_removed']} engines removed")


@app.command("status")
def client_status(
    collection_id: Annotated[int, typer.Argument(help="the collection")],
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
) -> None:
    """A collection's engines per plan (asked for, deployed, ready, running) and each engine."""
    from shibuya import client

    show(f"/api/collections/{collection_id}/status", as_json,
          lambda r: [client.status_table(r)])  # fmt: skip
