"""docker-compose.yml, the Prometheus and Grafana files beside it, and the Dockerfiles, checked
without a Docker engine: compose is loaded by compose-go (what `docker compose config` runs),
the Dockerfiles by BuildKit's linter (`docker build --check`), both through tools/deploycheck;
Prometheus's config by promtool; every setting named is one the code reads."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from control.settings import ApiSettings
from engine_sidecar.settings import SidecarSettings
from shibuya import dashboards
from shibuya.dev import kube
from streams.settings import WorkerSettings
from tests.support.settings import env_names

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
SETTINGS: dict[str, type[BaseSettings]] = {"SHIBUYA_API_": ApiSettings,
                                           "SHIBUYA_WORKER_": WorkerSettings,
                                           "SHIBUYA_SIDECAR_": SidecarSettings}  # fmt: skip


@pytest.fixture(scope="module")
def deploycheck() -> Path:
    return kube.deploycheck()


#: The secrets `shibuya dev compose-env` generates into .env.
SECRETS = {"CLICKHOUSE_PASSWORD": "ch-secret-1", "GRAFANA_ADMIN_PASSWORD": "gf-secret-2"}


@pytest.fixture(scope="module")
def compose(deploycheck: Path) -> dict[str, Any]:
    out = subprocess.run([str(deploycheck), "compose", str(ROOT / "docker-compose.yml")],
                         capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, **SECRETS})  # fmt: skip
    assert out.returncode == 0, out.stderr
    model: dict[str, Any] = json.loads(out.stdout)
    return model


def test_compose_needs_its_secrets_and_publishes_on_loopback_only(
    deploycheck: Path, compose: dict[str, Any], tmp_path: Path
) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "admin/admin" not in text
    assert "CLICKHOUSE_PASSWORD: shibuya" not in text
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    alone = tmp_path / "docker-compose.yml"  # away from any .env beside the checkout's copy
    alone.write_text(text)
    without = subprocess.run([str(deploycheck), "compose", str(alone)],
                             capture_output=True, text=True, timeout=60, check=False,
                             env=env, cwd=tmp_path)  # fmt: skip
    assert without.returncode != 0
    assert "compose-env" in without.stdout + without.stderr
    published = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert published
    assert all(p["host_ip"] == "127.0.0.1" for p in published), published
    grafana = compose["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]
    assert SECRETS["CLICKHOUSE_PASSWORD"] in compose["services"]["api"]["environment"][
        "SHIBUYA_API_CLICKHOUSE__DSN"]  # fmt: skip


def test_compose_env_writes_fresh_secrets_once(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    shibuya = [sys.executable, "-m", "shibuya", "dev", "compose-env", "--path", str(path)]
    first = subprocess.run(shibuya, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in path.read_text().splitlines())
    assert set(values) == set(SECRETS)
    assert all(len(v) >= 24 for v in values.values())
    again = subprocess.run(shibuya, capture_output=True, text=True, check=False)
    assert (again.returncode, dict(line.split("=", 1) for line in
                                   path.read_text().splitlines())) == (2, values)  # fmt: skip


def test_compose_has_the_whole_system(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "clickhouse", "api", "worker-1", "worker-2", "engine-0",
                             "engine-1", "target", "prometheus", "grafana"}  # fmt: skip
    assert [services[w]["command"] for w in ("worker-1", "worker-2")] == [["worker", "run"]] * 2
    assert services["api"]["command"] == ["api", "serve"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    indices = [services[e]["environment"]["SHIBUYA_SIDECAR_ENGINE__ENGINE_INDEX"]
               for e in ("engine-0", "engine-1")]  # fmt: skip
    assert indices == ["0", "1"]


def test_compose_settings_are_settings_the_code_reads(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = 0
    for name, service in compose["services"].items():
        env = {k: v for k, v in (service.get("environment") or {}).items()
               if k.startswith("SHIBUYA_")}  # fmt: skip
        for prefix, settings in SETTINGS.items():
            mine = {k: v for k, v in env.items() if k.startswith(prefix)}
            if not mine:
                continue
            assert set(mine) <= env_names(settings), f"{name}: {set(mine) - env_names(settings)}"
            with monkeypatch.context() as m:
                for k, v in mine.items():
                    m.setenv(k, v)
                settings()  # parses every value
            checked += 1
    assert checked == 5  # the API, two workers, two engines
    api = compose["services"]["api"]["environment"]
    workers = [compose["services"][w]["environment"] for w in ("worker-1", "worker-2")]
    assert {w["SHIBUYA_WORKER_KAFKA__BOOTSTRAP"] for w in workers} == {
        api["SHIBUYA_API_KAFKA__BOOTSTRAP"]}  # fmt: skip


def test_prometheus_scrapes_every_worker_the_api_and_the_engines(compose: dict[str, Any]) -> None:
    path = ROOT / "deploy" / "prometheus" / "prometheus.yml"
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool comes with Debian's prometheus (scripts/bootstrap)"
    check = subprocess.run([promtool, "check", "config", str(path)], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    config = yaml.safe_load(path.read_text())
    targets = {t for job in config["scrape_configs"] for s in job["static_configs"]
               for t in s["targets"]}  # fmt: skip
    services = compose["services"]
    expected = {f"{w}:{services[w]['environment']['SHIBUYA_WORKER_METRICS_PORT']}"
                for w in services if w.startswith("worker-")}  # fmt: skip
    expected.add(f"api:{services['api']['environment']['SHIBUYA_API_PORT']}")
    expected |= {f"{e}:8089" for e in services if e.startswith("engine-")}
    assert targets == expected


def test_grafana_provisions_the_datasources_and_dashboards_it_is_given(
    compose: dict[str, Any],
) -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "datasources.yml").read_text())
    uids = {(d["type"], d["uid"]) for d in sources["datasources"]}
    assert uids == {(dashboards.CLICKHOUSE["type"], dashboards.CLICKHOUSE["uid"]),
                    (dashboards.PROMETHEUS["type"], dashboards.PROMETHEUS["uid"])}  # fmt: skip
    provider = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())
    [folder] = [p["options"]["path"] for p in provider["providers"]]
    mounts = {v["source"]: v["target"] for v in compose["services"]["grafana"]["volumes"]}
    assert mounts[str(dashboards.FOLDER)] == folder
    clickhouse = compose["services"]["clickhouse"]["environment"]
    [ch] = [d for d in sources["datasources"] if d["uid"] == "clickhouse"]
    assert ch["jsonData"]["username"] == clickhouse["CLICKHOUSE_USER"]
    assert ch["jsonData"]["defaultDatabase"] == clickhouse["CLICKHOUSE_DB"]


def _lint_clean(deploycheck: Path, name: str) -> Path:
    """docker/NAME, once BuildKit's linter finds nothing in it."""
    path = ROOT / "docker" / name
    out = subprocess.run([str(deploycheck), "dockerfile", str(path)], capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return path


@pytest.mark.parametrize("name", ["engine.Dockerfile", "controller.Dockerfile"])
def test_dockerfiles_are_lint_clean_non_root_and_pinned(deploycheck: Path, name: str) -> None:
    path = _lint_clean(deploycheck, name)
    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    built_from = set(re.findall(r"--from=(\S+)", path.read_text()))  # stages that only build
    non_root: set[str] = set()  # stages whose user is 10001 (a stage from one of them inherits)
    for start, end in zip(starts, [*starts[1:], len(lines)], strict=True):  # every image it makes
        words = lines[start].split()
        users = [line for line in lines[start:end] if line.startswith("USER ")]
        if users[-1:] == ["USER 10001"] or (not users and words[1] in non_root):
            non_root.add(words[-1])
        if words[-1] not in built_from:
            assert words[-1] in non_root, lines[start]
    [base] = [line for line in lines if line.startswith("ARG PYTHON_IMAGE=")]
    assert base.split(":", 1)[1].count(".") == 2  # python:X.Y.Z-…, not a moving tag


@pytest.mark.parametrize("name", ["kafka.Dockerfile", "prometheus.Dockerfile"])
def test_stand_in_dockerfiles_are_lint_clean_and_non_root(deploycheck: Path, name: str) -> None:
    """Kafka's and Prometheus's stand-ins (docker-compose.local.yml) run as their own users."""
    path = _lint_clean(deploycheck, name)
    [user] = [line for line in path.read_text().splitlines() if line.startswith("USER ")]
    assert user.split()[1] not in ("0", "root")


def _third_party_imports(paths: list[Path], module_level: list[Path]) -> set[str]:
    """Top-level modules imported by ``paths`` (anywhere) and ``module_level`` (at the top: the
    CLI imports each command's dependencies inside it), not of the standard library or ours."""
    found = set()
    trees = [ast.walk(ast.parse(p.read_text())) for p in paths]
    trees += [iter(ast.parse(p.read_text()).body) for p in module_level]
    for tree in trees:
        for node in tree:
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    ours = {"wire", "engine_sidecar", "streams", "shibuya", "control", "__future__"}
    return {m for m in found if m not in sys.stdlib_module_names and m not in ours}


IMAGES: dict[str, tuple[str, list[Path]]] = {
    # image: (the Dockerfile's list of what it installs, the files whose every import it needs; the
    # CLI's top-level imports come on top)
    # (locust_results.py runs in Locust's environment: engine_sidecar/locust-requirements.txt)
    "engine": ("SIDECAR_DEPS", [*(p for p in (ROOT / "engine_sidecar").rglob("*.py")
                                  if p.name != "locust_results.py"),
                                *(ROOT / "wire").rglob("*.py")]),
    "controller": ("CONTROLLER_DEPS", [*(ROOT / "control").rglob("*.py"),
                                       *(ROOT / "streams").rglob("*.py"),
                                       *(ROOT / "wire").rglob("*.py"),
                                       ROOT / "shibuya" / "dev" / "target.py"]),
}  # fmt: skip


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_each_image_installs_every_dependency_of_its_code_at_the_tested_version(image: str) -> None:
    arg, sources = IMAGES[image]
    text = (ROOT / "docker" / f"{image}.Dockerfile").read_text().replace("\\\n", " ")
    deps = re.search(rf'{arg}="([^"]+)"', text)
    assert deps is not None
    installs = {_norm(name.split("[")[0]) for name in deps[1].split()}
    imported = _third_party_imports(sources, sorted((ROOT / "shibuya" / "cli").glob("*.py")))
    distributions = importlib.metadata.packages_distributions()
    needed = {_norm(d) for m in imported for d in distributions[m]}
    assert needed <= installs, needed - installs
    # Pinned by constraints.txt, which the tests' own environment was installed with.
    constraints = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().split()
                       if "==" in line)  # fmt: skip
    pinned = {_norm(k): v for k, v in constraints.items()}
    assert installs <= set(pinned), installs - set(pinned)
    for name in installs:
        assert importlib.metadata.version(name) == pinned[name], name


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_linter_does_report(deploycheck: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:12 as build\nRUN true\n")
    out = subprocess.run([str(deploycheck), "dockerfile", str(bad)], capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert out.returncode == 1
    assert "FromAsCasing" in out.stdout
