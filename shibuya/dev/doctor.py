"""``shibuya doctor``: every dependency of a run, checked, with what to do when one fails."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from shibuya import client
from shibuya.dev import stack
from shibuya.dev.jmeter import HOME_NAME, JMETER_VERSION
from shibuya.dev.maven import cache_root
from shibuya.dev.procs import port_open

#: Partitions the stack's worker declares (the worker's default).
PARTITIONS = 8


_FIXES = {
    "database": "check SHIBUYA_API_DATABASE__URL and that the database runs",
    "kafka": "check SHIBUYA_API_KAFKA__BOOTSTRAP and that the broker runs (shibuya up starts one)",
    "clickhouse": "check SHIBUYA_API_CLICKHOUSE__DSN, or that no other process holds the "
    "embedded engine's folder",
    "scheduler": "shibuya dev jmeter (the local scheduler's JMeter), or the scheduler's settings",
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def checks() -> Iterator[Check]:
    folder = stack.find()
    state = stack.Stack(folder).state() if folder else {}
    yield from _api()
    if folder is None:
        yield Check("stack", True, "no local stack (.shibuya/stack.json): the API is SHIBUYA_URL's")
    else:
        yield from _stack(stack.Stack(folder), state)
    yield from _engines()


def _api() -> Iterator[Check]:
    with client.connect() as c:
        where = str(c.base_url)
        try:
            ready = c.get("/readyz").status_code == 200
        except httpx.HTTPError as exc:
            yield Check("API", False, f"{where} does not answer ({type(exc).__name__})",
                        "start the stack: shibuya up (or set SHIBUYA_URL)")  # fmt: skip
            return
        yield Check("API", ready, f"{where} {'ready' if ready else 'not ready (database)'}",
                    "see the API's log (.shibuya/logs/api.log)")  # fmt: skip
        me = c.get("/api/me")
        if me.status_code != 200:
            yield Check("token", False, f"{me.status_code} from /api/me",
                        "set SHIBUYA_TOKEN (shibuya api add-user prints one)")  # fmt: skip
            return
        body = me.json()
        yield Check("token", True, f"you are {body['name']}, groups {', '.join(body['groups'])}")
        health = c.get("/api/health", timeout=60)
        if health.status_code != 200:
            yield Check("API's dependencies", False, f"{health.status_code} from /api/health",
                        "an API older than this command: upgrade it")  # fmt: skip
            return
        for dep in health.json():
            fix = _FIXES.get(dep["name"].split()[0], "see the API's log")
            yield Check(f"API → {dep['name']}", dep["ok"], dep["detail"], fix)


def _stack(s: stack.Stack, state: dict[str, object]) -> Iterator[Check]:
    host, _, port = str(state.get("bootstrap", "127.0.0.1:9092")).rpartition(":")
    up = port_open(host, int(port))
    yield Check("Kafka", up, f"{host}:{port} {'answers' if up else 'does not answer'}",
                "shibuya down && shibuya up")  # fmt: skip
    pids = s.running()
    for name, pid in pids.items():
        yield Check(name, pid is not None, f"pid {pid}" if pid else "not running",
                    f"see .shibuya/logs/{name}.log; then shibuya down && shibuya up")  # fmt: skip
    if pids.get("worker"):
        owned = _owned(int(str(state.get("worker_metrics_port", 0))))
        yield Check(
            "stream worker partitions",
            owned == PARTITIONS,
            f"owns {owned} of {PARTITIONS} results partitions",
            "wait a few seconds (it joins its group), else see .shibuya/logs/worker.log",
        )


def _owned(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("shibuya_owned_partitions "):
            return int(float(line.split()[1]))
    return 0


def _engines() -> Iterator[Check]:
    home = cache_root() / HOME_NAME
    yield Check("JMeter", home.is_dir(), f"{JMETER_VERSION} and plugins in {home}" if home.is_dir()
                else "not installed", "shibuya dev jmeter")  # fmt: skip
    java = shutil.which("java")
    version = ""
    if java:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        version = (out.stderr.splitlines() or [""])[0]
    yield Check(
        "Java", bool(java), version or "not found", "apt-get install openjdk-17-jre-headless"
    )
    bwrap = shutil.which("bwrap")
    yield Check("engine sandbox", bool(bwrap), f"bubblewrap at {bwrap}" if bwrap else
                "bubblewrap not found: the local scheduler refuses to start engines",
                "apt-get install bubblewrap")  # fmt: skip
