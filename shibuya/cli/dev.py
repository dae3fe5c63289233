"""``shibuya dev``: development services on this machine (Kafka, PostgreSQL, a Kubernetes
control plane, JMeter, an HTTP target), the dashboards' generator and the main job."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shibuya.cli.containers import compose, images

if TYPE_CHECKING:
    from shibuya.dev.kafka import KafkaBroker

app = typer.Typer(
    help="Development services on this machine, without Docker: a real Kafka broker, "
    "PostgreSQL, a Kubernetes control plane, JMeter, an HTTP target; the container images (with "
    "podman); the dashboards' generator and the main job (demo).",
    no_args_is_help=True,
)
kafka = typer.Typer(
    help="A single-node Apache Kafka broker (KRaft) on 127.0.0.1, fetched from Maven Central "
    "into ~/.cache/shibuya (or $SHIBUYA_CACHE_DIR) on first use.",
    no_args_is_help=True,
)
app.add_typer(kafka, name="kafka")
postgres = typer.Typer(
    help="A PostgreSQL server from Debian's packages on 127.0.0.1 (trust auth, no fsync): the "
    "metadata store of tests with several API replicas.",
    no_args_is_help=True,
)
app.add_typer(postgres, name="postgres")
DataDir = Annotated[Path, typer.Option(help="broker state: config, KRaft log, PID file, kafka.log")]
Port = Annotated[int, typer.Option(help="client port on 127.0.0.1")]
ControllerPort = Annotated[int, typer.Option(help="KRaft controller port on 127.0.0.1")]


def _broker(data_dir: Path, port: int, controller_port: int, secure: bool = False) -> KafkaBroker:
    from shibuya.dev.kafka import KafkaBroker

    secure = secure or (data_dir / "credentials.json").exists()  # it was formatted secure
    return KafkaBroker(data_dir.resolve(), port=port, controller_port=controller_port,
                       secure=secure)  # fmt: skip


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
    secure: Annotated[
        bool,
        typer.Option(
            help="SASL/SCRAM and ACLs: principals admin, api, worker and sidecar, "
            "passwords in DATA_DIR/credentials.json (a broker started so stays so)"
        ),
    ] = False,
) -> None:
    """Start the broker in the background (installing it first) and wait until it serves."""
    from shibuya.dev import kafka_acls
    from shibuya.dev.procs import ServiceError

    broker = _broker(data_dir, port, controller_port, secure)
    try:
        seconds = broker.start()
        if broker.secure:
            broker.grant(kafka_acls.acls())
    except ServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"Kafka {broker.version} serving on {broker.bootstrap} (pid {broker.pid()}, "
        f"ready in {seconds:.1f}s; log {broker.log_path})"
    )
    if broker.secure:
        typer.echo(
            f"SASL_PLAINTEXT, SCRAM-SHA-512; ACLs of docs/deploy.md granted; passwords "
            f"of admin, api, worker, sidecar in {broker.data_dir / 'credentials.json'}"
        )


@kafka.command("acls")
def kafka_acls_print(
    prefix: Annotated[str, typer.Option(help="the installation's topic prefix")] = "shibuya",
    app_id: Annotated[str, typer.Option(help="the stream workers' app id")] = "shibuya-streams",
    bootstrap: Annotated[str, typer.Option(help="the cluster")] = "$BOOTSTRAP",
) -> None:
    """Print the ACLs of the principals api, worker and sidecar as kafka-acls.sh commands, for a
    production cluster (docs/deploy.md); `start --secure` grants the same."""
    from shibuya.dev import kafka_acls

    for line in kafka_acls.commands(kafka_acls.acls(prefix, app_id), bootstrap):
        typer.echo(line)


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
app.add_typer(kube, name="kube")
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


@app.command("compose-env")
def compose_env(
    path: Annotated[Path, typer.Option(help="where docker compose reads it")] = Path(".env"),
) -> None:
    """Write the secrets docker-compose.yml needs — ClickHouse's password and Grafana's admin
    password, generated — into PATH (mode 0600). An existing file is left as it is."""
    import os
    import secrets

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        typer.echo(f"error: {path} exists; it is left as it is", err=True)
        raise typer.Exit(2) from None
    with os.fdopen(fd, "w") as out:
        for name in ("CLICKHOUSE_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
            out.write(f"{name}={secrets.token_urlsafe(24)}\n")
    typer.echo(f"{path}: generated passwords of ClickHouse and Grafana's admin (mode 0600)")


@app.command("jmeter")
def dev_jmeter() -> None:
    """Fetch Apache JMeter 5.6.3 (non-GUI) with the common jmeter-plugins (docs/engines.md) from
    Maven Central into the cache; print its home."""
    from shibuya.dev.jmeter import install

    typer.echo(install(quiet=False))


@app.command("locust")
def dev_locust() -> None:
    """Make Locust's environment (engine_sidecar/locust-requirements.txt, from PyPI) in the
    cache; print its folder (the sidecar's SHIBUYA_SIDECAR_LOCUST__PYTHON is its bin/python)."""
    from shibuya.dev.locust import install

    typer.echo(install(quiet=False))


@app.command("gatling")
def dev_gatling() -> None:
    """Fetch Gatling 3.15.1 from Maven Central into the cache and compile the sidecar's launcher
    against it (needs a JDK); print its folder (the sidecar's SHIBUYA_SIDECAR_GATLING__HOME)."""
    from shibuya.dev.gatling import install

    typer.echo(install(quiet=False))


app.command("images")(images)
app.command("compose", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    compose
)


@app.command("dashboards")
def dev_dashboards() -> None:
    """Write the Grafana dashboards (run, engine health, pipeline health) to
    deploy/grafana/dashboards, generated by shibuya/dashboards.py."""
    from shibuya.dashboards import write

    for path in write():
        typer.echo(path)


@app.command("target")
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


@app.command("demo")
def dev_demo(
    engines: Annotated[int, typer.Option(min=1, max=64, help="engines")] = 2,
    seconds: Annotated[
        int,
        typer.Option(
            min=1,
            max=600,
            help="test length (the main job: at least its criteria's longest window)",
        ),
    ] = 60,
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
    with examples/two-samplers.jmx and a collection, as examples/main-job.yaml declares; deploy
    the engines (sidecar processes running real JMeter); run with a live line; print the report from
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
