"""The main job: a real load test through the control API, on embedded defaults.

It starts (or reuses) a Kafka broker, starts a stream worker, a local HTTP target and the API
(local scheduler, ClickHouse sink on the embedded engine), then does what a user does: a project,
a plan with ``examples/two-samplers.jmx`` and a collection, declared in ``examples/main-job.yaml``;
deploy the engines (sidecar processes that run real JMeter); run with live progress; print the
report from ClickHouse with the verdict of each criterion, and the HTML report in
``.shibuya/reports/``; purge; stop everything it started.
At the end it checks that ClickHouse holds exactly the samples in the engines' JTL files.

State persists in ``data_dir`` (``api/``: database, plan files, ClickHouse), so every run of the
job adds one run to the same collection's history and ``shibuya compare`` can compare them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from control.schedulers.processes import wait_for
from control.services.config import ConfigError
from engine_sidecar.jtl import JtlParser
from engine_sidecar.jtl_format import detect_format
from shibuya import client, reconcile, tables
from shibuya.declare import Declared, check, load
from shibuya.dev import kafka_acls, target
from shibuya.dev.api_proc import ApiProcess
from shibuya.dev.procs import ServiceError, port_open
from shibuya.dev.stack import (
    Stack,
    as_principal,
    broker_in,
    connection,
    local_api_env,
    ui_hint,
    user_token,
)
from shibuya.dev.worker_proc import WorkerProcess
from shibuya.names import Names
from shibuya.output import print_table
from wire import BatchBuilder, KafkaAccess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
JMX = EXAMPLES / "two-samplers.jmx"
CONFIG = EXAMPLES / "main-job.yaml"


@dataclass
class MainJob:
    seconds: int = 60
    engines: int = 2
    threads: int = 2
    bootstrap: str = "127.0.0.1:9092"
    data_dir: Path = Path(".shibuya")
    console: Console = field(default_factory=Console)
    access: Callable[[str], KafkaAccess] = field(init=False, repr=False)
    """How each principal reaches the broker (set once there is one)."""

    def run(self) -> bool:
        """True when the run finished, passed its criteria, and ClickHouse holds exactly the
        samples of the engines' JTL files."""
        t0 = time.monotonic()
        self.data_dir = self.data_dir.resolve()
        with contextlib.ExitStack() as stack:
            try:
                url_token = self._stack()
                if url_token is None:
                    self.access = kafka(stack, self.bootstrap, self.data_dir, self.console)
                    self._worker(stack)
                port = stack.enter_context(target.serve())
                self.console.print(f"HTTP target: 127.0.0.1:{port} (GET /items; POST /login, "
                                   "one in 50 answers 500)")  # fmt: skip
                if url_token is None:
                    api, token = self._api(stack)
                    url_token = api.base, token
                url, token = url_token
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
                    ok = self._load_test(c, {"target.port": str(port)})
            except (ServiceError, client.ClientError, TimeoutError) as exc:
                self.console.print(f"[red]main job failed:[/red] {exc or 'timed out'}")
                return False
        self.console.print(f"Done in {time.monotonic() - t0:.0f}s.")
        return ok

    # --- services ---------------------------------------------------------------------------

    def _worker(self, stack: contextlib.ExitStack) -> None:
        worker = WorkerProcess.start(bootstrap=self.bootstrap, app_id="shibuya-streams",
                                     data_dir=self.data_dir / "worker",
                                     log=self.data_dir / "logs" / "worker.log",
                                     settings=as_principal(self.access("worker")))  # fmt: skip
        stack.callback(stopped, self.console, "Stream worker", worker.stop)
        self.console.print(f"Stream worker: started (pid {worker.pid}, log {worker.log})")

    def _stack(self) -> tuple[str, str] | None:
        """The API and token of the stack up in ``data_dir`` (``shibuya up``), if one is."""
        if not Stack(self.data_dir).is_up():
            return None
        found = connection(self.data_dir)
        if found is not None:
            self.console.print(f"Using the stack up in {self.data_dir} (shibuya up): {found[0]}")
            self.console.print(ui_hint(found[0], self.data_dir), highlight=False)
        return found

    def _api(self, stack: contextlib.ExitStack) -> tuple[ApiProcess, str]:
        env = local_api_env(self.data_dir / "api", self.bootstrap, self.access)
        token = user_token(self.data_dir, env)
        api = ApiProcess.start(env, self.data_dir / "logs" / "api.log")
        stack.callback(stopped, self.console, "API", api.stop)
        clickhouse = self.data_dir / "api" / "clickhouse"
        self.console.print(f"API: {api.base} (pid {api.pid}, log {api.log}); local scheduler, "
                           f"ClickHouse embedded in {clickhouse}")  # fmt: skip
        self.console.print(f"{ui_hint(api.base, self.data_dir)}, while this job runs; "
                           "`shibuya up` keeps one up", highlight=False)  # fmt: skip
        return api, token

    # --- what a user does -------------------------------------------------------------------

    def _load_test(self, c: httpx.Client, properties: dict[str, str]) -> bool:
        collection = self._collection(c)
        path = f"/api/collections/{collection}"
        launch = client.call(c, "POST", f"{path}/deploy")
        self.console.print(f"Deploy: launch {launch['id']}, {launch['engines']} engines "
                           f"({launch['virtual_users']} virtual users)")  # fmt: skip
        try:
            self._wait_ready(c, collection)
            run = client.call(c, "POST", f"{path}/runs", json={"properties": properties})
            self.console.print(f"Run {run['id']} started")
            final = client.watch(c, run["id"], self.console)
            in_jtl = sum(samples_in(f) for f in self._jtl_files(collection, run["id"]))
            report = self._report(c, run["id"], in_jtl)
        finally:
            removed = client.call(c, "POST", f"{path}/purge", json={"reason": "main job done"})
            self.console.print(f"Purge: {removed['engines_removed']} engines removed")
        print_table(self.console, tables.report(report))
        by_message = tables.failures(report)
        if by_message is not None:
            print_table(self.console, by_message)
        print_table(self.console, tables.verdicts(final))
        page = self.data_dir / "reports" / f"{run['id']}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_bytes(client.request(c, "GET", f"/api/runs/{run['id']}/report.html").content)
        self.console.print(
            f"HTML report (charts, verdicts, failures, engines): {page}", soft_wrap=True
        )
        stored = report["total"]["samples"] if report["total"] else 0
        exact = stored == in_jtl > 0
        verdict = "[green]exact[/green]" if exact else "[red]NOT exact[/red]"
        self.console.print(f"Samples: {in_jtl:,} in the engines' JTL files, {stored:,} in "
                           f"ClickHouse — {verdict}")  # fmt: skip
        passed = client.exit_code(final) == client.PASSED
        return exact and passed

    def _collection(self, c: httpx.Client) -> int:
        """The demo's project, plan and collection from the example declaration, with the
        engines, threads and duration of the job's options: created, or updated where they
        differ, by name (what ``shibuya apply -f`` does)."""
        declared = load(CONFIG)
        assert isinstance(declared, Declared)
        [collection] = declared.spec.collections
        [test] = collection.plans
        test = test.model_copy(update={"engines": self.engines, "threads": self.threads,
                                       "duration": self.seconds})  # fmt: skip
        collection = collection.model_copy(update={"plans": [test]})
        spec = declared.spec.model_copy(update={"collections": [collection]})
        try:
            check(Declared(spec, declared.base))
        except ConfigError as exc:
            raise ServiceError(f"{CONFIG.name} with these options: {exc}") from exc
        for change in reconcile.apply(c, Declared(spec, declared.base)):
            self.console.print(f"  {change}", highlight=False)
        found = Names(c).collection(f"{spec.project}/{collection.name}")
        self.console.print(
            f"Collection {spec.project}/{collection.name} from {CONFIG.name}: {self.engines} "
            f"engines × {self.threads} threads for {self.seconds}s; criteria: "
            f"{'; '.join(collection.criteria)}"
        )
        return int(found["id"])

    def _wait_ready(self, c: httpx.Client, collection: int) -> None:
        """Until every engine has said it is ready (its heartbeats, through Kafka)."""
        print_table(self.console, tables.status(client.wait_ready(c, collection, self.console)))

    def _jtl_files(self, collection: int, run_id: str) -> list[Path]:
        engines = self.data_dir / "api" / "engines" / str(collection)
        return sorted(engines.glob(f"*/work/runs/{run_id}/results.jtl"))

    def _report(self, c: httpx.Client, run_id: str, expected: int) -> dict[str, Any]:
        """The run's report once ClickHouse holds every sample (the last seconds' windows
        close a few seconds after the run)."""
        report: dict[str, Any] = {}

        def complete() -> bool:
            report.update(client.call(c, "GET", f"/api/runs/{run_id}/report"))
            return report["total"] is not None and report["total"]["samples"] >= expected

        with self.console.status("Waiting for the last seconds to reach ClickHouse …"):
            wait_for(complete, 60, interval_s=1.0)
        return report


def kafka(
    stack: contextlib.ExitStack, bootstrap: str, data_dir: Path, console: Console
) -> Callable[[str], KafkaAccess]:
    """The broker at ``bootstrap``: the one answering there (as it is), else one started (and
    stopped with ``stack``) with its state under ``data_dir`` — with authentication and ACLs, as
    production should be (docs/deploy.md). How each principal reaches it."""
    host, _, port = bootstrap.rpartition(":")
    if port_open(host, int(port)):
        console.print(f"Kafka: using the broker at {bootstrap}")
        return lambda principal: KafkaAccess(bootstrap)
    broker = broker_in(data_dir.resolve(), bootstrap)
    console.print(f"Kafka: starting a broker on {bootstrap} …")
    seconds = broker.start()
    stack.callback(stopped, console, "Kafka", broker.stop)
    broker.grant(kafka_acls.acls())
    console.print(f"Kafka: ready in {seconds:.1f}s (pid {broker.pid()}); SASL/SCRAM, each part "
                  "its own principal with its ACLs")  # fmt: skip
    return broker.access


def stopped(console: Console, name: str, stop: Callable[[], object]) -> None:
    stop()
    console.print(f"{name}: stopped")


def samples_in(jtl: Path) -> int:
    """Samples in a JTL file, by the sidecar's parser (what JMeter wrote, read independently)."""
    data = jtl.read_bytes()
    if b"\n" not in data:
        return 0
    parser = JtlParser(detect_format(data[: data.index(b"\n") + 1]))
    builder = BatchBuilder()
    parser.feed(data, builder)
    return len(builder)
