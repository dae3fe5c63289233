"""What the command groups share: printing settings, the options every user command takes, the
API session with its names, and turning an API client's error into an exit."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic_settings import BaseSettings

from shibuya.output import Format

if TYPE_CHECKING:
    import httpx

    from shibuya.names import Names

T = TypeVar("T")

Output = Annotated[
    Format, typer.Option("--output", "-o", help="table (for people), json, csv or markdown")
]
CollectionRef = Annotated[
    str, typer.Argument(help="the collection: PROJECT/NAME, or NAME when it is the only one")
]


def print_settings(settings: BaseSettings) -> None:
    typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))


def or_exit(action: Callable[[], T]) -> T:
    """``action()``, or its API error printed and exit code 1."""
    from shibuya.client import API_ERROR, ClientError

    try:
        return action()
    except ClientError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(API_ERROR) from exc


@contextlib.contextmanager
def session() -> Iterator[tuple[httpx.Client, Names]]:
    """The API (``SHIBUYA_URL``, ``SHIBUYA_TOKEN``) and its names; an API error exits 1."""
    from shibuya import client
    from shibuya.names import Names

    with client.connect() as c:
        try:
            yield c, Names(c)
        except client.ClientError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(client.API_ERROR) from exc


def show(path: str, fmt: Format, render: Callable[[Any], list[Any]]) -> None:
    """GET ``path`` from the API; print it as ``fmt`` (JSON as the API gave it)."""
    from rich.console import Console

    from shibuya import client, output

    with client.connect() as c:
        answer = or_exit(lambda: client.call(c, "GET", path))
    output.emit(Console(), answer, render(answer), fmt)
