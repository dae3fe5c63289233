"""JMeter's XML results, written by JMeter itself, are refused at once with how to switch to CSV,
and every line of the file is counted as not read — and the sidecar asks JMeter for CSV, so its
own engines never write XML whatever JMETER_HOME's properties say."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine_sidecar.engine import JMeterConfig, JMeterProcess
from engine_sidecar.jtl_format import XML_REFUSED
from engine_sidecar.plan import rewrite_jmx
from engine_sidecar.settings import OUTPUT_FORMAT, JMeterSettings
from shibuya.dev import jmeter, target
from shibuya.dev.jmeter import launcher
from shibuya.dev.main_job import samples_in
from tests.unit.sidecar.test_reader import _read

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).parents[2] / "examples" / "two-samplers.jmx"


def _jmeter_writes(tmp_path: Path, port: int, home: Path) -> Path:
    """Results of the sidecar's JMeter (:class:`JMeterProcess`) with JMETER_HOME ``home``."""
    jmx = tmp_path / "plan.jmx"
    jmx.write_bytes(rewrite_jmx(EXAMPLE.read_bytes(), threads=2, ramp_up_s=0, duration_s=2))
    jtl = tmp_path / "results.jtl"
    config = JMeterConfig(home, heap="256m", properties={"target.port": str(port)})

    async def run() -> int | None:
        process = await JMeterProcess.start(config, jmx=jmx, jtl=jtl, log_file=tmp_path / "j.log")
        return await asyncio.wait_for(process.wait(), 120)

    assert asyncio.run(run()) == 0, (tmp_path / "j.log").read_text()[-2000:]
    return jtl


def test_xml_results_jmeter_wrote_are_refused_and_counted(tmp_path: Path) -> None:
    """JMeter itself, run as a user would (the sidecar's JMeter always writes CSV: below)."""
    jmx, jtl = tmp_path / "plan.jmx", tmp_path / "results.jtl"
    jmx.write_bytes(rewrite_jmx(EXAMPLE.read_bytes(), threads=2, ramp_up_s=0, duration_s=2))
    with target.serve() as port:
        argv = ["java", "-Xmx256m", "-jar", str(launcher(jmeter.install())), "-n", "-t", str(jmx),
                "-l", str(jtl), "-j", str(tmp_path / "j.log"), f"-Jtarget.port={port}",
                f"-J{OUTPUT_FORMAT}=xml"]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    lines = jtl.read_bytes().count(b"\n")
    assert jtl.read_bytes().startswith(b"<?xml")
    assert lines > 10
    reader, samples, told = _read(jtl)
    assert (samples, reader.errors.count, sum(told)) == (0, lines, lines)
    assert reader.errors.unreadable == XML_REFUSED
    with pytest.raises(ValidationError, match="reads CSV results only"):
        JMeterSettings(properties={OUTPUT_FORMAT: "xml"})


def test_the_sidecar_s_jmeter_writes_csv_whatever_its_home_says(tmp_path: Path) -> None:
    """A JMETER_HOME whose user.properties asks for XML: the cached install linked, file by
    file, with a user.properties of its own (without the sidecar's -J, JMeter writes XML)."""
    real, home = jmeter.install(), tmp_path / "jmeter"
    (home / "bin").mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name != "bin":
            (home / entry.name).symlink_to(entry)
    for entry in (real / "bin").iterdir():
        if entry.suffix == ".jar":  # a copy: JMeter finds its home from the launcher's real path
            shutil.copy(entry, home / "bin" / entry.name)
        elif entry.name != "user.properties":
            (home / "bin" / entry.name).symlink_to(entry)
    (home / "bin" / "user.properties").write_text(f"{OUTPUT_FORMAT}=xml\n")
    with target.serve() as port:
        jtl = _jmeter_writes(tmp_path, port, home)
    reader, samples, _ = _read(jtl)
    assert (reader.errors.count, samples) == (0, samples_in(jtl))
    assert samples > 0
