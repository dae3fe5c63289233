"""Apache JMeter (non-GUI) assembled from Maven Central jars, cached by version.

The layout is the one JMeter's launcher expects (``NewDriver``): the launcher jar in ``bin/``
with the files of ``ApacheJMeter_config`` (``jmeter.properties`` …), JMeter's own component jars
in ``lib/ext/`` (where it discovers samplers and functions), everything else in ``lib/``.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from shibuya.dev.maven import cache_root, fetch

JMETER_VERSION = "5.6.3"
_MODULES = (
    "ApacheJMeter",
    "ApacheJMeter_config",
    "ApacheJMeter_core",
    "ApacheJMeter_http",
    "ApacheJMeter_components",
    "ApacheJMeter_functions",
)


def install(version: str = JMETER_VERSION, *, quiet: bool = True) -> Path:
    """JMETER_HOME, fetched and laid out unless already cached."""
    deps = [("org.apache.jmeter", m, version) for m in _MODULES]
    dest = cache_root() / f"jmeter-{version}"
    return fetch(f"JMeter {version}", deps, dest, arrange=_arrange, quiet=quiet)


def launcher(home: Path) -> Path:
    [jar] = (home / "bin").glob("ApacheJMeter-*.jar")
    return jar


def _arrange(jars: Path, home: Path) -> None:
    for sub in ("bin", "lib/ext", "lib/junit"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    for jar in sorted(jars.glob("*.jar")):
        name = jar.name
        if name.startswith("ApacheJMeter_config-"):
            with zipfile.ZipFile(jar) as z:
                z.extractall(home, [m for m in z.namelist() if m.startswith("bin/")])
        elif name.startswith("ApacheJMeter-"):
            shutil.move(jar, home / "bin" / name)
        elif name.startswith("ApacheJMeter_"):
            shutil.move(jar, home / "lib" / "ext" / name)
        else:
            shutil.move(jar, home / "lib" / name)
