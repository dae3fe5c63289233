"""A collection's secrets: ``shibuya secret set | list | delete``."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from shibuya.cli.common import CollectionRef, Output, session
from shibuya.output import Format

app = typer.Typer(
    help="A collection's secrets (passwords, API keys): stored sealed, never shown again; its "
    "engines get each as a JMeter property of every run (${__P(name)}).",
    no_args_is_help=True,
)

SecretName = Annotated[str, typer.Argument(help="the JMeter property it becomes")]


@app.command("set")
def secret_set(
    collection: CollectionRef,
    name: SecretName,
    from_env: Annotated[
        str | None, typer.Option(help="take the value from this environment variable")
    ] = None,
) -> None:
    """Set a secret. Its value comes from --from-env VAR, else from standard input (asked for,
    unechoed, on a terminal) — never from the command line, where others could see it."""
    from shibuya import client

    if from_env is not None:
        value = os.environ.get(from_env, "")
        if not value:
            typer.echo(f"error: {from_env} is not set, or empty", err=True)
            raise typer.Exit(client.USAGE)
    elif sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"{name}: ")
    else:
        value = sys.stdin.read().rstrip("\n")
    with session() as (c, names):
        found = names.collection(collection)
        path = f"/api/collections/{found['id']}/secrets/{name}"
        client.call(c, "PUT", path, json={"value": value})
    typer.echo(f"secret {name} of {names.path(found)} set")


@app.command("list")
def secret_list(collection: CollectionRef, output: Output = Format.table) -> None:
    """The collection's secrets: names and when each was set, never a value."""
    from rich.console import Console

    from shibuya import client, tables
    from shibuya.output import Rows, emit

    with session() as (c, names):
        found = names.collection(collection)
        answer = client.call(c, "GET", f"/api/collections/{found['id']}/secrets")
    grid = Rows(f"secrets of {names.path(found)}", ["name", "set (UTC)"])
    for s in answer:
        grid.add(s["name"], tables.when(s["updated_at"]))
    emit(Console(), answer, [grid], output)


@app.command("delete")
def secret_delete(collection: CollectionRef, name: SecretName) -> None:
    """Remove a secret."""
    from shibuya import client

    with session() as (c, names):
        found = names.collection(collection)
        client.call(c, "DELETE", f"/api/collections/{found['id']}/secrets/{name}")
    typer.echo(f"secret {name} of {names.path(found)} deleted")
