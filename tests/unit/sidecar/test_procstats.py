"""Engine CPU and memory from /proc and from cgroup v1 and v2 trees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine_sidecar.procstats import CpuMeter, Usage, agent_usage, cgroup_usage, process_usage


def test_process_usage_of_a_real_process() -> None:
    usage = process_usage(os.getpid())
    assert usage is not None
    assert usage.cpu_seconds > 0
    rss_kb = int(
        next(
            line.split()[1]
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmRSS")
        )
    )
    assert abs(usage.memory_bytes - rss_kb * 1024) < 64 * 2**20
    assert process_usage(2**22 + 12345) is None  # no such process


def test_agent_usage_is_the_sidecar_plus_its_engine_not_the_machine() -> None:
    own = process_usage(os.getpid())
    idle = agent_usage(None)
    assert own is not None
    assert idle is not None
    assert abs(idle.memory_bytes - own.memory_bytes) < 16 * 2**20
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)  # fmt: skip
    try:
        engine = process_usage(child.pid)
        busy = agent_usage(child.pid)
        assert engine is not None
        assert busy is not None
        assert abs(busy.memory_bytes - own.memory_bytes - engine.memory_bytes) < 16 * 2**20
    finally:
        child.communicate(b"")
    assert agent_usage(2**22 + 12345) is not None  # an engine gone: the sidecar alone


def test_cgroup_v2(tmp_path: Path) -> None:
    (tmp_path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (tmp_path / "memory.current").write_text("104857600\n")
    assert cgroup_usage(tmp_path) == Usage(2.5, 104857600)


def test_cgroup_v1(tmp_path: Path) -> None:
    (tmp_path / "cpuacct").mkdir()
    (tmp_path / "memory").mkdir()
    (tmp_path / "cpuacct" / "cpuacct.usage").write_text("1500000000\n")
    (tmp_path / "memory" / "memory.usage_in_bytes").write_text("2048\n")
    assert cgroup_usage(tmp_path) == Usage(1.5, 2048)


def test_no_cgroup(tmp_path: Path) -> None:
    assert cgroup_usage(tmp_path) is None


def test_cpu_meter_reports_cores_between_samples() -> None:
    readings = iter([Usage(10.0, 1), Usage(11.5, 2), Usage(11.5, 3)])
    clock = iter([100.0, 102.0, 103.0])
    meter = CpuMeter(lambda: next(readings), clock=lambda: next(clock))
    assert meter.sample() == (None, 1)
    assert meter.sample() == (0.75, 2)  # 1.5 CPU-seconds in 2 s
    assert meter.sample() == (0.0, 3)
