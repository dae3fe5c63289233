"""A collection's engines: ``shibuya deploy``, ``purge``, ``status`` and ``engine-token``."""

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


@app.command("engine-token")
def client_engine_token(
    collection_id: Annotated[int, typer.Argument(help="the collection")],
    revoke: Annotated[
        bool, typer.Option(help="revoke every engine token issued to users instead")
    ] = False,
) -> None:
    """Print an engine token of a collection (shown once), for engines you run yourself: their
    SHIBUYA_SIDECAR_ENGINE_TOKEN. Engines the API deploys get one of their own."""
    from shibuya import client

    path = f"/api/collections/{collection_id}/engine-tokens"
    with client.connect() as c:
        if revoke:
            out = or_exit(lambda: client.call(c, "DELETE", path))
            typer.echo(f"{out['revoked']} engine tokens revoked")
            return
        typer.echo(or_exit(lambda: client.call(c, "POST", path))["token"])


@app.command("status")
def client_status(
    collection_id: Annotated[int, typer.Argument(help="the collection")],
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
) -> None:
    """A collection's engines per plan (asked for, deployed, ready, running) and each engine."""
    from shibuya import client

    show(f"/api/collections/{collection_id}/status", as_json,
          lambda r: [client.status_table(r)])  # fmt: skip
