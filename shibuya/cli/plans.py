"""Plans and collections from files: ``shibuya upload`` and ``shibuya apply``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shibuya.cli.common import or_exit

app = typer.Typer()


@app.command("upload")
def client_upload(
    plan_id: Annotated[int, typer.Argument(help="the plan")],
    files: Annotated[list[Path], typer.Argument(help="its .jmx and data files", exists=True)],
) -> None:
    """Upload files to a plan (SHIBUYA_URL, SHIBUYA_TOKEN)."""
    from shibuya import client

    with client.connect() as c:
        for f in or_exit(lambda: client.upload(c, plan_id, files)):
            typer.echo(f"{f['name']}: {f['size_bytes']:,} bytes, sha256 {f['sha256']}")


@app.command("apply")
def client_apply(
    collection_id: Annotated[int, typer.Argument(help="the collection")],
    config: Annotated[Path, typer.Argument(help="its multi-test YAML", exists=True)],
) -> None:
    """Set a collection's plans and criteria from a multi-test YAML config."""
    from shibuya import client

    with client.connect() as c:
        out = or_exit(lambda: client.apply(c, collection_id, config))
    typer.echo(f"collection {out['id']}: {len(out['plans'])} plans, {out['engines']} engines, "
               f"{out['virtual_users']} virtual users")  # fmt: skip
    for warning in out.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
