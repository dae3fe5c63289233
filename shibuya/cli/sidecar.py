"""``shibuya sidecar``: the engine sidecar, in agent or tail-only mode."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shibuya.cli.common import print_settings

app = typer.Typer(
    help="Engine sidecar: runs beside one load-generating engine, starts and stops it on "
    "commands from Kafka, and publishes its results to Kafka in batches. "
    "Settings: SHIBUYA_SIDECAR_* variables.",
    no_args_is_help=True,
)


@app.command("config")
def sidecar_config() -> None:
    """Print the sidecar's effective settings as JSON."""
    from engine_sidecar.settings import SidecarSettings

    print_settings(SidecarSettings())


@app.command("run")
def sidecar_run() -> None:
    """Agent mode: wait for start and stop commands on Kafka and run JMeter for them.

    On `start` for its plan it downloads the plan's files (with the run's token), takes its
    share of the CSV data, rewrites the JMX's thread groups, runs JMeter non-GUI and publishes
    every result; on `stop` it stops JMeter gracefully (its stop-test port), by force after 30 s.
    Each command is acted on once. Heartbeats report state, threads, CPU and memory. SIGTERM stops
    a running test gracefully, publishes what is left and exits.
    """
    from engine_sidecar.main import run
    from engine_sidecar.settings import SidecarSettings

    run(SidecarSettings())


@app.command("tail")
def sidecar_tail(
    file: Annotated[Path, typer.Argument(help="the JTL results file to follow")],
    run_id: Annotated[str, typer.Option(help="run the samples belong to")],
    engine_id: Annotated[
        str | None, typer.Option(help="engine id; default: from SHIBUYA_SIDECAR_ENGINE__*")
    ] = None,
    plan_id: Annotated[
        str | None, typer.Option(help="plan id; default: SHIBUYA_SIDECAR_ENGINE__PLAN_ID")
    ] = None,
    collection_id: Annotated[
        str | None,
        typer.Option(help="collection id; default: SHIBUYA_SIDECAR_ENGINE__COLLECTION_ID"),
    ] = None,
    engine_pid: Annotated[
        int | None, typer.Option(help="PID of the engine, for CPU and memory in heartbeats")
    ] = None,
) -> None:
    """Tail-only mode: publish FILE's samples for an engine this sidecar did not start.

    FILE is JMeter CSV (with a header, or Shibuya's or JMeter's default columns) or JSON lines
    (docs/sidecar.md). For a run the API knows (shibuya run COLLECTION --external), give its
    run, collection and plan ids: the run's live view, verdicts and report then count FILE.

    Follows the file as it grows (also through truncation and rotation) and publishes its samples
    to Kafka in batches; resumes from its checkpoint after a restart. Sends heartbeats with the
    engine's threads, CPU and memory (of ENGINE_PID, else of the container's cgroup). On SIGTERM
    or Ctrl-C it publishes what is left in the file, sends a last heartbeat, then exits.
    """
    from engine_sidecar.main import tail
    from engine_sidecar.publisher import Identity
    from engine_sidecar.settings import SidecarSettings

    settings = SidecarSettings()
    e = settings.engine
    if collection_id is not None or plan_id is not None:  # the heartbeats' engine, and its id
        settings.engine = e.model_copy(update={"collection_id": collection_id or e.collection_id,
                                               "plan_id": plan_id or e.plan_id})  # fmt: skip
    identity = Identity(
        run_id=run_id,
        plan_id=plan_id or settings.engine.plan_id,
        engine_id=engine_id or settings.engine_id,
    )
    tail(settings, file.resolve(), identity, engine_pid)
