"""The local scheduler: each engine is a sidecar process (which runs JMeter when told) on this
machine, in its own folder.

``<root>/<collection>/<plan>-<index>/`` holds ``engine.json`` (its PID and when it was
deployed), ``sidecar.log`` (the sidecar's and JMeter's output) and ``work/`` (plan files,
results, checkpoints). Everything the scheduler knows is in these folders, so a restarted control
process finds its engines again; an engine whose process has gone is ``exited`` until a deploy
restarts it or a purge removes it. A PID is signalled only while its environment still names
the engine's folder, so a recycled PID is never touched. Engines run in their own session: they
outlive the control process, and a purge that must kill takes the engine's JMeter with it.

Each engine runs in a sandbox when bubblewrap is there (:mod:`control.schedulers.sandbox`): it
sees its own folder, not the API's data or environment.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from control.schedulers import Deployment, EngineInfo, SchedulerError, sandbox
from control.schedulers.processes import alive, spawn, wait_for
from control.settings import KafkaSettings

log = logging.getLogger(__name__)

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class LocalScheduler:
    kind = "local"

    def __init__(
        self, root: Path, *, kafka: KafkaSettings, jmeter_home: Path,
        locust_env: Path | None = None, gatling_home: Path | None = None,
        env: Mapping[str, str] | None = None,
        stop_timeout_s: float = 15, drain_s: float = 120,
        bwrap: str | None = None,
        command: Sequence[str] = (sys.executable, "-m", "shibuya", "sidecar", "run"),
    ) -> None:  # fmt: skip
        """``bwrap``: the bubblewrap program engines run under; ``None``: no sandbox."""
        self.root = root.resolve()
        self.command = list(command)
        """What an engine runs: the sidecar in agent mode."""
        self.stop_timeout_s = stop_timeout_s
        self.drain_s = drain_s
        self.bwrap = bwrap
        engine = {**kafka.sidecar_env(), "SHIBUYA_SIDECAR_HEALTH_PORT": "0",
                  "SHIBUYA_SIDECAR_JMETER__HOME": str(jmeter_home),
                  **({"SHIBUYA_SIDECAR_LOCUST__PYTHON": str(locust_env / "bin" / "python")}
                     if locust_env else {}),
                  **({"SHIBUYA_SIDECAR_GATLING__HOME": str(gatling_home)} if gatling_home else {}),
                  **(env or {})}  # fmt: skip
        self._env = sandbox.engine_env(os.environ, engine)
        homes = [Path(engine["SHIBUYA_SIDECAR_JMETER__HOME"])]
        if "SHIBUYA_SIDECAR_LOCUST__PYTHON" in engine:  # <env>/bin/python
            homes.append(Path(engine["SHIBUYA_SIDECAR_LOCUST__PYTHON"]).parents[1])
        if "SHIBUYA_SIDECAR_GATLING__HOME" in engine:
            homes.append(Path(engine["SHIBUYA_SIDECAR_GATLING__HOME"]))
        self._read_only = sandbox.read_only_paths(*homes)

    # --- the interface ---------------------------------------------------------------------

    def describe(self) -> tuple[bool, str]:
        home = Path(self._env["SHIBUYA_SIDECAR_JMETER__HOME"])
        launchers = list((home / "bin").glob("ApacheJMeter-*.jar"))
        plugins = sorted(p.name for p in (home / "lib" / "ext").glob("jmeter-plugins-*.jar"))
        sandbox_ = f"in a bubblewrap sandbox ({self.bwrap})" if self.bwrap else "unsandboxed"
        if not launchers:
            return False, f"no JMeter in {home}: shibuya dev jmeter installs it"
        return True, (f"engines {sandbox_}, {launchers[0].stem} in {home} with "
                      f"{', '.join(plugins) or 'no plugins'}")  # fmt: skip

    def deploy(self, deployment: Deployment) -> None:
        cid = _safe(deployment.collection_id)
        with self._locked(cid):
            self._deploy(cid, deployment)

    def _deploy(self, cid: str, deployment: Deployment) -> None:
        wanted = {(_safe(p.plan_id), i) for p in deployment.plans for i in range(p.engines)}
        extra = [e for e in self._records(cid) if (e.plan_id, e.index) not in wanted]
        self._stop([self._folder(cid, e.plan_id, e.index) for e in extra])
        for plan_id, index in sorted(wanted):
            folder = self._folder(cid, plan_id, index)
            if self._pid(folder) is None:
                self._start(deployment, plan_id, index, folder)

    def purge(self, collection_id: str, deployed_before_ms: int) -> int:
        cid = _safe(collection_id)
        with self._locked(cid):
            return self._purge(cid, deployed_before_ms)

    def _purge(self, cid: str, deployed_before_ms: int) -> int:
        doomed = [self._folder(cid, e.plan_id, e.index) for e in self._records(cid)
                  if e.deployed_ms < deployed_before_ms]  # fmt: skip
        self._stop(doomed)
        with contextlib.suppress(OSError):
            (self.root / cid).rmdir()  # only if nothing newer is left
        return len(doomed)

    def engines(self, collection_id: str) -> list[EngineInfo]:
        return self._records(_safe(collection_id))

    def collections(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if d.is_dir() and self._records(d.name))

    def kept(self, collection_id: str) -> list[str]:
        base = self.root / _safe(collection_id)
        folders = sorted(base.iterdir()) if base.is_dir() else []
        return [str(f) for f in folders if (f / KEPT).exists()]

    def logs(self, collection_id: str, plan_id: str, index: int, tail_bytes: int) -> str | None:
        path = self._folder(_safe(collection_id), _safe(plan_id), index) / "sidecar.log"
        try:
            with path.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - tail_bytes))
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def _locked(self, cid: str) -> Iterator[None]:
        """One deploy or purge of a collection at a time, across threads and processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f".{cid}.lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # --- engines ---------------------------------------------------------------------------

    def _folder(self, cid: str, plan_id: str, index: int) -> Path:
        return self.root / cid / f"{plan_id}-{index}"

    def _start(self, d: Deployment, plan_id: str, index: int, folder: Path) -> None:
        (folder / "work").mkdir(parents=True, exist_ok=True)
        if (folder / KEPT).exists():  # its sidecar publishes the kept results first
            log.warning("engine %s-%s of collection %s starts in a kept folder: %s",
                        plan_id, index, d.collection_id, (folder / KEPT).read_text())  # fmt: skip
            (folder / KEPT).unlink()
        folder.chmod(0o700)
        env = {
            **self._env,
            "SHIBUYA_SIDECAR_WORK_DIR": str(folder / "work"),
            "SHIBUYA_SIDECAR_ENGINE__COLLECTION_ID": d.collection_id,
            "SHIBUYA_SIDECAR_ENGINE__PLAN_ID": plan_id,
            "SHIBUYA_SIDECAR_ENGINE__ENGINE_INDEX": str(index),
            "SHIBUYA_SIDECAR_ENGINE_TOKEN": d.engine_token,
        }
        log_file = folder / "sidecar.log"
        try:
            if self.bwrap is None:
                pid = launcher = spawn(self.command, log=log_file, env=env)
            else:
                info = folder / "sandbox.json"
                info.unlink(missing_ok=True)
                argv = sandbox.argv(self.bwrap, self.command, folder, self._read_only)
                launcher = spawn(argv, log=log_file, env={**env, "HOME": str(folder)}, fd3=info)
                pid = sandbox.child_pid(info)
        except OSError as exc:
            raise SchedulerError(f"could not start engine {plan_id}-{index}: {exc}") from exc
        # The launcher (bubblewrap) is our child: reaped once the engine is stopped, not left
        # a zombie for every deploy.
        record = {"pid": pid, "launcher": launcher, "deployed_ms": int(time.time() * 1000),
                  "plan_id": plan_id, "index": index}  # fmt: skip
        tmp = folder / "engine.json.tmp"
        tmp.write_text(json.dumps(record))
        tmp.replace(folder / "engine.json")
        log.info("engine %s-%s of collection %s started: pid %d", plan_id, index,
                 d.collection_id, pid)  # fmt: skip

    def _records(self, cid: str) -> list[EngineInfo]:
        out = []
        base = self.root / cid
        for folder in sorted(base.iterdir()) if base.is_dir() else []:
            record = _read(folder)
            if record is None:
                continue
            out.append(EngineInfo(
                engine_id=f"{cid}-{record['plan_id']}-{record['index']}",
                plan_id=str(record["plan_id"]), index=int(record["index"]),
                phase="running" if self._pid(folder, record) is not None else "exited",
                deployed_ms=int(record["deployed_ms"]),
            ))  # fmt: skip
        return sorted(out, key=lambda e: (e.plan_id, e.index))

    def _pid(self, folder: Path, record: dict[str, Any] | None = None) -> int | None:
        """The engine's PID while that process is alive and still this engine's."""
        record = record or _read(folder)
        if record is None:
            return None
        pid = int(record["pid"])
        marker = f"SHIBUYA_SIDECAR_WORK_DIR={folder / 'work'}".encode()
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if marker in environ and alive(pid) else None

    def _stop(self, folders: list[Path]) -> None:
        """Stop the engines and remove their folders. SIGTERM: the sidecar stops JMeter and
        publishes what is left. One still publishing after the stop timeout (Kafka away) gets
        up to ``drain_s``; then SIGKILL to the whole session. A folder whose results are still
        not all published is kept, not deleted: it is named loudly (the log, :meth:`kept`), and
        the next deploy of that engine publishes them."""
        pids = {f: self._pid(f) for f in folders}
        launchers = [int((_read(f) or {}).get("launcher", 0)) for f in folders]
        for pid in filter(None, pids.values()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        running = {f: p for f, p in pids.items() if p is not None}
        wait_for(lambda: not any(alive(p) for p in running.values()), self.stop_timeout_s)
        publishing = {f: p for f, p in running.items() if alive(p) and _unpublished(f)}
        if publishing:
            log.warning("%d engines are still publishing results (Kafka away?); waiting up to "
                        "%g s", len(publishing), self.drain_s)  # fmt: skip
            wait_for(lambda: not any(alive(p) for p in publishing.values()), self.drain_s)
        for p in running.values():
            if alive(p):
                with contextlib.suppress(OSError):
                    os.killpg(os.getpgid(p), signal.SIGKILL)  # the engine's session
        wait_for(lambda: not any(alive(p) for p in running.values()), 10)
        wait_for(lambda: not any(alive(p) for p in launchers if p), 5)  # reaps ours
        for folder in folders:
            runs = _unpublished(folder)
            if not runs:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            (folder / "engine.json").unlink(missing_ok=True)  # no longer an engine
            kept = {"runs": runs, "kept_ms": int(time.time() * 1000)}
            (folder / KEPT).write_text(json.dumps(kept))
            log.error("engine folder %s KEPT: the results of runs %s were not all published "
                      "within %g s; the next deploy of this engine publishes them",
                      folder, ", ".join(runs), self.drain_s)  # fmt: skip


#: A file in a purged engine's folder kept because its results are not all published.
KEPT = "KEPT-UNPUBLISHED.json"


def _unpublished(folder: Path) -> list[str]:
    """Runs of the engine whose results the sidecar has not all published: it marks a run
    ended in ``runs/<run>/run.json`` only once every line is acknowledged
    (engine_sidecar/rundir.py)."""
    out = []
    for record in sorted((folder / "work" / "runs").glob("*/run.json")):
        with contextlib.suppress(OSError, ValueError):
            if not json.loads(record.read_text()).get("ended", False):
                out.append(record.parent.name)
    return out


def _read(folder: Path) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads((folder / "engine.json").read_text())
    except (OSError, ValueError):
        return None
    return record


def _safe(name: str) -> str:
    if not _SAFE.match(name):
        raise SchedulerError(f"not a safe name for a folder: {name!r}")
    return name
