"""The ``shibuya`` command, grouped by component.

Each deployable reads its settings from environment variables with its own prefix
(``SHIBUYA_SIDECAR_``, ``SHIBUYA_WORKER_``, ``SHIBUYA_API_``); ``shibuya <component> config``
prints what it would run with. Components are imported inside their commands, so ``shibuya dev``
does not pay for Faust or FastAPI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic_settings import BaseSettings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from shibuya.dev.kafka import KafkaBroker

app = typer.Typer(
    help="Shibuya distributed mode: JMeter engines publish results to Kafka, stream workers "
    "aggregate them, a stateless API controls runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
sidecar = typer.Typer(
    help="Engine sidecar: runs beside one load-generating engine, starts and stops it on "
    "commands from Kafka, and publishes its results to Kafka in batches. "
    "Settings: SHIBUYA_SIDECAR_* variables.",
    no_args_is_help=True,
)
worker = typer.Typer(
    help="Stream worker (Faust): aggregates raw result batches into per-second metrics with "
    "mergeable histograms, exactly once; tracks, stops and ends runs (criteria included) and "
    "purges idle collections, each by the owner of its partition. Run one per machine or pod; "
    "partitions spread over all of them. Settings: SHIBUYA_WORKER_* variables.",
    no_args_is_help=True,
)
api = typer.Typer(
    help="Control API (FastAPI): projects, plans and files, collections, runs (docs/api.md). "
    "Stateless: run as many replicas as you like. Settings: SHIBUYA_API_* variables.",
    no_args_is_help=True,
)
dev = typer.Typer(
    help="Development services on this machine, without Docker: a real Kafka broker, "
    "PostgreSQL, a Kubernetes control plane, JMeter, an HTTP target; the dashboards' generator "
    "and the main job (demo).",
    no_args_is_help=True,
)
kafka = typer.Typer(
    help="A single-node Apache Kafka broker (KRaft) on 127.0.0.1, fetched from Maven Central "
    "into ~/.cache/shibuya (or $SHIBUYA_CACHE_DIR) on first use.",
    no_args_is_help=True,
)
app.add_typer(sidecar, name="sidecar")
app.add_typer(worker, name="worker")
app.add_typer(api, name="api")
app.add_typer(dev, name="dev")
dev.add_typer(kafka, name="kafka")
postgres = typer.Typer(
    help="A PostgreSQL server from Debian's packages on 127.0.0.1 (trust auth, no fsync): the "
    "metadata store of tests with several API replicas.",
    no_args_is_help=True,
)
dev.add_typer(postgres, name="postgres")


def _print_settings(settings: BaseSettings) -> None:
    typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))


@sidecar.command("config")
def sidecar_config() -> None:
    """Print the sidecar's effective settings as JSON."""
    from engine_sidecar.settings import SidecarSettings

    _print_settings(SidecarSettings())


@sidecar.command("run")
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


@sidecar.command("tail")
def sidecar_tail(
    file: Annotated[Path, typer.Argument(help="the JTL results file to follow")],
    run_id: Annotated[str, typer.Option(help="run the samples belong to")],
    engine_id: Annotated[
        str | None, typer.Option(help="engine id; default: from SHIBUYA_SIDECAR_ENGINE__*")
    ] = None,
    plan_id: Annotated[
        str | None, typer.Option(help="plan id; default: SHIBUYA_SIDECAR_ENGINE__PLAN_ID")
    ] = None,
    engine_pid: Annotated[
        int | None, typer.Option(help="PID of the engine, for CPU and memory in heartbeats")
    ] = None,
) -> None:
    """Tail-only mode: publish FILE's samples for an engine this sidecar did not start.

    Follows the file as it grows (also through truncation and rotation) and publishes its samples
    to Kafka in batches; resumes from its checkpoint after a restart. Sends heartbeats with the
    engine's threads, CPU and memory (of ENGINE_PID, else of the container's cgroup). On SIGTERM
    or Ctrl-C it publishes what is left in the file, sends a last heartbeat, then exits.
    """
    from engine_sidecar.main import tail
    from engine_sidecar.publisher import Identity
    from engine_sidecar.settings import SidecarSettings

    settings = SidecarSettings()
    identity = Identity(
        run_id=run_id,
        plan_id=plan_id or settings.engine.plan_id,
        engine_id=engine_id or settings.engine_id,
    )
    tail(settings, file.resolve(), identity, engine_pid)


@worker.command("run")
def worker_run() -> None:
    """Run a stream worker until SIGTERM or Ctrl-C.

    It joins the consumer group SHIBUYA_WORKER_APP_ID, creates the pipeline's topics if they are
    missing, and serves Prometheus metrics on SHIBUYA_WORKER_METRICS_PORT.
    """
    from streams.main import run
    from streams.settings import WorkerSettings
    from streams.topics import PartitionMismatchError

    try:
        run(WorkerSettings())
    except PartitionMismatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@worker.command("config")
def worker_config() -> None:
    """Print the worker's effective settings as JSON."""
    from streams.settings import WorkerSettings

    _print_settings(WorkerSettings())


@api.command("serve")
def api_serve() -> None:
    """Serve the control API on SHIBUYA_API_HOST:SHIBUYA_API_PORT until SIGTERM or Ctrl-C."""
    from control.main import serve
    from control.settings import ApiSettings

    serve(ApiSettings())


@api.command("config")
def api_config() -> None:
    """Print the API's effective settings as JSON."""
    from control.settings import ApiSettings

    _print_settings(ApiSettings())


@api.command("add-user")
def api_add_user(
    name: Annotated[str, typer.Argument(help="the user's name")],
    group: Annotated[
        list[str], typer.Option("--group", "-g", help="a group to join (created if missing)")
    ],
    admin: Annotated[bool, typer.Option(help="may see and change everything")] = False,
) -> None:
    """Add a user to the API's database and print its API token (shown once; only its hash is
    kept). Uses the SHIBUYA_API_* settings to find the database."""
    from sqlalchemy.exc import IntegrityError

    from control.auth import add_user

    _in_database(lambda session: add_user(session, name, group, admin=admin),
                 IntegrityError, lambda _: f"user {name!r} exists already")  # fmt: skip


@api.command("token")
def api_token(
    name: Annotated[str, typer.Argument(help="the user")],
    revoke: Annotated[
        bool, typer.Option(help="revoke every token the user has instead of issuing one")
    ] = False,
) -> None:
    """Issue a new API token for a user and print it (shown once), or with --revoke revoke all
    of its tokens: replicas refuse them within SHIBUYA_API_AUTH__CACHE_S (5 s)."""
    from datetime import UTC, datetime

    from control.auth import issue_token, revoke_tokens, user_id

    def act(session: Session) -> str:
        if revoke:
            return f"{revoke_tokens(session, name, datetime.now(UTC))} tokens revoked"
        return issue_token(session, user_id(session, name), "cli")

    _in_database(act, LookupError, lambda exc: str(exc.args[0]))


def _in_database(
    action: Callable[[Session], str],
    refused: type[Exception],
    why: Callable[[Exception], str],
) -> None:
    """Run ``action`` in one transaction on the database the SHIBUYA_API_* settings name (migrated
    first) and print what it returns; ``refused`` is an error for the user (exit 2)."""
    from control.db import store
    from control.settings import ApiSettings

    settings = ApiSettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = store.open_engine(settings.database_url)
    store.migrate(engine)
    try:
        with store.sessions(engine)() as session, session.begin():
            out = action(session)
    except refused as exc:
        typer.echo(f"error: {why(exc)}", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    typer.echo(out)


DataDir = Annotated[Path, typer.Option(help="broker state: config, KRaft log, PID file, kafka.log")]
Port = Annotated[int, typer.Option(help="client port on 127.0.0.1")]
ControllerPort = Annotated[int, typer.Option(help="KRaft controller port on 127.0.0.1")]


def _broker(data_dir: Path, port: int, controller_port: int) -> KafkaBroker:
    from shibuya.dev.kafka import KafkaBroker

    return KafkaBroker(data_dir.resolve(), port=port, controller_port=controller_port)


@kafka.command("install")
def kafka_install() -> None:
    """Fetch the broker's jars with Maven into the cache (nothing to do when cached)."""
    from shibuya.dev.kafka import KAFKA_VERSION, install

    typer.echo(f"Kafka {KAFKA_VERSION}: {install(quiet=False)}")


@kafka.command("start")
def kafka_start(
    data_dir: DataDir = Path(".shibuya/kafka"),
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
) -> None:
    """Start the broker in the background (installing it first) and wait until it serves."""
    from shibuya.dev.procs import ServiceError

    broker = _broker(data_dir, port, controller_port)
    try:
        seconds = broker.start()
    except ServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"Kafka {broker.version} serving on {broker.bootstrap} (pid {broker.pid()}, "
        f"ready in {seconds:.1f}s; log {broker.log_path})"
    )


@kafka.command("stop")
def kafka_stop(
    data_dir: DataDir = Path(".shibuya/kafka"),
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
) -> None:
    """Stop the broker started from DATA_DIR (SIGTERM by PID, SIGKILL after 30 s)."""
    broker = _broker(data_dir, port, controller_port)
    typer.echo("stopped" if broker.stop() else "not running")


@kafka.command("status")
def kafka_status(
    data_dir: DataDir = Path(".shibuya/kafka"),
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
) -> None:
    """Tell whether the broker of DATA_DIR runs and serves; exit code 1 when it does not."""
    broker = _broker(data_dir, port, controller_port)
    if broker.running():
        typer.echo(f"running: pid {broker.pid()}, {broker.bootstrap}")
        return
    typer.echo("not running")
    raise typer.Exit(1)


@app.command("upload")
def client_upload(
    plan_id: Annotated[int, typer.Argument(help="the plan")],
    files: Annotated[list[Path], typer.Argument(help="its .jmx and data files", exists=True)],
) -> None:
    """Upload files to a plan (SHIBUYA_URL, SHIBUYA_TOKEN)."""
    from shibuya import client

    with client.connect() as c:
        for f in _or_exit(lambda: client.upload(c, plan_id, files)):
            typer.echo(f"{f['name']}: {f['size_bytes']:,} bytes, sha256 {f['sha256']}")


@app.command("apply")
def client_apply(
    collection_id: Annotated[int, typer.Argument(help="the collection")],
    config: Annotated[Path, typer.Argument(help="its multi-test YAML", exists=True)],
) -> None:
    """Set a collection's plans and criteria from a multi-test YAML config."""
    from shibuya import client

    with client.connect() as c:
        out = _or_exit(lambda: client.apply(c, collection_id, config))
    typer.echo(f"collection {out['id']}: {len(out['plans'])} plans, {out['engines']} engines, "
               f"{out['virtual_users']} virtual users")  # fmt: skip


@app.command("run")
def client_run(
    collection_id: Annotated[int, typer.Argument(help="the collection to run")],
    watch: Annotated[bool, typer.Option(help="follow it live until it ends")] = True,
) -> None:
    """Start a run of a collection and follow it to its end.

    Exit code: 0 finished and passed every criterion; 16 + a bit per class of failed criterion
    (1 latency, 2 errors, 4 throughput, 8 invalid); 2 failed or stopped otherwise; 1 API error.
    """
    from rich.console import Console

    from shibuya import client

    console = Console()
    with client.connect() as c:
        run = _or_exit(lambda: client.call(c, "POST", f"/api/collections/{collection_id}/runs"))
        console.print(f"run {run['id']} started")
        if not watch:
            return
        final = _or_exit(lambda: client.watch(c, run["id"], console))
        report = _or_exit(lambda: client.call(c, "GET", f"/api/runs/{run['id']}/report"))
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

    _show(f"/api/runs/{run_id}/report", as_json,
          lambda r: [client.report_table(r), client.verdicts(r["run"])])  # fmt: skip


@app.command("compare")
def client_compare(
    a: Annotated[str, typer.Argument(help="the first run (the baseline)")],
    b: Annotated[str, typer.Argument(help="the second run")],
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
) -> None:
    """Two runs side by side, per label: each measure from a to b with its change in percent."""
    from shibuya import client

    _show(f"/api/runs/{a}/compare/{b}", as_json, lambda r: [client.comparison_table(r)])


def _show(path: str, as_json: bool, render: Callable[[Any], list[Any]]) -> None:
    """GET ``path`` from the API; print its JSON, or what ``render`` makes of it."""
    from rich.console import Console

    from shibuya import client

    with client.connect() as c:
        answer = _or_exit(lambda: client.call(c, "GET", path))
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    console = Console()
    for part in render(answer):
        console.print(part)


@app.command("deploy")
def client_deploy(collection_id: Annotated[int, typer.Argument(help="the collection")]) -> None:
    """Deploy a collection's engines (idempotent: only missing engines are started)."""
    from shibuya import client

    with client.connect() as c:
        launch = _or_exit(
            lambda: client.call(c, "POST", f"/api/collections/{collection_id}/deploy")
        )
    typer.echo(f"launch {launch['id']}: {launch['engines']} engines, "
               f"{launch['virtual_users']} virtual users")  # fmt: skip


@app.command("purge")
def client_purge(
    collection_id: Annotated[int, typer.Argument(help="the collection")],
    reason: Annotated[str, typer.Option(help="why, for the record")] = "",
) -> None:
    """Remove a collection's engines and end its launch."""
    from shibuya import client

    path = f"/api/collections/{collection_id}/purge"
    with client.connect() as c:
        out = _or_exit(lambda: client.call(c, "POST", path, json={"reason": reason}))
    typer.echo(f"{out['engines_removed']} engines removed")


@app.command("status")
def client_status(
    collection_id: Annotated[int, typer.Argument(help="the collection")],
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
) -> None:
    """A collection's engines per plan (asked for, deployed, ready, running) and each engine."""
    from shibuya import client

    _show(f"/api/collections/{collection_id}/status", as_json,
          lambda r: [client.status_table(r)])  # fmt: skip


@app.command("stop")
def client_stop(
    run_id: Annotated[str, typer.Argument(help="the run")],
    reason: Annotated[str, typer.Option(help="why, for the record")] = "",
) -> None:
    """Ask the stream to stop a run (it ends aborted)."""
    from shibuya import client

    with client.connect() as c:
        _or_exit(
            lambda: client.call(c, "POST", f"/api/runs/{run_id}/stop", json={"reason": reason})
        )
    typer.echo(f"stop requested for {run_id}")


T = TypeVar("T")


def _or_exit(action: Callable[[], T]) -> T:
    from shibuya.client import ClientError

    try:
        return action()
    except ClientError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


PgDir = Annotated[Path, typer.Option(help="the server's data directory and socket")]
PgPort = Annotated[int, typer.Option(help="port on 127.0.0.1")]


@postgres.command("start")
def postgres_start(data_dir: PgDir = Path(".shibuya/postgres"), port: PgPort = 5432) -> None:
    """Initialise (once) and start the server; print its SQLAlchemy URL."""
    from shibuya.dev.postgres import PostgresServer

    server = PostgresServer(data_dir.resolve(), port)
    server.start()
    typer.echo(server.url())


@postgres.command("stop")
def postgres_stop(data_dir: PgDir = Path(".shibuya/postgres"), port: PgPort = 5432) -> None:
    """Stop the server (fast shutdown)."""
    from shibuya.dev.postgres import PostgresServer

    PostgresServer(data_dir.resolve(), port).stop()


kube = typer.Typer(
    help="A real Kubernetes control plane on 127.0.0.1 (etcd, kube-apiserver, "
    "kube-controller-manager, kube-scheduler) with KWOK's fake nodes, built from the Go module "
    "proxy into ~/.cache/shibuya on first use: the Kubernetes scheduler's test cluster.",
    no_args_is_help=True,
)
dev.add_typer(kube, name="kube")
KubeDir = Annotated[Path, typer.Option(help="the cluster's state, logs, PIDs and kubeconfig")]


@kube.command("build")
def kube_build() -> None:
    """Build the five programs unless cached; print their folder."""
    from shibuya.dev.kube import build

    typer.echo(build(lambda line: typer.echo(line, err=True)))


@kube.command("start")
def kube_start(data_dir: KubeDir = Path(".shibuya/kube")) -> None:
    """Start the cluster (building it first if needed); print its kubeconfig's path."""
    from shibuya.dev.kube import KubeCluster
    from shibuya.dev.procs import ServiceError

    cluster = KubeCluster(data_dir.resolve())
    try:
        seconds = cluster.start(log=lambda line: typer.echo(line, err=True))
    except ServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        cluster.stop()
        raise typer.Exit(1) from exc
    typer.echo(f"cluster ready in {seconds:.1f}s", err=True)
    typer.echo(cluster.kubeconfig)


@kube.command("stop")
def kube_stop(data_dir: KubeDir = Path(".shibuya/kube")) -> None:
    """Stop the cluster's processes (by PID); the next start begins afresh."""
    from shibuya.dev.kube import KubeCluster

    KubeCluster(data_dir.resolve()).stop()
    typer.echo("stopped")


@dev.command("jmeter")
def dev_jmeter() -> None:
    """Fetch Apache JMeter 5.6.3 (non-GUI) from Maven Central into the cache; print its home."""
    from shibuya.dev.jmeter import install

    typer.echo(install(quiet=False))


@dev.command("dashboards")
def dev_dashboards() -> None:
    """Write the Grafana dashboards (run, engine health, pipeline health) to
    deploy/grafana/dashboards, generated by shibuya/dashboards.py."""
    from shibuya.dashboards import write

    for path in write():
        typer.echo(path)


@dev.command("target")
def dev_target(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    fail_every: Annotated[int, typer.Option(help="every n-th POST /login answers 500")] = 50,
) -> None:
    """A small HTTP target for load tests (examples/two-samplers.jmx): GET /items answers 200,
    POST /login answers 200 except every FAIL_EVERY-th (500). Runs until Ctrl-C or SIGTERM."""
    import signal

    from shibuya.dev import target

    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # taken by sigwait below, in every thread
    with target.serve(port, fail_every, host=host) as bound:
        typer.echo(f"HTTP target on {host}:{bound}", err=True)
        signal.sigwait(stop)


@dev.command("demo")
def dev_demo(
    engines: Annotated[int, typer.Option(min=1, max=64, help="engines")] = 2,
    seconds: Annotated[int, typer.Option(min=1, max=600, help="test length")] = 60,
    threads: Annotated[int, typer.Option(min=1, max=200, help="JMeter threads per engine")] = 2,
    rate: Annotated[
        int, typer.Option(min=1, max=200_000, help="samples/s per simulated engine")
    ] = 2000,
    simulate: Annotated[
        bool,
        typer.Option(help="the pipeline alone, with simulated engines (shows redelivery too)"),
    ] = False,
    bootstrap: Annotated[
        str, typer.Option(help="Kafka to use; when nothing answers there, a broker is started")
    ] = "127.0.0.1:9092",
    data_dir: Annotated[
        Path, typer.Option(help="state kept between runs: API database, plan files, ClickHouse")
    ] = Path(".shibuya"),
) -> None:
    """The main job: a load test through the control API, live progress, a report.

    Starts (or reuses) Kafka, a stream worker, a local HTTP target and the API with the local
    scheduler and its ClickHouse sink (embedded engine). Then, as a user would: a project, a plan
    with examples/two-samplers.jmx, a collection from examples/collection.yaml; deploy the engines
    (sidecar processes running real JMeter); run with a live line; print the report from
    ClickHouse (per label: samples, errors, rate, percentiles, codes) and each criterion's
    verdict; purge; stop what it started. Exit 0 only when the run finished, passed its criteria
    and ClickHouse holds exactly the samples of the engines' JTL files.

    With --simulate, only the pipeline runs (no API): simulated engines publish straight to
    Kafka, and send a redelivered batch and a corrupt message to show both are handled.
    """
    if simulate:
        from shibuya.dev.demo import Demo

        ok = Demo(engines=engines, seconds=seconds, rate=rate, bootstrap=bootstrap,
                  data_dir=data_dir).run()  # fmt: skip
    else:
        from shibuya.dev.main_job import MainJob

        ok = MainJob(engines=engines, seconds=seconds, threads=threads, bootstrap=bootstrap,
                     data_dir=data_dir).run()  # fmt: skip
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    app(prog_name="shibuya")


if __name__ == "__main__":
    main()
