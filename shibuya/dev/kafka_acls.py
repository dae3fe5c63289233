"""Who may do what on the bus: the ACLs of the three principals, and a way to create them.

:func:`acls` is the plan — the one list the dev broker applies and docs/deploy.md prints as
``kafka-acls.sh`` commands for a production cluster (``shibuya dev kafka acls``):

* ``sidecar`` (every engine): writes results and engine statuses, reads commands (in its own
  consumer groups, ``sidecar.<engine>``) — it cannot start, stop or purge anything, nor read
  anyone's results;
* ``api``: writes run events and commands, reads run statuses, commands, metrics, engine
  statuses and results (the ClickHouse sink), in its consumer groups, and live rows (without a
  group);
* ``worker``: everything on the installation's topics and its own (state, Faust's), its
  consumer group and its transactional ids.

:func:`create` sends them in one CreateAcls request. aiokafka's admin client has no ACL calls
and its CreateAcls versions (0, 1) are older than Kafka 4 accepts, so the request (version 3,
KIP-482's flexible encoding) is declared here on aiokafka's protocol types; ``kafka-acls.sh``
would start a JVM per principal and pattern, seconds each, for every test broker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from shibuya.dev.procs import ServiceError
from wire import KafkaAccess, Topic, Topics

#: Kafka's codes (org.apache.kafka.common.acl / resource).
RESOURCES = {"topic": 2, "group": 3, "cluster": 4, "transactional-id": 5}
PATTERNS = {"literal": 3, "prefixed": 4}
OPERATIONS = {"all": 2, "read": 3, "write": 4, "create": 5, "describe": 8,
              "describe-configs": 10}  # fmt: skip
ALLOW = 3

PRINCIPALS = ("api", "worker", "sidecar")


@dataclass(frozen=True)
class Acl:
    principal: str
    operation: str
    resource: str
    name: str
    pattern: str = "literal"


def acls(
    prefix: str = "shibuya", app_id: str = "shibuya-streams",
    api_groups: Sequence[str] = ("shibuya-api-runs", "shibuya-api-commands",
                                 "shibuya-clickhouse-sink"),
) -> list[Acl]:  # fmt: skip
    """What each principal may do for an installation of topic prefix ``prefix`` whose
    workers' app id is ``app_id``."""
    t = Topics(prefix)
    out = [
        Acl("sidecar", op, "topic", t[topic])
        for topic in (Topic.RESULTS, Topic.ENGINE_STATUS)
        for op in ("write", "describe")
    ]
    out += [Acl("sidecar", op, "topic", t.commands) for op in ("read", "describe")]
    out.append(Acl("sidecar", "read", "group", "sidecar.", "prefixed"))
    out += [
        Acl("api", op, "topic", t[topic])
        for topic in (Topic.RUN_EVENTS, Topic.COMMANDS)
        for op in ("write", "describe")
    ]
    out += [Acl("api", op, "topic", t[topic])
            for topic in (Topic.RUN_STATUS, Topic.COMMANDS, Topic.METRICS, Topic.ENGINE_STATUS,
                          Topic.RESULTS, Topic.LIVE)
            for op in ("read", "describe")]  # fmt: skip
    out += [Acl("api", "read", "group", g) for g in api_groups]
    out += [Acl("worker", "all", "topic", f"{prefix}.", "prefixed"),
            Acl("worker", "all", "topic", app_id, "prefixed"),
            Acl("worker", "all", "group", app_id, "prefixed"),
            Acl("worker", "all", "transactional-id", app_id, "prefixed"),
            Acl("worker", "describe-configs", "cluster", "kafka-cluster")]  # fmt: skip
    return out


def commands(plan: Iterable[Acl], bootstrap: str = "$BOOTSTRAP") -> list[str]:
    """The plan as ``kafka-acls.sh`` commands (an admin's client config in ``admin.properties``)."""
    flag = {"topic": "--topic", "group": "--group", "cluster": "--cluster",
            "transactional-id": "--transactional-id"}  # fmt: skip
    out = []
    for a in plan:
        target = flag[a.resource] if a.resource == "cluster" else f"{flag[a.resource]} '{a.name}'"
        out.append(f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config admin.properties"
                   f" --add --allow-principal User:{a.principal} --operation "
                   f"{a.operation.title().replace('-', '')} {target}"
                   f" --resource-pattern-type {a.pattern}")  # fmt: skip
    return out


class _CreateAclsResponse(Response):  # type: ignore[misc]  # aiokafka's protocol is untyped
    API_KEY = 30
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(("error_code", Int16), ("error_message", CompactString("utf-8")),
                                 ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )  # fmt: skip


class _CreateAclsStruct(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 30
    API_VERSION = 3
    RESPONSE_TYPE = _CreateAclsResponse
    SCHEMA = Schema(
        ("creations", CompactArray(
            ("resource_type", Int8), ("resource_name", CompactString("utf-8")),
            ("resource_pattern_type", Int8), ("principal", CompactString("utf-8")),
            ("host", CompactString("utf-8")), ("operation", Int8), ("permission_type", Int8),
            ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )  # fmt: skip


class _CreateAcls(Request[_CreateAclsStruct]):  # type: ignore[misc]
    API_KEY: ClassVar[int] = 30

    def __init__(self, plan: Sequence[Acl]) -> None:
        self._creations: list[tuple[object, ...]] = [
            (RESOURCES[a.resource], a.name, PATTERNS[a.pattern], f"User:{a.principal}", "*",
             OPERATIONS[a.operation], ALLOW, {})
            for a in plan
        ]  # fmt: skip

    def build(self, request_struct_class: type[_CreateAclsStruct]) -> _CreateAclsStruct:
        return request_struct_class(self._creations, {})


async def create(admin: KafkaAccess, plan: Sequence[Acl]) -> None:
    """Create the ACLs with an admin's credentials; raise :class:`ServiceError` on a refusal."""
    client = AIOKafkaClient(**admin.aiokafka(), request_timeout_ms=10_000)
    await client.bootstrap()
    try:
        node = client.get_random_node()
        response = await client.send(node, _CreateAcls(plan))
        errors = [(a, msg) for a, (code, msg, _) in zip(plan, response.results, strict=True)
                  if code]  # fmt: skip
        if errors:
            raise ServiceError(f"Kafka refused ACLs: {errors}")
    finally:
        await client.close()
