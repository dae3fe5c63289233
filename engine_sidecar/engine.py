"""The JMeter process: start non-GUI, stop gracefully (its stop-test port), then by force."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JMeterConfig:
    home: Path
    heap: str = "512m"
    stop_port: int = 4445
    properties: Mapping[str, str] | None = None
    """Extra ``-J`` properties (e.g. the target's host and port)."""


class JMeterProcess:
    def __init__(self, proc: asyncio.subprocess.Process, config: JMeterConfig) -> None:
        self._proc = proc
        self._config = config

    @property
    def pid(self) -> int:
        return self._proc.pid

    @classmethod
    async def start(
        cls, config: JMeterConfig, *, jmx: Path, jtl: Path, log_file: Path
    ) -> JMeterProcess:
        [launcher] = (config.home / "bin").glob("ApacheJMeter-*.jar")
        props = [f"-J{k}={v}" for k, v in (config.properties or {}).items()]
        argv = [
            "java",
            f"-Xms{config.heap}",
            f"-Xmx{config.heap}",
            "-jar",
            str(launcher),
            "-n",
            "-t",
            str(jmx),
            "-l",
            str(jtl),
            "-j",
            str(log_file),
            f"-Jjmeterengine.nongui.port={config.stop_port}",
            f"-Jjmeterengine.nongui.maxport={config.stop_port}",
            *props,
        ]
        with (log_file.with_suffix(".out")).open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=jmx.parent,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        log.info("JMeter started (pid %d): %s", proc.pid, jmx.name)
        return cls(proc, config)

    async def wait(self) -> int:
        return await self._proc.wait()

    async def stop(self, grace_s: float = 30) -> int:
        """Ask JMeter to stop the test (samples in flight end), then SIGTERM, then SIGKILL.

        The request goes to JMeter's UDP stop-test port, which it opens only once the test runs:
        it is repeated every two seconds of the grace period, so an early stop is not lost.
        """
        deadline = asyncio.get_running_loop().time() + grace_s
        while self._proc.returncode is None and asyncio.get_running_loop().time() < deadline:
            await self._send_stop_test()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    return await self._proc.wait()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self._proc.returncode is not None:
                break
            log.warning("JMeter did not stop in %.0fs; sending %s", grace_s, sig.name)
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self._proc.wait()
        return await self._proc.wait()

    async def _send_stop_test(self) -> None:
        [launcher] = (self._config.home / "bin").glob("ApacheJMeter-*.jar")
        client = await asyncio.create_subprocess_exec(
            "java",
            "-cp",
            str(launcher),
            "org.apache.jmeter.util.ShutdownClient",
            "StopTestNow",
            str(self._config.stop_port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await client.wait()
