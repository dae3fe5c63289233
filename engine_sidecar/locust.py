"""The Locust process: headless, on the plan's locustfile and :mod:`engine_sidecar.locust_results`
(which writes every request to a JMeter CSV results file the sidecar tails); stopped by SIGTERM
(Locust lets users finish their task within its stop timeout), then by force.

Locust runs in its own environment (``shibuya dev locust`` makes one, pinned by
``engine_sidecar/locust-requirements.txt``): gevent patches the interpreter it runs in, and a
plan's imports are none of the sidecar's business.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine_sidecar.child import EngineChild, engine_env

log = logging.getLogger(__name__)

#: What the sidecar loads into Locust beside the plan.
HOOK = Path(__file__).with_name("locust_results.py")


@dataclass(frozen=True)
class LocustConfig:
    python: Path
    """The Python of Locust's environment (``<env>/bin/python``)."""
    stop_timeout_s: float = 10
    """How long users may finish their task after a stop (Locust's ``--stop-timeout``)."""


@dataclass(frozen=True)
class LocustLoad:
    """One engine's share of the plan's load."""

    users: int
    ramp_up_s: int
    duration_s: int

    @property
    def spawn_rate(self) -> float:
        """Users started per second: all of them over the ramp-up (at once without one)."""
        return self.users / self.ramp_up_s if self.ramp_up_s else float(self.users)


class LocustProcess(EngineChild):
    name = "Locust"

    @classmethod
    async def start(
        cls, config: LocustConfig, *, locustfile: Path, load: LocustLoad, results: Path,
        log_file: Path, properties: Mapping[str, str], env: Mapping[str, str] | None = None,
    ) -> LocustProcess:  # fmt: skip
        """Locust on ``locustfile`` with this engine's ``load``. The run's properties are in a
        JSON file named by ``PLAN_PROPERTIES``; the run's ``env`` may set any ``LOCUST_*``
        option the command line does not (``LOCUST_HOST``)."""
        props = results.with_name("properties.json")
        props.write_text(json.dumps(dict(properties)))
        argv = [
            str(config.python), "-m", "locust",
            "-f", f"{locustfile},{HOOK}",
            "--headless",
            "--users", str(load.users),
            "--spawn-rate", f"{load.spawn_rate:g}",
            "--run-time", f"{load.duration_s}s",
            "--stop-timeout", f"{config.stop_timeout_s:g}",
            # Failed requests are results, not a failed engine.
            "--exit-code-on-error", "0",
            "--only-summary",
            "--json-file", str(results.with_name("locust-stats")),
            "--logfile", str(log_file),
        ]  # fmt: skip
        run_env = {**engine_env(env), "SHIBUYA_LOCUST_RESULTS": str(results),
                   "PLAN_PROPERTIES": str(props)}  # fmt: skip
        with log_file.with_suffix(".out").open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=locustfile.parent,
                env=run_env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        log.info("Locust started (pid %d): %s, %s", proc.pid, locustfile.name, load)
        return cls(proc, proc.pid, str(results))
