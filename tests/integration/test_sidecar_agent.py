"""Agent mode end to end: start and stop commands over the real broker, real JMeter, real files.

A small file server stands in for the control API (it checks the engine token); the sidecar
downloads the plan, rewrites it, runs JMeter, publishes every sample and reports each state.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from shibuya.dev import target
from shibuya.dev.procs import shibuya_process
from tests.support.agents import (
    TOKEN,
    agent_env,
    plan_file,
    send_commands,
    start_command,
    statuses_until,
    topics,
    transitions,
)
from tests.support.sidecars import (
    EXAMPLE_JMX,
    consume_published,
    reference_samples,
    stop_process,
)
from wire import (
    StopEngines,
)


def test_start_and_stop_commands_run_jmeter_and_publish_everything(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    file_server: tuple[str, dict[str, bytes], list[str]],
) -> None:
    base, files, refused = file_server
    commands, results, status = topics(kafka_bootstrap, unique)
    plan = [
        plan_file(base, files, "plan.jmx", EXAMPLE_JMX.read_bytes()),
        plan_file(base, files, "users.csv", b"id,name\n1,a\n2,b\n"),
    ]
    work = tmp_path / "work"
    with target.serve(fail_every=25) as target_port:
        env = agent_env(kafka_bootstrap, unique, work, target_port)
        log = tmp_path / "sidecar.log"
        sidecar = shibuya_process("sidecar", "run", env=env, log=log)
        try:
            # 1. A run that ends on its own after its duration.
            first = start_command("cmd-1", "run-1", plan, duration_s=3)
            asyncio.run(send_commands(kafka_bootstrap, commands, first))
            statuses = asyncio.run(
                statuses_until(
                    kafka_bootstrap,
                    status,
                    lambda ss: transitions(ss, "cmd-1")[-1:] == ["finished"],
                )
            )
            assert transitions(statuses, "cmd-1") == ["preparing", "running", "finished"]
            assert statuses[-1].exit_code == 0

            # 2. The same command again has no second effect; a stop ends a long run early.
            long_run = start_command("cmd-2", "run-2", plan, duration_s=120)
            stop = StopEngines(
                command_id="cmd-3",
                collection_id="coll-1",
                run_id="run-2",
                reason="stopped by a test",
                issued_ms=int(time.time() * 1000),
            )
            asyncio.run(send_commands(kafka_bootstrap, commands, first, long_run))
            asyncio.run(  # stop it mid-run: once samples of it are published
                statuses_until(
                    kafka_bootstrap,
                    status,
                    lambda ss: any(s.command_id == "cmd-2" and s.samples_published > 0 for s in ss),
                )
            )
            asyncio.run(send_commands(kafka_bootstrap, commands, stop))
            statuses = asyncio.run(
                statuses_until(
                    kafka_bootstrap,
                    status,
                    lambda ss: transitions(ss, "cmd-3")[-1:] in (["finished"], ["failed"]),
                )
            )
            assert transitions(statuses, "cmd-1") == ["preparing", "running", "finished"]
            assert transitions(statuses, "cmd-3") == ["stopping", "finished"]
            # JMeter took the stop-test request and ended the 120 s run itself (exit 0);
            # a missed request would end in SIGTERM after 30 s, with exit code 143.
            assert statuses[-1].exit_code == 0
            assert "stopped, exit" not in statuses[-1].detail
        finally:
            assert stop_process(sidecar) == 0, log.read_text()

    assert refused == []
    # The plan was rewritten for the run, and every sample of both runs was published.
    rewritten = (work / "runs" / "run-1" / "plan.rewritten.jmx").read_text()
    assert '<stringProp name="ThreadGroup.duration">3</stringProp>' in rewritten
    for run_id in ("run-1", "run-2"):
        jtl = work / "runs" / run_id / "results.jtl"
        expected = reference_samples(jtl)
        assert sum(expected.values()) > 0
    both = reference_samples(work / "runs" / "run-1" / "results.jtl") + reference_samples(
        work / "runs" / "run-2" / "results.jtl"
    )
    got = asyncio.run(consume_published(kafka_bootstrap, results, sum(both.values())))
    assert got.samples == both
    assert {run for run in _runs_of(got.batches)} == {"run-1", "run-2"}


def _runs_of(batches: dict[tuple[str, str, int], bytes]) -> set[str]:
    return {run_id for run_id, _, _ in batches}


@pytest.mark.parametrize(
    ("token", "served", "why"),
    [
        (TOKEN, b"<tampered/>", ["announced", "SHA-256"]),
        ("she_not-this-one", None, ["HTTP Error 401", "SHIBUYA_SIDECAR_ENGINE_TOKEN"]),
    ],
    ids=["tampered", "wrong-engine-token"],
)
def test_a_file_it_cannot_trust_or_fetch_fails_the_run_saying_why(
    token: str,
    served: bytes | None,
    why: list[str],
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    file_server: tuple[str, dict[str, bytes], list[str]],
) -> None:
    base, files, _ = file_server
    commands, _, status = topics(kafka_bootstrap, unique)
    good = plan_file(base, files, "plan.jmx", EXAMPLE_JMX.read_bytes())
    if served is not None:
        files["plan.jmx"] = served
    env = {**agent_env(kafka_bootstrap, unique, tmp_path, 0), "SHIBUYA_SIDECAR_ENGINE_TOKEN": token}
    sidecar = shibuya_process("sidecar", "run", env=env, log=tmp_path / "sidecar.log")
    try:
        cid = f"cmd-{uuid.uuid4().hex[:6]}"
        asyncio.run(
            send_commands(kafka_bootstrap, commands, start_command(cid, "run-x", [good], 5))
        )
        statuses = asyncio.run(
            statuses_until(
                kafka_bootstrap, status, lambda ss: transitions(ss, cid)[-1:] == ["failed"]
            )
        )
        assert all(w in statuses[-1].detail for w in why), statuses[-1].detail
    finally:
        assert stop_process(sidecar) == 0


def test_a_sidecar_killed_during_a_run_picks_it_up_again(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    file_server: tuple[str, dict[str, bytes], list[str]],
) -> None:
    base, files, _ = file_server
    commands, results, status = topics(kafka_bootstrap, unique)
    plan = [plan_file(base, files, "plan.jmx", EXAMPLE_JMX.read_bytes())]
    work = tmp_path / "work"
    with target.serve(fail_every=25) as target_port:
        env = agent_env(kafka_bootstrap, unique, work, target_port)
        log = tmp_path / "sidecar.log"

        def start_sidecar() -> subprocess.Popen[bytes]:
            return shibuya_process("sidecar", "run", env=env, log=log)

        sidecar = start_sidecar()
        try:
            asyncio.run(
                send_commands(kafka_bootstrap, commands, start_command("cmd-k", "run-k", plan, 8))
            )
            asyncio.run(
                statuses_until(
                    kafka_bootstrap,
                    status,
                    lambda ss: any(s.command_id == "cmd-k" and s.samples_published > 0 for s in ss),
                )
            )
            sidecar.send_signal(signal.SIGKILL)  # JMeter, its child, goes on writing
            sidecar.wait()
            sidecar = start_sidecar()
            statuses = asyncio.run(
                statuses_until(
                    kafka_bootstrap,
                    status,
                    lambda ss: transitions(ss, "cmd-k")[-1:] == ["finished"],
                )
            )
            assert "after a sidecar restart" in statuses[-1].detail
            assert (
                "run run-k was in progress when the sidecar stopped; its engine (jmeter) still runs"
                in (log.read_text())
            )
        finally:
            assert stop_process(sidecar) == 0, log.read_text()

    expected = reference_samples(work / "runs" / "run-k" / "results.jtl")
    got = asyncio.run(consume_published(kafka_bootstrap, results, sum(expected.values())))
    assert got.samples == expected


def test_a_task_that_fails_stops_the_sidecar_with_the_task_named(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    file_server: tuple[str, dict[str, bytes], list[str]],
) -> None:
    """Its work folder removed under it, a sidecar cannot remember the commands it acts on: it
    must not go on heartbeating as if it could."""
    base, files, _ = file_server
    commands, _, status = topics(kafka_bootstrap, unique)
    work = tmp_path / "work"
    log = tmp_path / "sidecar.log"
    env = agent_env(kafka_bootstrap, unique, work, 1)
    sidecar = shibuya_process("sidecar", "run", env=env, log=log)
    try:
        asyncio.run(statuses_until(kafka_bootstrap, status, lambda ss: len(ss) > 0))
        shutil.rmtree(work)
        plan = [plan_file(base, files, "plan.jmx", EXAMPLE_JMX.read_bytes())]
        asyncio.run(send_commands(kafka_bootstrap, commands, start_command("c", "r", plan, 3)))
        assert sidecar.wait(timeout=60) == 1, log.read_text()
    finally:
        if sidecar.poll() is None:
            stop_process(sidecar)
    text = log.read_text()
    assert "the sidecar's commands task failed: FileNotFoundError" in text, text
    assert "Traceback" in text  # the cause, for whoever reads the log
