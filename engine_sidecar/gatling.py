"""The Gatling process: the plan's Java simulation compiled on the engine (``javac``), run by
the sidecar's launcher (``engine_sidecar/gatling/ShibuyaGatling.java``), which writes every
response Gatling records to a JMeter CSV results file; stopped by SIGTERM, then by force.

Gatling's community edition does not divide a load among load generators; each engine gets its
share as system properties the simulation reads (docs/engines.md#gatling): ``shibuya.users``,
``shibuya.rampUp``, ``shibuya.duration``, ``shibuya.engines`` and ``shibuya.engineIndex``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine_sidecar.child import EngineChild, engine_env
from engine_sidecar.errors import PlanError
from engine_sidecar.plan import properties_file

log = logging.getLogger(__name__)

_PACKAGE = re.compile(rb"^\s*package\s+([\w.]+)\s*;", re.M)
_SIMULATION = re.compile(rb"\bextends\s+(?:[\w.]+\.)?Simulation\b")


@dataclass(frozen=True)
class GatlingConfig:
    home: Path
    """``shibuya dev gatling``'s folder: ``lib/`` (Gatling's jars) and ``launcher/``."""
    heap: str = "512m"


@dataclass(frozen=True)
class GatlingLoad:
    """One engine's share of the plan's load, as the simulation reads it."""

    users: int
    ramp_up_s: int
    duration_s: int
    engines: int
    index: int

    def properties(self) -> dict[str, str]:
        return {"shibuya.users": str(self.users), "shibuya.rampUp": str(self.ramp_up_s),
                "shibuya.duration": str(self.duration_s), "shibuya.engines": str(self.engines),
                "shibuya.engineIndex": str(self.index)}  # fmt: skip


def simulation_of(sources: list[Path]) -> str:
    """The class name of the simulation: the one source that declares a class that ``extends
    Simulation``, in its package. Raises ``PlanError`` for none or several."""
    texts = {p: p.read_bytes() for p in sources}
    found = [p for p, text in texts.items() if _SIMULATION.search(text)]
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise PlanError(f"the plan needs one Java class that extends Simulation, not {len(found)} "
                        f"({names})")  # fmt: skip
    package = _PACKAGE.search(texts[found[0]])
    name = found[0].stem
    return f"{package.group(1).decode()}.{name}" if package else name


class GatlingProcess(EngineChild):
    name = "Gatling"

    @classmethod
    async def start(
        cls, config: GatlingConfig, *, sources: list[Path], load: GatlingLoad, results: Path,
        log_file: Path, properties: Mapping[str, str], env: Mapping[str, str] | None = None,
    ) -> GatlingProcess:  # fmt: skip
        """Compile ``sources``, then run their simulation with this engine's ``load``."""
        simulation = simulation_of(sources)
        lib = ":".join(str(p) for p in sorted((config.home / "lib").glob("*.jar")))
        folder = results.parent
        classes = folder / "classes"
        javac = await asyncio.create_subprocess_exec(
            "javac", "-nowarn", "-encoding", "UTF-8", "-d", str(classes), "-cp", lib,
            *map(str, sources), cwd=folder, env=engine_env(env),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await javac.communicate()
        if javac.returncode != 0:
            raise PlanError(
                f"the simulation did not compile: {out.decode(errors='replace')[-800:]}"
            )
        props = folder / "gatling.properties"
        props.write_bytes(properties_file({**properties, **load.properties()}))
        argv = [
            "java", f"-Xms{config.heap}", f"-Xmx{config.heap}",
            "--add-opens=java.base/java.lang=ALL-UNNAMED",  # Gatling 3.13+ needs it
            "-Dgatling.data.enableAnalytics=false",
            "-cp", f"{lib}:{config.home / 'launcher'}:{classes}:{folder}",
            "ShibuyaGatling", simulation, str(results), str(folder / "gatling"), str(props),
        ]  # fmt: skip
        with log_file.with_suffix(".out").open("ab") as sink:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=folder, env=engine_env(env), stdout=sink,
                stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        log.info("Gatling started (pid %d): %s, %s", proc.pid, simulation, load)
        return cls(proc, proc.pid, str(results))
