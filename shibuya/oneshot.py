"""``shibuya run``: from a collection — or straight from a JMX file — to a verdict.

From a file, the run needs a plan and a collection: both are named after the file (``plan.jmx``
→ ``scratch/plan``), created the first time and updated to the options given after that, so
its runs form one history (``shibuya runs scratch/plan``). Engines not deployed are deployed by
the API when the run starts; they are purged again at the end, leaving the collection as it was
found.

SIGINT or SIGTERM asks the stream to stop the run and waits for its end (a second one leaves it
running and exits 130).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from shibuya import client, reconcile
from shibuya.declare import CollectionDecl, Declaration, Declared, PlanDecl, PlanRun, check
from shibuya.names import Names


@dataclass(frozen=True)
class Scratch:
    """What ``shibuya run FILE.jmx`` creates or updates."""

    jmx: Path
    data: list[Path] = field(default_factory=list)
    engines: int = 1
    threads: int = 1
    duration_s: int = 60
    ramp_up_s: int = 0
    criteria: list[str] = field(default_factory=list)
    csv_split: bool = False
    project: str = "scratch"
    group: str | None = None

    def declared(self) -> Declared:
        """As a declaration, checked as ``shibuya apply`` checks one."""
        name = self.jmx.stem
        files = [str(p.resolve()) for p in (self.jmx, *self.data)]
        run = PlanRun(
            plan=name,
            engines=self.engines,
            threads=self.threads,
            duration=self.duration_s,
            ramp_up=self.ramp_up_s,
            csv_split=self.csv_split,
        )
        spec = Declaration(project=self.project, group=self.group,
                           plans=[PlanDecl(name=name, files=files)],
                           collections=[CollectionDecl(name=name, criteria=self.criteria,
                                                       plans=[run])])  # fmt: skip
        declared = Declared(spec, Path("/"))
        check(declared)
        return declared


def prepare(c: httpx.Client, scratch: Scratch, console: Console) -> str:
    """Create or update the scratch plan and collection; its ``PROJECT/NAME``."""
    for change in reconcile.apply(c, scratch.declared()):
        console.print(change, highlight=False)
    return f"{scratch.project}/{scratch.jmx.stem}"


def run(
    c: httpx.Client,
    ref: str,
    console: Console,
    properties: dict[str, str] | None = None,
    detach: bool = False,
    env: dict[str, str] | None = None,
    external: bool = False,
) -> dict[str, Any]:
    """Start a run with its own JMeter ``properties`` (the API deploys engines that are not),
    follow it to its end (or not, ``detach``), purge the engines if they were not deployed
    before. ``external``: announce it only, for engines of the caller's own. The run's last
    state."""
    collection = Names(c).collection(ref)
    path = f"/api/collections/{collection['id']}"
    status = client.call(c, "GET", f"{path}/status")
    ours = status["scheduler"] != "external" and not status.get("launch") and not external
    body = {"properties": properties or {}, "env": env or {}, "external": external}
    started = client.call(c, "POST", f"{path}/runs", json=body)
    console.print(f"run {started['id']} started", highlight=False)
    if detach:
        return dict(started)
    try:
        return follow(c, started["id"], console)
    except InterruptError:
        ours = False  # the run goes on: so do its engines
        raise
    finally:
        if ours:
            out = client.call(c, "POST", f"{path}/purge", json={"reason": "shibuya run ended"})
            console.print(f"{ref}: {out['engines_removed']} engines purged", highlight=False)


class InterruptError(Exception):
    """SIGINT or SIGTERM while following a run."""


@contextmanager
def _signals() -> Iterator[None]:
    def interrupt(signum: int, frame: object) -> None:
        raise InterruptError(signal.Signals(signum).name)

    before = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def follow(c: httpx.Client, run_id: str, console: Console) -> dict[str, Any]:
    """Watch the run to its end; on SIGINT/SIGTERM, stop it and watch it end. A second signal
    raises :class:`InterruptError` with the run left going."""
    with _signals():
        try:
            return client.watch(c, run_id, console)
        except InterruptError as first:
            console.print(f"{first}: stopping run {run_id} and waiting for its end (again to "
                          "leave it running)", highlight=False)  # fmt: skip
            client.call(c, "POST", f"/api/runs/{run_id}/stop", json={"reason": f"{first}"})
            return client.watch(c, run_id, console)
