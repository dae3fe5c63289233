"""A real single-node Apache Kafka broker (KRaft) for development and tests, without Docker.

Maven fetches ``org.apache.kafka:kafka_2.13`` with its runtime dependencies and a Log4j 2 backend
from Maven Central into a cache folder keyed by version; the broker then runs as a plain JVM
process on loopback, its PID recorded in its data directory. docs/dev-services.md tells the recipe
and the measured start-up times.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from control.schedulers.processes import alive, spawn, wait_for
from shibuya.dev import kafka_acls
from shibuya.dev.maven import Coordinate, cache_root, fetch
from shibuya.dev.procs import PidFile, ServiceError, port_open, tail, terminate
from wire import KafkaAccess

KAFKA_VERSION = "4.1.2"
LOG4J_VERSION = "2.25.3"
READY_LINE = "Kafka Server started"


def jars(version: str = KAFKA_VERSION) -> list[Coordinate]:
    """The broker's jars (with their runtime dependencies); docker/kafka/pom.xml names the same."""
    return [
        ("org.apache.kafka", "kafka_2.13", version),
        # kafka_2.13 brings log4j-core but no SLF4J binding; Kafka 4.1 logs through slf4j-api 1.7.
        ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
    ]


def install(version: str = KAFKA_VERSION, *, quiet: bool = True) -> Path:
    """The folder of the broker's jars, fetched with Maven unless already cached."""
    dest = cache_root() / f"kafka-{version}-log4j-{LOG4J_VERSION}" / "libs"
    return fetch(f"Kafka {version}", jars(version), dest, quiet=quiet)


def _cluster_id() -> str:
    """A random cluster id as Kafka writes them: 16 bytes, URL-safe base64, unpadded."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class KafkaBroker:
    """One combined broker+controller on 127.0.0.1, its state under ``data_dir``."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    version: str = KAFKA_VERSION
    heap: str = "512m"
    extra_config: dict[str, str] = field(default_factory=dict)
    secure: bool = False
    """SASL/SCRAM-SHA-512 for clients and ACLs (nothing allowed unless granted): the principals
    ``admin`` (a super user), ``api``, ``worker`` and ``sidecar``, with generated passwords in
    ``credentials.json`` (0600); :meth:`grant` gives them :func:`kafka_acls.acls`."""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def access(self, principal: str = "admin") -> KafkaAccess:
        """How ``principal`` reaches this broker."""
        if not self.secure:
            return KafkaAccess(self.bootstrap)
        return KafkaAccess(self.bootstrap, "SASL_PLAINTEXT", "SCRAM-SHA-512", principal,
                           self._credentials()[principal])  # fmt: skip

    def grant(self, plan: Sequence[kafka_acls.Acl]) -> None:
        """Create ACLs (as ``admin``)."""
        asyncio.run(kafka_acls.create(self.access("admin"), plan))

    def _credentials(self) -> dict[str, str]:
        path = self.data_dir / "credentials.json"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            users = {u: secrets.token_urlsafe(18) for u in ("admin", *kafka_acls.PRINCIPALS)}
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(users, out)
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded

    @property
    def log_path(self) -> Path:
        return self.data_dir / "kafka.log"

    @property
    def _pidfile(self) -> PidFile:
        return PidFile(self.data_dir / "kafka.pid", marker=str(self.data_dir / "server.properties"))

    def pid(self) -> int | None:
        return self._pidfile.read()

    def running(self) -> bool:
        return self.pid() is not None and port_open("127.0.0.1", self.port)

    def start(self, timeout_s: float = 90) -> float:
        """Start the broker unless it runs; wait until it serves. Returns the seconds taken."""
        t0 = time.monotonic()
        if self.pid() is not None:
            self._wait_ready(t0, timeout_s, self.pid() or 0)
            return time.monotonic() - t0
        if port_open("127.0.0.1", self.port):
            raise ServiceError(f"port {self.port} is taken by another process")
        libs = install(self.version)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_dir = self.data_dir / "log"
        formatted = (log_dir / "meta.properties").exists()
        if self.secure and formatted and not (self.data_dir / "credentials.json").exists():
            raise ServiceError(f"{self.data_dir} holds a broker formatted without credentials: "
                               "start it without --secure, or remove the folder")  # fmt: skip
        props = self._write_config()
        classpath = f"{libs}/*"
        if not formatted:
            fmt = subprocess.run(
                [
                    "java",
                    "-cp",
                    classpath,
                    f"-Dlog4j2.configurationFile={self._log4j_path}",
                    "kafka.tools.StorageTool",
                    "format",
                    # One argument: a random id may start with "-", which the tool would read
                    # as an option (one start in 64 failed so).
                    f"--cluster-id={_cluster_id()}",
                    "-c",
                    str(props),
                    "--ignore-formatted",
                    *self._scram_users(),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise ServiceError(f"formatting Kafka storage failed:\n{fmt.stdout}{fmt.stderr}")
        if self.log_path.exists():  # the ready line must come from this start
            self.log_path.replace(self.log_path.with_suffix(".log.1"))
        pid = spawn(
            [
                "java",
                "-Xms256m",
                f"-Xmx{self.heap}",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:InitiatingHeapOccupancyPercent=35",
                "-XX:+ExplicitGCInvokesConcurrent",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self._log4j_path}",
                f"-Dkafka.logs.dir={self.data_dir}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(props),
            ],
            log=self.log_path,
        )
        self._pidfile.write(pid)
        self._wait_ready(t0, timeout_s, pid)
        return time.monotonic() - t0

    def stop(self, timeout_s: float = 30) -> bool:
        """Stop the broker we started (by PID). False if it was not running."""
        pid = self.pid()
        if pid is None:
            self._pidfile.clear()
            return False
        terminate(pid, timeout_s)
        self._pidfile.clear()
        return True

    def _wait_ready(self, t0: float, timeout_s: float, pid: int) -> None:
        def ready() -> bool:
            if not alive(pid):
                raise ServiceError(f"Kafka exited during start-up:\n{tail(self.log_path)}")
            return port_open("127.0.0.1", self.port) and READY_LINE in self._log_text()

        if not wait_for(ready, timeout_s - (time.monotonic() - t0), interval_s=0.2):
            raise ServiceError(f"Kafka not ready after {timeout_s}s:\n{tail(self.log_path)}")

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def _log4j_path(self) -> Path:
        return self.data_dir / "log4j2.properties"

    def _scram_users(self) -> list[str]:
        """``--add-scram`` arguments: the users' SCRAM credentials, stored when formatting."""
        if not self.secure:
            return []
        return [f"--add-scram=SCRAM-SHA-512=[name={user},password={password}]"
                for user, password in self._credentials().items()]  # fmt: skip

    def _security_config(self) -> dict[str, str]:
        """Clients and the broker itself authenticate with SCRAM; the controller listener (the
        broker talking to its own controller) with PLAIN, as KRaft needs a mechanism that does
        not read the metadata it serves. Nothing is allowed but what an ACL grants."""
        admin = self._credentials()["admin"]
        scram = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
                 f'username="admin" password="{admin}";')  # fmt: skip
        plain = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
                 f'username="admin" password="{admin}" user_admin="{admin}";')  # fmt: skip
        return {
            "listeners": f"SASL_PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "SASL_PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,"
            "SASL_PLAINTEXT:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": scram,
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": plain,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin",
            "allow.everyone.if.no.acl.found": "false",
        }

    def _write_config(self) -> Path:
        config = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir / "log"),
            "num.partitions": "1",
            # Topics are declared by their owners with explicit partition counts.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            # 50 partitions (the default) make the first group join slow on two cores.
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            **(self._security_config() if self.secure else {}),
            **self.extra_config,
        }
        props = self.data_dir / "server.properties"
        props.touch(mode=0o600)  # it holds the admin's password when secure
        props.chmod(0o600)
        props.write_text("".join(f"{k}={v}\n" for k, v in config.items()))
        self._log4j_path.write_text(
            "appender.console.type = Console\n"
            "appender.console.name = STDOUT\n"
            "appender.console.layout.type = PatternLayout\n"
            "appender.console.layout.pattern = %d %p %c - %m%n\n"
            "rootLogger.level = WARN\n"
            "rootLogger.appenderRef.stdout.ref = STDOUT\n"
            # The one INFO line we wait for ("Kafka Server started").
            "logger.raft.name = kafka.server.KafkaRaftServer\n"
            "logger.raft.level = INFO\n"
        )
        return props
