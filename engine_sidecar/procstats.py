"""CPU and memory of the engine, read where the kernel keeps them (no central poller).

Sources, best first: the engine process itself (``/proc/<pid>``, with its children), the
container's cgroup v2 (``cpu.stat``, ``memory.current``), cgroup v1 (``cpuacct.usage``,
``memory.usage_in_bytes``). Each reader takes its root folder, so tests can point it at a tree of
their own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    memory_bytes: int


def process_usage(pid: int, proc: Path = Path("/proc")) -> Usage | None:
    """CPU time of ``pid`` and its waited-for children, and its resident memory."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        statm = (proc / str(pid) / "statm").read_text().split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17.
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return Usage(cpu_seconds=ticks / _TICK, memory_bytes=int(statm[1]) * _PAGE)


def cgroup_usage(root: Path = Path("/sys/fs/cgroup")) -> Usage | None:
    """The container's usage from cgroup v2, else v1; ``None`` outside a limited cgroup."""
    try:
        if (root / "cpu.stat").exists():  # v2
            usec = next(
                int(line.split()[1])
                for line in (root / "cpu.stat").read_text().splitlines()
                if line.startswith("usage_usec")
            )
            return Usage(usec / 1e6, int((root / "memory.current").read_text()))
        if (root / "cpuacct" / "cpuacct.usage").exists():  # v1
            ns = int((root / "cpuacct" / "cpuacct.usage").read_text())
            mem = int((root / "memory" / "memory.usage_in_bytes").read_text())
            return Usage(ns / 1e9, mem)
    except (FileNotFoundError, StopIteration, ValueError, PermissionError):
        return None
    return None


class CpuMeter:
    """Cores used between two readings (1.0 = one core busy all the time)."""

    def __init__(
        self, read: Callable[[], Usage | None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._read = read
        self._clock = clock
        self._last: tuple[float, Usage] | None = None

    def sample(self) -> tuple[float | None, int | None]:
        """``(cores since the last sample, memory bytes)``; cores is ``None`` the first time."""
        usage = self._read()
        if usage is None:
            return None, None
        now = self._clock()
        cores = None
        if self._last is not None and now > self._last[0]:
            cores = max(
                0.0, (usage.cpu_seconds - self._last[1].cpu_seconds) / (now - self._last[0])
            )
        self._last = (now, usage)
        return cores, usage.memory_bytes


def agent_usage(engine_pid: int | None) -> Usage | None:
    """Agent mode: the sidecar itself plus the JMeter it runs, if any (an engine that ended
    is in the sidecar's children's times). Not the cgroup: outside a container that is the
    whole machine's."""
    own = process_usage(os.getpid())
    engine = process_usage(engine_pid) if engine_pid is not None else None
    if own is None or engine is None:
        return own or engine
    return Usage(own.cpu_seconds + engine.cpu_seconds, own.memory_bytes + engine.memory_bytes)


def engine_usage(pid: int | None) -> Usage | None:
    """The engine process when known, else the container's cgroup, else nothing."""
    return process_usage(pid) if pid is not None else cgroup_usage()
