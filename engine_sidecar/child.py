"""An engine's process, whatever the engine: one we started (our child), or one we adopted after
a sidecar restart (by PID, recognised by a marker in its command line, so a reused PID is not
taken for ours), and how it is ended by signals when asking nicely did not do."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Self

log = logging.getLogger(__name__)


class EngineChild:
    name = "engine"

    def __init__(self, proc: asyncio.subprocess.Process | None, pid: int, marker: str) -> None:
        self._proc = proc
        self.pid = pid
        self._marker = marker

    @classmethod
    def running(cls, pid: int, results: Path) -> Self | None:
        """The engine still writing ``results`` under ``pid`` (a sidecar restarted), if any."""
        engine = cls(None, pid, str(results))
        return engine if engine.alive() else None

    @staticmethod
    def cmdline(pid: int) -> str | None:
        """The command line of ``pid``, arguments separated by NULs; ``None`` if it is gone."""
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return None

    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.returncode is None
        cmdline = self.cmdline(self.pid)
        return cmdline is not None and self._marker in cmdline

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    async def wait(self) -> int | None:
        """Its exit code; ``None`` for an adopted process (not our child: no code to read)."""
        if self._proc is not None:
            return await self._proc.wait()
        while self.alive():
            await asyncio.sleep(0.5)
        return None

    async def stop(self, grace_s: float = 30) -> int | None:
        """SIGTERM, then SIGKILL, ``grace_s`` apart (engines with a gentler way override)."""
        return await self.signal_stop(grace_s, (signal.SIGTERM, signal.SIGKILL))

    async def signal_stop(self, grace_s: float, signals: tuple[signal.Signals, ...]) -> int | None:
        for sig in signals:
            if not self.alive():
                break
            log.info("sending %s to %s (pid %d)", sig.name, self.name, self.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self.wait()
        return await self.wait()


def engine_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """An engine's environment: a plan's code runs in the engine, so it gets none of the
    sidecar's settings (its engine token, its Kafka credential); then the run's variables."""
    own = {k: v for k, v in os.environ.items() if not k.startswith("SHIBUYA_")}
    return {**own, **(extra or {})}
