"""Where engines run: one interface (:class:`Scheduler`), several backends.

- ``local`` (:mod:`control.schedulers.local`): sidecar processes on this machine, the embedded
  default;
- ``kubernetes`` (:mod:`control.schedulers.kube`): one StatefulSet per plan;
- ``external``: engines are deployed by someone else (a test harness, an operator); deploy and
  purge do nothing and the collection status comes from heartbeats alone.

Deploy and purge are idempotent: a retried deploy creates only what is missing, a retried purge
removes nothing more. A purge names the moment it was issued and removes only engines deployed
before it, so a purge executed late (a command replayed from Kafka) never removes a newer
deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from control.errors import SchedulerError

__all__ = ["Deployment", "EngineInfo", "External", "PlanEngines", "Scheduler", "SchedulerError"]


@dataclass(frozen=True)
class PlanEngines:
    plan_id: str
    engines: int
    engine: str = "jmeter"
    """The engine type its engines run (the Kubernetes scheduler's image of that type)."""


@dataclass(frozen=True)
class Deployment:
    collection_id: str
    project_id: str
    plans: list[PlanEngines]
    engine_token: str = ""
    """What the engines this deploy starts fetch their runs' plan files with
    (``SHIBUYA_SIDECAR_ENGINE_TOKEN``; :mod:`control.services.engine_tokens`)."""


@dataclass(frozen=True)
class EngineInfo:
    """An engine as its scheduler sees it (heartbeats say what it does)."""

    engine_id: str
    plan_id: str
    index: int
    phase: str
    """``starting``, ``running``, ``stopping``, ``exited`` or ``unknown``."""
    deployed_ms: int
    detail: str = ""
    """Why an engine is not running, as the backend tells it (unschedulable, image pull …)."""


class Scheduler(Protocol):
    kind: str

    def deploy(self, deployment: Deployment) -> None:
        """Make the collection's engines exist, as many per plan as asked: start what is
        missing, remove engines beyond the count, leave the rest alone."""

    def purge(self, collection_id: str, deployed_before_ms: int) -> int:
        """Remove the collection's engines deployed before that time; how many were removed."""

    def engines(self, collection_id: str) -> list[EngineInfo]:
        """The collection's engines, by plan and index."""

    def collections(self) -> list[str]:
        """Every collection with engines deployed."""

    def logs(self, collection_id: str, plan_id: str, index: int, tail_bytes: int) -> str | None:
        """The last ``tail_bytes`` of an engine's log; None if there is no such engine."""

    def kept(self, collection_id: str) -> list[str]:
        """Where purged engines' results wait that they could not publish before the purge's
        drain limit (Kafka away): kept, not deleted; the next deploy publishes them."""

    def describe(self) -> tuple[bool, str]:
        """Whether it can start engines, and what it starts them with (for ``/api/health``)."""


class External:
    """Engines deployed by someone else: nothing to do, nothing known but their heartbeats."""

    kind = "external"

    def deploy(self, deployment: Deployment) -> None:
        return None

    def purge(self, collection_id: str, deployed_before_ms: int) -> int:
        return 0

    def engines(self, collection_id: str) -> list[EngineInfo]:
        return []

    def collections(self) -> list[str]:
        return []

    def logs(self, collection_id: str, plan_id: str, index: int, tail_bytes: int) -> str | None:
        return None

    def kept(self, collection_id: str) -> list[str]:
        return []

    def describe(self) -> tuple[bool, str]:
        return True, "engines are run elsewhere, with an engine token (shibuya engine-token)"
