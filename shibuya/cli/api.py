"""``shibuya api``: the control API, and its users and tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from shibuya.cli.common import print_settings

if TYPE_CHECKING:
    from control.db.database import Session

app = typer.Typer(
    help="Control API (FastAPI): projects, plans and files, collections, runs (docs/api.md). "
    "Stateless: run as many replicas as you like. Settings: SHIBUYA_API_* variables.",
    no_args_is_help=True,
)


@app.command("serve")
def api_serve() -> None:
    """Serve the control API on SHIBUYA_API_HOST:SHIBUYA_API_PORT until SIGTERM or Ctrl-C."""
    from control.errors import SchedulerError
    from control.main import serve
    from control.settings import ApiSettings

    try:
        serve(ApiSettings())
    except SchedulerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command("config")
def api_config() -> None:
    """Print the API's effective settings as JSON."""
    from control.settings import ApiSettings

    print_settings(ApiSettings())


@app.command("add-user")
def api_add_user(
    name: Annotated[str, typer.Argument(help="the user's name")],
    group: Annotated[
        list[str], typer.Option("--group", "-g", help="a group to join (created if missing)")
    ],
    admin: Annotated[bool, typer.Option(help="may see and change everything")] = False,
) -> None:
    """Add a user to the API's database and print its API token (shown once; only its hash is
    kept). Uses the SHIBUYA_API_* settings to find the database."""
    from control.errors import ConstraintError
    from control.services.auth import add_user

    _in_database(lambda session: add_user(session, name, group, admin=admin),
                 ConstraintError, lambda _: f"user {name!r} exists already")  # fmt: skip


@app.command("token")
def api_token(
    name: Annotated[str, typer.Argument(help="the user")],
    revoke: Annotated[
        bool, typer.Option(help="revoke every token the user has instead of issuing one")
    ] = False,
) -> None:
    """Issue a new API token for a user and print it (shown once), or with --revoke revoke all
    of its tokens: replicas refuse them within SHIBUYA_API_AUTH__CACHE_S (5 s)."""
    from datetime import UTC, datetime

    from control.errors import NotFoundError
    from control.services.auth import issue_token, revoke_tokens, user_id

    def act(session: Session) -> str:
        if revoke:
            return f"{revoke_tokens(session, name, datetime.now(UTC))} tokens revoked"
        return issue_token(session, user_id(session, name), "cli")

    _in_database(act, NotFoundError, lambda _: f"no user {name!r}")


def _in_database(
    action: Callable[[Session], str],
    refused: type[Exception],
    why: Callable[[Exception], str],
) -> None:
    """Run ``action`` in one transaction on the database the SHIBUYA_API_* settings name (migrated
    first) and print what it returns; ``refused`` is an error for the user (exit 2)."""
    from control.db.database import Database
    from control.settings import ApiSettings

    settings = ApiSettings()
    settings.make_private_dirs()
    db = Database(settings.database_url)
    try:
        db.migrate()
        with db.transaction() as session:
            out = action(session)
    except refused as exc:
        typer.echo(f"error: {why(exc)}", err=True)
        raise typer.Exit(2) from exc
    finally:
        db.close()
    typer.echo(out)
