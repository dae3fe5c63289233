"""Fetch jars from Maven Central with Maven into a cache folder keyed by version."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from shibuya.dev.procs import ServiceError

DEPENDENCY_PLUGIN_VERSION = "3.8.1"  # Maven 3.8's default (2.8) predates what we need
COMPLETE_MARKER = ".complete"

Coordinate = tuple[str, str, str]  # group, artifact, version


def cache_root() -> Path:
    """``$SHIBUYA_CACHE_DIR`` or ``~/.cache/shibuya``: downloads reused across clones."""
    return Path(os.environ.get("SHIBUYA_CACHE_DIR") or Path.home() / ".cache" / "shibuya")


def pom(deps: Sequence[Coordinate]) -> str:
    dep_xml = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.shibuya</groupId><artifactId>runtime</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>{dep_xml}</dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>
    <version>{DEPENDENCY_PLUGIN_VERSION}</version>
  </plugin></plugins></build>
</project>
"""


def fetch(
    name: str,
    deps: Sequence[Coordinate],
    dest: Path,
    *,
    arrange: Callable[[Path, Path], None] | None = None,
    quiet: bool = True,
    transitive: bool = True,
) -> Path:
    """``dest`` holding ``deps`` and (``transitive``) their runtime dependencies, fetched unless
    already complete.

    The jars land in a staging folder; ``arrange(jars, staged)`` may lay them out (the default
    moves them as they are); the staging folder replaces ``dest`` only when complete.
    """
    if (dest / COMPLETE_MARKER).exists():
        return dest
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise ServiceError(f"installing {name} needs `mvn` and `java` (17+) on PATH")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        pom_path = Path(tmp) / "pom.xml"
        pom_path.write_text(pom(deps))
        jars, staged = Path(tmp) / "jars", Path(tmp) / "staged"
        argv = [
            "mvn",
            "-B",
            *(["-q"] if quiet else []),
            "-f",
            str(pom_path),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DexcludeTransitive={str(not transitive).lower()}",
            f"-DoutputDirectory={jars}",
        ]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"Maven could not fetch {name}:\n{result.stdout[-3000:]}{result.stderr}"
            )
        if arrange is None:
            jars.rename(staged)
        else:
            staged.mkdir()
            arrange(jars, staged)
        (staged / COMPLETE_MARKER).write_text(f"{name}\n")
        shutil.rmtree(dest, ignore_errors=True)
        staged.rename(dest)
    return dest
