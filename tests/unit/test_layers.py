"""Every import-linter contract of ``.importlinter`` fails when the rule it states is broken.

Each case copies the packages, adds one import that breaks one rule, and runs ``lint-imports`` on
that contract alone: it must fail and name the import. (``scripts/test`` checks that the tree as
it is keeps them all.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("wire", "streams", "control", "engine_sidecar", "shibuya")

#: contract → (module that gets the import, the import that breaks the rule)
VIOLATIONS = {
    "floors": ("control/services/runs.py", "import streams.merge"),
    "wire-leaf": ("wire/routing.py", "import pydantic"),
    "streams-layers": ("streams/merge.py", "import streams.agents.owner"),
    "streams-cores": ("streams/progress.py", "import prometheus_client"),
    "control-layers": ("control/db/models.py", "import control.services.runs"),
    "sidecar-layers": ("engine_sidecar/reader.py", "import engine_sidecar.agent"),
    "kafka-client": ("control/services/runs.py", "import aiokafka"),
    "faust": ("streams/progress.py", "import faust"),
    "clickhouse-client": ("control/results/queries.py", "import clickhouse_connect"),
    "kubernetes-client": ("control/schedulers/local.py", "import kubernetes"),
    "sql": ("control/api/routes/runs.py", "import sqlalchemy"),
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(ROOT / ".importlinter", root / ".importlinter")
    return root


def _lint(root: Path, contract: str) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(lint), "--no-cache", "--contract", contract], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_every_contract_has_a_violation_here() -> None:
    names = {line.split(":")[2].rstrip("]") for line in
             (ROOT / ".importlinter").read_text().splitlines()
             if line.startswith("[importlinter:contract:")}  # fmt: skip
    assert names == set(VIOLATIONS)


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_a_contract_fails_when_its_rule_is_broken(tree: Path, contract: str) -> None:
    module, line = VIOLATIONS[contract]
    path = tree / module
    kept = path.read_text()
    assert _lint(tree, contract).returncode == 0, f"{contract} is broken already"
    path.write_text(f"{kept}\n{line}  # noqa\n")
    try:
        result = _lint(tree, contract)
    finally:
        path.write_text(kept)
    assert result.returncode == 1, result.stdout
    assert "BROKEN" in result.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    assert importer in result.stdout, result.stdout
