"""``shibuya worker``: a stream worker."""

from __future__ import annotations

import typer

from shibuya.cli.common import print_settings

app = typer.Typer(
    help="Stream worker (Faust): aggregates raw result batches into per-second metrics with "
    "mergeable histograms, exactly once; tracks, stops and ends runs (criteria included) and "
    "purges idle collections, each by the owner of its partition. Run one per machine or pod; "
    "partitions spread over all of them. Settings: SHIBUYA_WORKER_* variables.",
    no_args_is_help=True,
)


@app.command("run")
def worker_run() -> None:
    """Run a stream worker until SIGTERM or Ctrl-C.

    It joins the consumer group SHIBUYA_WORKER_APP_ID, creates the pipeline's topics if they are
    missing, and serves Prometheus metrics on SHIBUYA_WORKER_METRICS_PORT.
    """
    from streams.errors import PartitionMismatchError
    from streams.main import run
    from streams.settings import WorkerSettings

    try:
        run(WorkerSettings())
    except PartitionMismatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command("config")
def worker_config() -> None:
    """Print the worker's effective settings as JSON."""
    from streams.settings import WorkerSettings

    print_settings(WorkerSettings())
