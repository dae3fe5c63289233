"""What an engine keeps on disk between commands and across its own restarts.

::

    <work_dir>/commands-seen.json     the ids of the last commands acted on (each acts once)
    <work_dir>/runs/<run>/            one run:
        <plan files>                  downloaded, checked; this engine's share of the CSVs
        plan.rewritten.jmx            JMeter: the plan with the run's threads, ramp-up, duration
        run.properties                the run's properties (JMeter's ``-q``)
        properties.json               the same, for Locust (``PLAN_PROPERTIES``)
        results.jtl                   what the engine writes (JMeter CSV, whatever the engine)
        jmeter.log, locust-stats.json the engine's log (named so for every engine); Locust's
                                      own final statistics
        checkpoint.json               how far the results are published (engine_sidecar.checkpoint)
        run.json                      what a restarted sidecar needs to pick the run up again

Every file is written with :func:`~engine_sidecar.atomic.write_atomic`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from engine_sidecar.atomic import write_atomic
from engine_sidecar.errors import PlanError
from engine_sidecar.files import download, fetch_secrets
from engine_sidecar.plan import properties_file, split_csv
from wire import StartEngines

REMEMBERED_COMMANDS = 1000


class SeenCommands:
    """The ids of the last :data:`REMEMBERED_COMMANDS` commands acted on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._ids: list[str] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            self._ids = []

    def __contains__(self, command_id: str) -> bool:
        return command_id in self._ids

    def remember(self, command_id: str) -> None:
        self._ids = [*self._ids, command_id][-REMEMBERED_COMMANDS:]
        write_atomic(self.path, json.dumps(self._ids).encode())


@dataclass(frozen=True)
class RunRecord:
    """``run.json``."""

    run_id: str
    plan_id: str
    command_id: str
    jmeter_pid: int
    """The engine's PID (named when JMeter was the only engine)."""
    ended: bool = False
    engine: str = "jmeter"


class RunDir:
    def __init__(self, work_dir: Path, run_id: str) -> None:
        self.path = work_dir / "runs" / run_id
        self.jtl = self.path / "results.jtl"
        self.checkpoint = self.path / "checkpoint.json"
        self.engine_log = self.path / "jmeter.log"
        self.properties = self.path / "run.properties"
        self.run_properties: dict[str, str] = {}
        """The run's properties and secrets (set by :meth:`prepare`)."""
        self._record = self.path / "run.json"

    @classmethod
    def unfinished(cls, work_dir: Path) -> Iterator[tuple[RunDir, RunRecord]]:
        """Runs a sidecar left without marking them ended, oldest name first."""
        for record_path in sorted((work_dir / "runs").glob("*/run.json")):
            run_dir = cls(work_dir, record_path.parent.name)
            record = run_dir.record()
            if record is not None and not record.ended:
                yield run_dir, record

    def record(self) -> RunRecord | None:
        try:
            return RunRecord(**json.loads(self._record.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, record: RunRecord) -> None:
        write_atomic(self._record, json.dumps(asdict(record)).encode())

    def end(self) -> None:
        record = self.record()
        if record is not None:
            self.save(replace(record, ended=True))

    def prepare(self, cmd: StartEngines, engine_index: int, token: str) -> None:
        """Download the plan's files, take this engine's share of the CSVs, write the run's
        properties. Raises ``DownloadError`` or ``OSError``."""
        self.path.mkdir(parents=True, exist_ok=True)
        for f in cmd.files:
            path = download(f, self.path, token)
            if f.name.endswith(".csv") and cmd.split_csv:
                share = split_csv(path.read_bytes(), engines=cmd.engine_count,
                                  index=engine_index, header=f.csv_header)  # fmt: skip
                write_atomic(path, share)
        secrets = fetch_secrets(cmd.secrets_url, token) if cmd.secrets_url else {}
        self.run_properties = {**cmd.properties, **secrets}
        write_atomic(self.properties, properties_file(self.run_properties))

    def main_file(self, suffix: str, what: str, preferred: str = "") -> Path:
        """The one file of the plan named ``*suffix`` (or, of several, the ``preferred`` one):
        the engine's plan. Raises ``PlanError`` without one, or with two."""
        found = sorted(p for p in self.path.glob(f"*{suffix}") if p.name != "plan.rewritten.jmx")
        if len(found) > 1 and (self.path / preferred) in found:
            return self.path / preferred
        if not found:
            raise PlanError(f"the plan has no {what}")
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            hint = f" and none is named {preferred}" if preferred else ""
            raise PlanError(f"the plan has {len(found)} {what} files{hint}: {names}")
        return found[0]
