"""What the command groups share: printing settings, and turning an API client's error into
an exit."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from pydantic_settings import BaseSettings

T = TypeVar("T")


def print_settings(settings: BaseSettings) -> None:
    typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))


def or_exit(action: Callable[[], T]) -> T:
    """``action()``, or its API error printed and exit code 1."""
    from shibuya.client import ClientError

    try:
        return action()
    except ClientError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def show(path: str, as_json: bool, render: Callable[[Any], list[Any]]) -> None:
    """GET ``path`` from the API; print its JSON, or what ``render`` makes of it."""
    from rich.console import Console

    from shibuya import client

    with client.connect() as c:
        answer = or_exit(lambda: client.call(c, "GET", path))
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    console = Console()
    for part in render(answer):
        console.print(part)
