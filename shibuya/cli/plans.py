"""Plans and collections from files: ``shibuya apply``, ``validate`` and ``upload``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shibuya.cli.common import session

if TYPE_CHECKING:
    import httpx

    from shibuya.declare import Declared

app = typer.Typer()

#: Exit code of ``shibuya validate`` when a file has problems.
INVALID = 1


@app.command("apply")
def client_apply(
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            "-f",
            help="the YAML: a declaration (docs/config.md) or Shibuya's multi-test config",
            exists=True,
            dir_okay=False,
        ),
    ],
    dry_run: Annotated[bool, typer.Option(help="say what would change, change nothing")] = False,
) -> None:
    """Create or update what a YAML file declares — a project, its plans with their files, its
    collections — changing only what differs, and say what changed. Things are found by name."""
    from shibuya import reconcile

    declared = _load_or_exit(file)
    with session() as (c, _):
        if isinstance(declared, str):  # multi-test: its collection's id is in the file
            out = _multi_test(c, declared)
            typer.echo(
                f"collection {out['name']}: {len(out['plans'])} plans, {out['engines']} "
                f"engines, {out['virtual_users']} virtual users"
            )
            for warning in out.get("warnings", []):
                typer.echo(f"warning: {warning}", err=True)
            return
        changes = reconcile.apply(c, declared, dry_run=dry_run)
    prefix = "would change: " if dry_run else ""
    for change in changes:
        typer.echo(f"{prefix}{change}")
    if not changes:
        typer.echo(f"{file.name}: no changes, the API holds what it declares")


def _multi_test(c: httpx.Client, text: str) -> dict[str, Any]:
    import yaml

    from shibuya import client

    collection = yaml.safe_load(text)["multi-test"]["collectionid"]
    out: dict[str, Any] = client.call(
        c, "PUT", f"/api/collections/{collection}/config", content=text.encode()
    )
    return out


def _load_or_exit(path: Path) -> Declared | str:
    from control.services.config import ConfigError
    from shibuya.declare import load

    try:
        return load(path)
    except ConfigError as exc:
        typer.echo(f"{path}: {len(exc.problems)} problem(s):", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(INVALID) from exc


@app.command("validate")
def client_validate(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="YAML declarations or multi-test configs, and .jmx test plans", exists=True
        ),
    ],
) -> None:
    """Check files offline, with no server: a YAML as `apply` would read it (with the files it
    names), a JMX as the API and the engines would. Exit code 1 if any has a problem."""
    from shibuya.declare import jmx_problems

    bad = 0
    for path in files:
        if path.suffix.lower() == ".jmx":
            problems = jmx_problems(path)
            for problem in problems:
                typer.echo(f"{path}: {problem}", err=True)
            bad += bool(problems)
            if not problems:
                typer.echo(f"{path}: ok")
            continue
        try:
            _load_or_exit(path)
            typer.echo(f"{path}: ok")
        except typer.Exit:
            bad += 1
    if bad:
        raise typer.Exit(INVALID)


@app.command("upload")
def client_upload(
    plan: Annotated[str, typer.Argument(help="the plan: PROJECT/NAME, or NAME")],
    files: Annotated[list[Path], typer.Argument(help="its .jmx and data files", exists=True)],
) -> None:
    """Upload files to a plan (SHIBUYA_URL, SHIBUYA_TOKEN)."""
    from shibuya import client

    with session() as (c, names):
        found = names.plan(plan)
        for f in client.upload(c, found["id"], files):
            typer.echo(f"{f['name']}: {f['size_bytes']:,} bytes, sha256 {f['sha256']}")
