"""Runs: ``shibuya run``, ``stop``, ``report`` and ``compare``."""

from __future__ import annotations

from typing import Annotated

import typer

from shibuya.cli.common import or_exit, show

app = typer.Typer()


@app.command("run")
def client_run(
    collection_id: Annotated[int, typer.Argument(help="the collection to run")],
    watch: Annotated[bool, typer.Option(help="follow it live until it ends")] = True,
) -> None:
    """Start a run of a collection and follow it to its end.

    Exit code: 0 finished, every published sample counted, and passed every criterion; 16 + a
    bit per class of failed criterion (1 latency, 2 errors, 4 throughput, 8 invalid); 2 failed,
    stopped or samples lost otherwise; 1 API error.
    """
    from rich.console import Console

    from shibuya import client

    console = Console()
    with client.connect() as c:
        run = or_exit(lambda: client.call(c, "POST", f"/api/collections/{collection_id}/runs"))
        console.print(f"run {run['id']} started")
        if not watch:
            return
        final = or_exit(lambda: client.watch(c, run["id"], console))
        report = or_exit(lambda: client.call(c, "GET", f"/api/runs/{run['id']}/report"))
    console.print(client.report_table(report))
    console.print(client.verdicts(final))
    raise typer.Exit(client.exit_code(final))


@app.command("report")
def client_report(
    run_id: Annotated[str, typer.Argument(help="the run")],
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
) -> None:
    """A run's results: per label samples, errors, rate, percentiles, codes; its verdicts."""
    from shibuya import client

    show(f"/api/runs/{run_id}/report", as_json,
          lambda r: [client.report_table(r), client.verdicts(r["run"])])  # fmt: skip


@app.command("compare")
def client_compare(
    a: Annotated[str, typer.Argument(help="the first run (the baseline)")],
    b: Annotated[str, typer.Argument(help="the second run")],
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
) -> None:
    """Two runs side by side, per label: each measure from a to b with its change in percent."""
    from shibuya import client

    show(f"/api/runs/{a}/compare/{b}", as_json, lambda r: [client.comparison_table(r)])


@app.command("stop")
def client_stop(
    run_id: Annotated[str, typer.Argument(help="the run")],
    reason: Annotated[str, typer.Option(help="why, for the record")] = "",
) -> None:
    """Ask the stream to stop a run (it ends aborted)."""
    from shibuya import client

    with client.connect() as c:
        or_exit(lambda: client.call(c, "POST", f"/api/runs/{run_id}/stop", json={"reason": reason}))
    typer.echo(f"stop requested for {run_id}")
