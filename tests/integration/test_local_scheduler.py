"""The local scheduler's purge with engines that still publish: it waits for them up to its
drain limit, and keeps — loudly — the folders of those it could not drain.

The engines here are small stand-ins at the scheduler's own interface (a process in the engine's
folder, the sidecar's ``runs/<run>/run.json``): one idle, one that finishes publishing two
seconds after SIGTERM, one stuck with Kafka away. The real sidecar's side of it is
``tests/integration/test_broker_outage.py``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from control.schedulers import Deployment, PlanEngines
from control.schedulers.local import KEPT, LocalScheduler
from control.schedulers.processes import alive
from control.settings import KafkaSettings
from tests.support.waiting import wait_until

#: An engine: it marks run r1 in progress, and on SIGTERM exits at once (index 0), marks the
#: run ended two seconds later and exits (1: it drained), or goes on (2: Kafka stays away).
ENGINE = """
import json, os, pathlib, signal, sys, time
work = pathlib.Path(os.environ["SHIBUYA_SIDECAR_WORK_DIR"])
index = int(os.environ["SHIBUYA_SIDECAR_ENGINE__ENGINE_INDEX"])
record = work / "runs" / "r1" / "run.json"
record.parent.mkdir(parents=True, exist_ok=True)
record.write_text(json.dumps({"run_id": "r1", "ended": index == 0}))
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(time.monotonic()))
while not stopping or index:
    time.sleep(0.05)
    if stopping and index == 1 and time.monotonic() - stopping[0] > 2:
        record.write_text(json.dumps({"run_id": "r1", "ended": True}))
        sys.exit(0)
"""


def test_a_purge_waits_for_engines_still_publishing_and_keeps_what_it_could_not_drain(
    tmp_path: Path,
) -> None:
    scheduler = LocalScheduler(tmp_path / "engines", kafka=KafkaSettings(), jmeter_home=tmp_path,
                               stop_timeout_s=1,
                               drain_s=5, command=[sys.executable, "-c", ENGINE])  # fmt: skip
    scheduler.deploy(Deployment("7", "1", [PlanEngines("p", 3)]))
    engines = scheduler.engines("7")
    wait_until("three engines in a run", lambda: all(
        (tmp_path / "engines" / "7" / f"p-{e.index}" / "work/runs/r1/run.json").exists()
        for e in engines), 30)  # fmt: skip
    pids = [json.loads((tmp_path / "engines/7" / f"p-{i}/engine.json").read_text())["pid"]
            for i in range(3)]  # fmt: skip
    t0 = time.monotonic()
    assert scheduler.purge("7", int(time.time() * 1000) + 1) == 3
    waited = time.monotonic() - t0
    assert 5 <= waited < 20  # the stuck one had its drain time, no more
    assert not any(alive(p) for p in pids)
    folders = sorted(p.name for p in (tmp_path / "engines" / "7").iterdir() if p.is_dir())
    assert folders == ["p-2"]  # the idle one and the one that drained are gone
    assert scheduler.kept("7") == [str(tmp_path / "engines" / "7" / "p-2")]
    assert json.loads((tmp_path / "engines/7/p-2" / KEPT).read_text())["runs"] == ["r1"]
    assert scheduler.engines("7") == []  # no longer an engine

    # The next deploy starts that engine in its kept folder, where its sidecar publishes them.
    scheduler.deploy(Deployment("7", "1", [PlanEngines("p", 3)]))
    assert [e.index for e in scheduler.engines("7")] == [0, 1, 2]
    assert scheduler.kept("7") == []
    scheduler.stop_timeout_s, scheduler.drain_s = 0.5, 0.5
    scheduler.purge("7", int(time.time() * 1000) + 1)
