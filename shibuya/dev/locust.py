"""Locust in an environment of its own, cached by version: a virtualenv with the pinned
``engine_sidecar/locust-requirements.txt`` (gevent patches the interpreter Locust runs in; the
sidecar's stays its own)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import engine_sidecar
from shibuya.dev.maven import COMPLETE_MARKER, cache_root

LOCUST_VERSION = "2.47.0"
REQUIREMENTS = Path(engine_sidecar.__file__).with_name("locust-requirements.txt")


def env_dir() -> Path:
    """The environment's folder in the cache (the sidecar's and the local scheduler's default)."""
    return cache_root() / f"locust-{LOCUST_VERSION}"


def install(*, quiet: bool = True) -> Path:
    """Locust's environment, made unless already cached; its folder."""
    env = env_dir()
    if (env / COMPLETE_MARKER).exists():
        return env
    if not quiet:
        print(f"installing Locust {LOCUST_VERSION} into {env}", file=sys.stderr)
    shutil.rmtree(env, ignore_errors=True)
    python = Path(sys.executable)
    subprocess.run([str(python), "-m", "venv", str(env)], check=True)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, *(["-q"] if quiet else []), "-r", str(REQUIREMENTS)], check=True)
    (env / COMPLETE_MARKER).write_text(f"Locust {LOCUST_VERSION}\n")
    return env
