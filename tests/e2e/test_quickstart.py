"""docs/quickstart.md, run as written: every command of its `bash` blocks on this machine, in
order, as one script — so the quickstart cannot rot. The stack keeps its state in a temporary
folder (``SHIBUYA_HOME``) and serves on free ports; the commands are the document's."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shibuya.dev.procs import free_port, port_open
from tests.support.junit import junit_schema

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "quickstart.md"


def commands() -> str:
    """The `bash` blocks of the local part of the quickstart, in order."""
    text = QUICKSTART.read_text()
    local = text[text.index("## On this machine") : text.index("## On Kubernetes")]
    return "\n".join(re.findall(r"```bash\n(.*?)```", local, re.S))


def test_the_quickstart_has_the_commands_a_user_needs() -> None:
    script = commands()
    for command in ("./scripts/bootstrap", "shibuya up", "shibuya doctor", "shibuya ui",
                    "shibuya run ", "shibuya apply -f", "shibuya runs", "shibuya report",
                    "shibuya compare", "shibuya down"):  # fmt: skip
        assert command in script


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    assert not port_open("127.0.0.1", 8000), "the quickstart's stand-in service needs port 8000"
    reports = ROOT / "reports"  # where the quickstart writes the files a CI job keeps
    assert not reports.exists(), f"{reports} is the quickstart's; move it away"
    home = tmp_path / ".shibuya"
    env = {
        **os.environ,
        "SHIBUYA_HOME": str(home),
        "SHIBUYA_STACK_PORT": str(free_port()),
        "SHIBUYA_STACK_BOOTSTRAP": f"127.0.0.1:{free_port()}",  # a broker of its own, as new
        "COLUMNS": "100",
    }
    for name in ("SHIBUYA_URL", "SHIBUYA_TOKEN"):
        env.pop(name, None)
    # Whatever happens, the stack and the stand-in service go with the test.
    cleanup = "kill $(jobs -p) 2>/dev/null || true; shibuya down >/dev/null 2>&1 || true"
    script = f"trap '{cleanup}' EXIT\n" + commands()
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=840)
    finally:  # interrupted: the script's processes, then the stack
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        subprocess.run([sys.executable, "-m", "shibuya", "down"], env=env, check=False,
                       capture_output=True)  # fmt: skip
        kept = {p.name: p.read_bytes() for p in reports.glob("*")}
        shutil.rmtree(reports, ignore_errors=True)
    assert proc.returncode == 0, out[-6000:]
    assert not (home / "stack.json").exists()  # shibuya down
    # doctor: every check passed
    assert "FAIL" not in out
    assert "ok   stream worker partitions: owns 8 of 8 results partitions" in out
    # the web UI: where, and with which token (its file, never the token itself)
    assert re.search(rf"Web UI: http://127\.0\.0\.1:\d+/ui/ — log in with the API token in "
                     rf"{re.escape(str(home))}/token", out), out  # fmt: skip
    # the one-shot run: its plan and collection created, a verdict, engines purged after
    assert "project scratch: created" in out
    assert "scratch/two-samplers: 2 engines purged" in out
    # apply: what a dry run would do, then done once, then nothing
    assert "would change: project shop: created (group local)" in out
    assert "would change: plan browse: two-samplers.jmx uploaded (3,414 bytes)" in out
    assert "shop.yaml: no changes, the API holds what it declares" in out
    assert out.count("plan browse: two-samplers.jmx uploaded") == 2  # the dry run's and the real
    # two runs of shop/checkout in its history, both passed, compared
    history = re.findall(r"(run-[0-9a-f]{12}) .*passed", out)  # the rows of `shibuya runs`
    assert len(set(history)) == 2, out[-4000:]
    assert "| all labels |" in out  # the markdown report
    assert "(a) → " in out
    # the files a CI job keeps: JUnit valid for Jenkins, the gate passed, the HTML report
    assert sorted(kept) == ["report.html", "summary.md", "verdicts.xml"]
    junit_schema().validate(kept["verdicts.xml"].decode())
    assert b"| error_rate 100% | all labels | passed |" in kept["summary.md"]
    assert b'id="chart-rate"' in kept["report.html"]
