"""The engines a sidecar runs, behind one interface: prepare a plan for engine *i* of *n*, start
it, stop it gracefully, adopt it again after a sidecar restart. Every engine writes a results
file the sidecar tails (JMeter CSV); nothing after the sidecar knows which engine wrote it.

================  =====================================  =======================================
engine            the plan                               its share of the load
================  =====================================  =======================================
``jmeter``        one ``.jmx`` (rewritten for the run)   threads, and the plan's own targets
                                                         (:mod:`engine_sidecar.loadsplit`)
``locust``        one locustfile (``.py``)               users; spawn rate over the ramp-up
``gatling``       Java sources (``.java``), one of them  users, ramp-up, duration, as system
                  a ``Simulation``                       properties its injection profile reads
================  =====================================  =======================================

Data files (``.csv``) are split among the engines the same way for every engine
(:func:`engine_sidecar.plan.split_csv`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from engine_sidecar.atomic import write_atomic
from engine_sidecar.engine import JMeterConfig, JMeterProcess
from engine_sidecar.errors import PlanError
from engine_sidecar.gatling import GatlingConfig, GatlingLoad, GatlingProcess
from engine_sidecar.loadsplit import count_share
from engine_sidecar.locust import LocustConfig, LocustLoad, LocustProcess
from engine_sidecar.plan import rewrite_jmx
from engine_sidecar.rundir import RunDir
from wire import EngineKind, StartEngines


class EngineProcess(Protocol):
    pid: int

    def alive(self) -> bool: ...

    async def wait(self) -> int | None: ...

    async def stop(self, grace_s: float = 30) -> int | None: ...


def users_of(cmd: StartEngines, index: int) -> int:
    """Engine ``index``'s users: its share of the plan's, or the threads per engine."""
    if cmd.users is None:
        return cmd.threads_per_engine
    return int(count_share(str(cmd.users), cmd.engine_count, index))


@dataclass(frozen=True)
class Engines:
    jmeter: JMeterConfig
    locust: LocustConfig
    gatling: GatlingConfig

    async def start(self, cmd: StartEngines, index: int, run_dir: RunDir) -> EngineProcess:
        """The engine of ``cmd`` on the files ``run_dir`` holds (downloaded, split)."""
        if cmd.engine is EngineKind.LOCUST:
            return await self._locust(cmd, index, run_dir)
        if cmd.engine is EngineKind.GATLING:
            return await self._gatling(cmd, index, run_dir)
        jmx = run_dir.main_file(".jmx", "test plan (.jmx)")
        rewritten = run_dir.path / "plan.rewritten.jmx"
        write_atomic(rewritten, rewrite_jmx(jmx.read_bytes(), threads=users_of(cmd, index),
                                            ramp_up_s=cmd.ramp_up_s, duration_s=cmd.duration_s,
                                            engines=cmd.engine_count, index=index))  # fmt: skip
        return await JMeterProcess.start(self.jmeter, jmx=rewritten, jtl=run_dir.jtl,
                                         log_file=run_dir.engine_log, properties=run_dir.properties,
                                         env=cmd.env)  # fmt: skip

    async def _locust(self, cmd: StartEngines, index: int, run_dir: RunDir) -> EngineProcess:
        if not self.locust.python.exists():
            raise PlanError(f"this engine has no Locust ({self.locust.python}): `shibuya dev "
                            "locust` makes its environment")  # fmt: skip
        locustfile = run_dir.main_file(".py", "locustfile (.py)", "locustfile.py")
        load = LocustLoad(users_of(cmd, index), cmd.ramp_up_s, cmd.duration_s)
        return await LocustProcess.start(
            self.locust, locustfile=locustfile, load=load, results=run_dir.jtl,
            log_file=run_dir.engine_log, properties=run_dir.run_properties, env=cmd.env,
        )  # fmt: skip

    async def _gatling(self, cmd: StartEngines, index: int, run_dir: RunDir) -> EngineProcess:
        if not (self.gatling.home / "launcher").is_dir():
            raise PlanError(f"this engine has no Gatling ({self.gatling.home}): `shibuya dev "
                            "gatling` installs it")  # fmt: skip
        sources = sorted(run_dir.path.glob("*.java"))
        load = GatlingLoad(users_of(cmd, index), cmd.ramp_up_s, cmd.duration_s,
                           cmd.engine_count, index)  # fmt: skip
        return await GatlingProcess.start(
            self.gatling, sources=sources, load=load, results=run_dir.jtl,
            log_file=run_dir.engine_log, properties=run_dir.run_properties, env=cmd.env,
        )  # fmt: skip

    def adopt(self, engine: str, pid: int, run_dir: RunDir) -> EngineProcess | None:
        """The engine of a run a sidecar left, if it still runs."""
        if engine == EngineKind.LOCUST:
            return LocustProcess.running(pid, run_dir.jtl)
        if engine == EngineKind.GATLING:
            return GatlingProcess.running(pid, run_dir.jtl)
        return JMeterProcess.adopt(self.jmeter, pid, run_dir.jtl)


class Gone:
    """An engine that is no longer there: waiting for it returns at once."""

    pid = -1

    def alive(self) -> bool:
        return False

    async def wait(self) -> int | None:
        return None

    async def stop(self, grace_s: float = 30) -> int | None:
        return None
