"""The bus with authentication and ACLs (the dev broker's ``--secure``: SASL/SCRAM-SHA-512,
nothing allowed but what docs/deploy.md grants): each principal may do its part and nothing
else, a wrong password or none is turned away, and a real run — worker, API, sandboxed JMeter
engines, each as its own principal — counts every sample."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from shibuya.dev import kafka_acls, kafka_io
from shibuya.dev.kafka import KafkaBroker
from shibuya.dev.procs import free_port
from shibuya.dev.stack import as_principal
from tests.support.local_runs import Bus, run_on_local_engines
from wire import KafkaAccess, Topic, Topics

pytestmark = pytest.mark.integration
T = Topics("shibuya")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    b = KafkaBroker(tmp_path_factory.mktemp("secure-kafka"), port=free_port(),
                    controller_port=free_port(), secure=True)  # fmt: skip
    b.start()
    b.grant(kafka_acls.acls())
    asyncio.run(kafka_io.create_topics(b.access("admin"), [T[t] for t in Topic], 1))
    yield b
    b.stop()


# (principal, produce to or consume from, topic, consumer group, allowed)
MATRIX = [
    ("sidecar", "produce", Topic.RESULTS, None, True),
    ("sidecar", "produce", Topic.ENGINE_STATUS, None, True),
    ("sidecar", "produce", Topic.COMMANDS, None, False),  # no start, stop or purge of anything
    ("sidecar", "produce", Topic.RUN_EVENTS, None, False),
    ("sidecar", "produce", Topic.METRICS, None, False),
    ("sidecar", "consume", Topic.COMMANDS, "sidecar.c1-p1-0", True),
    ("sidecar", "consume", Topic.COMMANDS, "shibuya-api-commands", False),  # not its group
    ("sidecar", "consume", Topic.RESULTS, "sidecar.c1-p1-0", False),  # nobody's results
    ("sidecar", "consume", Topic.RUN_EVENTS, "sidecar.c1-p1-0", False),
    ("api", "produce", Topic.RUN_EVENTS, None, True),
    ("api", "produce", Topic.COMMANDS, None, True),
    ("api", "produce", Topic.RESULTS, None, False),
    ("api", "produce", Topic.RUN_STATUS, None, False),
    ("api", "consume", Topic.RUN_STATUS, "shibuya-api-runs", True),
    ("api", "consume", Topic.METRICS, "shibuya-clickhouse-sink", True),
    ("worker", "produce", Topic.PARTIALS, None, True),
    ("worker", "consume", Topic.RESULTS, "shibuya-streams", True),
]
REFUSED = (TopicAuthorizationFailedError, GroupAuthorizationFailedError)


# aiokafka leaves the socket of a refused client to the garbage collector: collected here, in the
# test that made it, and its warning ignored (it is aiokafka's, not what is tested).
LEFT_TO_GC = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@LEFT_TO_GC
@pytest.mark.parametrize(("principal", "action", "topic", "group", "allowed"), MATRIX,
                         ids=[f"{p}-{a}-{t.value}-{g}" for p, a, t, g, _ in MATRIX])  # fmt: skip
def test_each_principal_may_do_its_part_and_nothing_else(
    broker: KafkaBroker, principal: str, action: str, topic: Topic, group: str | None,
    allowed: bool,
) -> None:  # fmt: skip
    access, name = broker.access(principal), T[topic]

    async def act() -> None:
        if action == "produce":
            producer = AIOKafkaProducer(**access.aiokafka(), enable_idempotence=True, acks="all")
            await producer.start()
            try:
                await asyncio.wait_for(producer.send_and_wait(name, b"x"), 20)
            finally:
                await producer.stop()
            return
        async with kafka_io.producer(broker.access("admin")) as admin:
            await admin.send_and_wait(name, b"y")
        consumer = AIOKafkaConsumer(name, **access.aiokafka(), group_id=group,
                                    auto_offset_reset="earliest")  # fmt: skip
        await consumer.start()
        try:
            await asyncio.wait_for(consumer.getone(), 20)
        finally:
            await consumer.stop()

    if allowed:
        asyncio.run(act())
    else:
        with pytest.raises(REFUSED):
            asyncio.run(act())
    gc.collect()


@LEFT_TO_GC
@pytest.mark.parametrize("password", ["wrong", None], ids=["wrong-password", "no-credentials"])
def test_a_client_that_cannot_prove_who_it_is_is_turned_away(
    broker: KafkaBroker, password: str | None
) -> None:
    access = KafkaAccess(broker.bootstrap)
    if password is not None:
        access = KafkaAccess(broker.bootstrap, "SASL_PLAINTEXT", "SCRAM-SHA-512", "api", password)

    async def connect() -> None:
        producer = AIOKafkaProducer(**access.aiokafka())
        try:
            await asyncio.wait_for(producer.start(), 20)
        finally:
            await producer.stop()

    with pytest.raises(KafkaConnectionError):
        asyncio.run(connect())
    gc.collect()


def test_the_documented_acls_are_the_ones_granted() -> None:
    cli = [sys.executable, "-m", "shibuya", "dev", "kafka", "acls"]
    printed = subprocess.run(cli, capture_output=True, text=True, check=True).stdout.splitlines()
    assert printed == kafka_acls.commands(kafka_acls.acls())
    assert {p for p in kafka_acls.PRINCIPALS if any(f"User:{p} " in line for line in printed)} \
        == set(kafka_acls.PRINCIPALS)  # fmt: skip


@pytest.mark.timeout(600)
def test_a_run_on_the_secured_bus_counts_every_sample(broker: KafkaBroker, tmp_path: Path) -> None:
    sidecar = broker.access("sidecar")
    bus = Bus(broker.bootstrap, worker=as_principal(broker.access("worker")),
              api={**as_principal(broker.access("api")),
                   "KAFKA__SIDECAR_USERNAME": sidecar.username,
                   "KAFKA__SIDECAR_PASSWORD": sidecar.password})  # fmt: skip
    ran = run_on_local_engines(tmp_path, bus, duration_s=8)
    assert ran.written > 0
    assert (ran.run["outcome"], ran.run["samples_missing"]) == ("finished", 0), ran.run["reason"]
    assert ran.run["samples"] == ran.written
    assert ran.run["engines"]["finished"] == 2
