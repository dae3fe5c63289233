"""The ``shibuya`` command: every group and command has real help text."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from shibuya.cli import app

runner = CliRunner()


def test_top_level_help_lists_every_component() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("sidecar", "worker", "api", "dev"):
        assert group in result.output


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["sidecar", "--help"], "publishes its results to Kafka"),
        (["sidecar", "tail", "--help"], "Tail-only mode"),
        (["sidecar", "run", "--help"], "Agent mode"),
        (["dev", "jmeter", "--help"], "Apache JMeter 5.6.3"),
        (["worker", "--help"], "tracks, stops and ends runs"),
        (["run", "--help"], "16 + a bit per class of failure"),
        (["api", "add-user", "--help"], "only its hash is"),
        (["dev", "postgres", "--help"], "Debian's packages"),
        (["worker", "run", "--help"], "until SIGTERM"),
        (["api", "--help"], "Stateless"),
        (["api", "serve", "--help"], "SHIBUYA_API_HOST"),
        (["dev", "--help"], "without Docker"),
        (["dev", "kafka", "--help"], "Maven Central"),
        (["dev", "kafka", "start", "--help"], "wait until it serves"),
        (["dev", "kafka", "stop", "--help"], "SIGTERM by PID"),
        (["dev", "kafka", "status", "--help"], "exit code 1"),
        (["dev", "demo", "--help"], "The main job"),
    ],
)
def test_help_texts(args: list[str], phrase: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert phrase in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("group", "env", "path", "value"),
    [
        ("worker", "SHIBUYA_WORKER_KAFKA__BOOTSTRAP", ["kafka", "bootstrap"], "k1:9092"),
        ("sidecar", "SHIBUYA_SIDECAR_BATCH__MAX_SAMPLES", ["batch", "max_samples"], 77),
        ("api", "SHIBUYA_API_PORT", ["port"], 8111),
    ],
)
def test_config_shows_settings_from_the_environment(
    group: str, env: str, path: list[str], value: object
) -> None:
    result = runner.invoke(app, [group, "config"], env={env: str(value)})
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    for part in path:
        shown = shown[part]
    assert shown == value


def test_invalid_settings_are_reported_with_the_variable() -> None:
    result = runner.invoke(
        app, ["sidecar", "config"], env={"SHIBUYA_SIDECAR_BATCH__MAX_INTERVAL_MS": "900"}
    )
    assert result.exit_code != 0
    assert "max_interval_ms" in str(result.exception)
