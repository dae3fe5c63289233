"""``shibuya dev images`` and ``shibuya dev compose``: the container images built here and the
compose stack, with podman (docs/containers.md)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from shibuya.dev import images as built
from shibuya.dev.procs import ServiceError

NAMES = tuple(built.IMAGES)


def images(
    names: Annotated[
        list[str] | None,
        typer.Argument(help=f"which to build, of: {', '.join(NAMES)} (default: all)"),
    ] = None,
) -> None:
    """Build the project's images with podman from docker/*.Dockerfile, on Debian bookworm bases
    made here with mmdebstrap (no image registry needed); an image is rebuilt only when its inputs
    changed. Needs `apt-get install podman buildah runc mmdebstrap`. Prints each image, its size
    and the seconds it took."""
    chosen = names or list(NAMES)
    unknown = sorted(set(chosen) - set(NAMES))
    if unknown:
        typer.echo(f"error: no image {', '.join(unknown)}; there are: {', '.join(NAMES)}", err=True)
        raise typer.Exit(2)
    for name in chosen:
        started = time.monotonic()
        try:
            (ref,) = built.build_all([name], quiet=False)
        except ServiceError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        took = time.monotonic() - started
        typer.echo(f"{ref}\t{built.size_mb(ref):.0f} MB\t{took:.0f} s")


def compose(
    ctx: typer.Context,
    stop_service: Annotated[
        bool, typer.Option("--stop-service", help="end podman's API service, then exit")
    ] = False,
) -> None:
    """docker compose with podman: `shibuya dev compose up -d` runs `docker compose -f
    docker-compose.yml -f docker-compose.local.yml up -d` in the repository, against podman's
    Docker-compatible API (started on first use, left running). Docker Compose is built from the Go
    module proxy once. Build the images first (`shibuya dev images`)."""
    from shibuya.dev import compose as stack

    if stop_service:
        typer.echo("stopped podman's API service" if stack.stop_service() else "it was not running")
        return
    try:
        code = stack.compose(ctx.args).returncode
    except ServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)
