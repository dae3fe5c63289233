"""The local stack: ``shibuya up``, ``down`` and ``doctor``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shibuya.cli.common import or_exit

app = typer.Typer()

DataDir = Annotated[
    Path, typer.Option(help="where the stack keeps its state", envvar="SHIBUYA_HOME")
]


@app.command("up")
def stack_up(
    data_dir: DataDir = Path(".shibuya"),
    port: Annotated[
        int, typer.Option(help="the API's port on 127.0.0.1", envvar="SHIBUYA_STACK_PORT")
    ] = 8080,
    bootstrap: Annotated[
        str, typer.Option(help="the Kafka broker: used if one answers there, else started")
    ] = "127.0.0.1:9092",
) -> None:
    """Start the local stack in the background — Kafka broker, stream worker, API with the local
    scheduler and embedded ClickHouse — its state in DATA_DIR; `shibuya down` stops it. The CLI
    then finds the API and your token there (unless SHIBUYA_URL, SHIBUYA_TOKEN say otherwise)."""
    from shibuya.dev.procs import ServiceError
    from shibuya.dev.stack import Stack

    try:
        url = Stack(data_dir, bootstrap, port).up()
    except ServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"up: {url} — try `shibuya doctor`, then `shibuya run examples/two-samplers.jmx`")


@app.command("down")
def stack_down(data_dir: DataDir = Path(".shibuya")) -> None:
    """Stop what `shibuya up` started (its state and data stay, for the next `up`)."""
    from shibuya.dev.stack import Stack

    Stack(data_dir).down()


@app.command("doctor")
def stack_doctor() -> None:
    """Check everything a run needs — API, your token, broker, stream worker owning every
    partition, JMeter, Java, the engine sandbox — and say what to fix. Exit code 1 if any fails."""
    from rich.console import Console

    from shibuya.dev.doctor import checks

    console = Console()
    failed = 0
    for check in checks():
        mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {check.name}: {check.detail}", highlight=False)
        if not check.ok:
            failed += 1
            console.print(f"       fix: {check.fix}", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command("ui")
def stack_ui(
    open_browser: Annotated[
        bool, typer.Option("--open", help="open it in this machine's browser too")
    ] = False,
) -> None:
    """Print the web UI's address (SHIBUYA_URL's API, or the local stack's) once it answers,
    and how to log in: with your API token, or by single sign-on where the API has it."""
    import os
    import webbrowser

    from shibuya import client
    from shibuya.dev import stack

    with client.connect() as c:
        session = or_exit(lambda: client.call(c, "GET", "/ui/session"))
        url = f"{str(c.base_url).rstrip('/')}/ui/"
    folder = stack.find()
    if session["auth"] == "none":
        how = "no login: the API's authentication is off"
    elif os.environ.get("SHIBUYA_TOKEN") or folder is None:
        how = "log in with your API token (`shibuya api token NAME` issues one)"
    else:
        how = f"log in with the API token in {folder / 'token'}"
    if session["sso"]:
        how += ", or by single sign-on"
    typer.echo(f"Web UI: {url} — {how}")
    if open_browser:
        webbrowser.open(url)
