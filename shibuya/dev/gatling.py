"""Gatling 3.15.1 from Maven Central (the jars of ``gatling-charts-highcharts``), and the
sidecar's launcher compiled against them (``engine_sidecar/gatling/ShibuyaGatling.java``),
cached by version::

    <cache>/gatling-3.15.1-launcher-<release>/lib/*.jar    Gatling and its dependencies
    <cache>/gatling-3.15.1-launcher-<release>/launcher/    ShibuyaGatling.class, logback.xml

Compiling needs a JDK (``javac``); so does compiling a plan's simulation on the engines.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import engine_sidecar
from shibuya.dev.maven import COMPLETE_MARKER, cache_root, fetch
from shibuya.dev.procs import ServiceError

GATLING_VERSION = "3.15.1"
LAUNCHER_RELEASE = 3
HOME_NAME = f"gatling-{GATLING_VERSION}-launcher-{LAUNCHER_RELEASE}"
SOURCES = Path(engine_sidecar.__file__).with_name("gatling")


def install(*, quiet: bool = True) -> Path:
    """Gatling's home with the launcher, made unless already cached."""
    home = cache_root() / HOME_NAME
    if (home / COMPLETE_MARKER).exists():
        return home
    if shutil.which("javac") is None:
        raise ServiceError("installing Gatling's launcher needs `javac` (a JDK 17+) on PATH")
    jars = fetch(f"Gatling {GATLING_VERSION}",
                 [("io.gatling.highcharts", "gatling-charts-highcharts", GATLING_VERSION)],
                 cache_root() / f"gatling-{GATLING_VERSION}", quiet=quiet)  # fmt: skip
    with tempfile.TemporaryDirectory(dir=cache_root()) as tmp:
        staged = Path(tmp) / "home"
        shutil.copytree(jars, staged / "lib")
        (staged / "lib" / COMPLETE_MARKER).unlink(missing_ok=True)
        launcher = staged / "launcher"
        classpath = ":".join(str(p) for p in sorted((staged / "lib").glob("*.jar")))
        result = subprocess.run(["javac", "-d", str(launcher), "-cp", classpath,
                                 str(SOURCES / "ShibuyaGatling.java")],
                                capture_output=True, text=True, check=False)  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"the Gatling launcher did not compile:\n{result.stderr[-3000:]}")
        shutil.copy2(SOURCES / "logback.xml", launcher / "logback.xml")
        (staged / COMPLETE_MARKER).write_text(f"Gatling {GATLING_VERSION}, launcher "
                                              f"{LAUNCHER_RELEASE}\n")  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)
        staged.rename(home)
    return home
