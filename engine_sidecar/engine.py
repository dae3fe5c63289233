"""The JMeter process: start non-GUI, stop gracefully (its stop-test port), then by force."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine_sidecar.child import EngineChild, engine_env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JMeterConfig:
    home: Path
    heap: str = "512m"
    stop_port: int = 0
    """JMeter's UDP stop-test port; 0 picks a free one per run (engines may share a host)."""
    properties: Mapping[str, str] | None = None
    """Extra ``-J`` properties (e.g. the target's host and port)."""


class JMeterProcess(EngineChild):
    """A JMeter we started, or one we adopted after a restart."""

    name = "JMeter"

    def __init__(
        self,
        config: JMeterConfig,
        proc: asyncio.subprocess.Process | None,
        pid: int,
        marker: str,
        stop_port: int,
    ) -> None:
        # marker: in its command line, the results file
        super().__init__(proc, pid, marker)
        self._config = config
        self.stop_port = stop_port

    @classmethod
    def adopt(cls, config: JMeterConfig, pid: int, jtl: Path) -> JMeterProcess | None:
        """The JMeter still writing ``jtl`` under ``pid``, if it is alive."""
        cmdline = cls.cmdline(pid)
        if cmdline is None:
            return None
        port = re.search(r"-Jjmeterengine\.nongui\.port=(\d+)", cmdline)
        jmeter = cls(config, None, pid, str(jtl), int(port.group(1)) if port else 0)
        return jmeter if jmeter.alive() else None

    @classmethod
    async def start(
        cls, config: JMeterConfig, *, jmx: Path, jtl: Path, log_file: Path,
        properties: Path | None = None, env: Mapping[str, str] | None = None,
    ) -> JMeterProcess:  # fmt: skip
        """JMeter on ``jmx``: the sidecar's ``-J`` properties, then the run's ``properties``
        file (``-q``, so they win and stay off the command line), then what the sidecar needs
        whatever they say (its stop port, CSV results)."""
        [launcher] = (config.home / "bin").glob("ApacheJMeter-*.jar")
        props = [f"-J{k}={v}" for k, v in (config.properties or {}).items()]
        stop_port = config.stop_port or _free_udp_port()
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
            *props,
            *(["-q", str(properties)] if properties is not None else []),
            # The plan's own jars, where the server takes them: on the classpath, and searched
            # for test elements and functions (JMeter's launcher reads these two itself).
            *(
                [f"-Jsearch_paths={jmx.parent}", f"-Juser.classpath={jmx.parent}"]
                if any(jmx.parent.glob("*.jar"))
                else []
            ),
            f"-Jjmeterengine.nongui.port={stop_port}",
            f"-Jjmeterengine.nongui.maxport={stop_port}",
            # CSV, whatever JMETER_HOME's properties say: the reader refuses XML results.
            "-Jjmeter.save.saveservice.output_format=csv",
        ]
        with (log_file.with_suffix(".out")).open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=jmx.parent,
                env=engine_env(env),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        log.info("JMeter started (pid %d): %s", proc.pid, jmx.name)
        return cls(config, proc, proc.pid, str(jtl), stop_port)

    async def stop(self, grace_s: float = 30) -> int | None:
        """Ask JMeter to stop the test (samples in flight end), then SIGTERM, then SIGKILL.

        The request goes to JMeter's UDP stop-test port, which it opens only once the test runs:
        it is repeated every two seconds of the grace period, so an early stop is not lost.
        """
        deadline = asyncio.get_running_loop().time() + grace_s
        while self.alive() and asyncio.get_running_loop().time() < deadline:
            await self._send_stop_test()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    return await self.wait()
        if self.alive():
            log.warning("JMeter did not stop in %.0fs", grace_s)
        return await self.signal_stop(grace_s, (signal.SIGTERM, signal.SIGKILL))

    async def _send_stop_test(self) -> None:
        [launcher] = (self._config.home / "bin").glob("ApacheJMeter-*.jar")
        client = await asyncio.create_subprocess_exec(
            "java",
            "-cp",
            str(launcher),
            "org.apache.jmeter.util.ShutdownClient",
            "StopTestNow",
            str(self.stop_port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await client.wait()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
