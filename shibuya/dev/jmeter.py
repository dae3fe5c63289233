"""Apache JMeter (non-GUI) with the common jmeter-plugins, assembled from Maven Central jars,
cached by version.

The layout is the one JMeter's launcher expects (``NewDriver``): the launcher jar in ``bin/``
with the files of ``ApacheJMeter_config`` (``jmeter.properties`` …), JMeter's own component jars
and the plugins in ``lib/ext/`` (where it discovers samplers and functions), everything else in
``lib/``. The plugins are fetched without their declared dependencies: those are JMeter 2.13's
own jars, which JMeter provides (newer) itself.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from shibuya.dev.maven import COMPLETE_MARKER, cache_root, fetch

JMETER_VERSION = "5.6.3"
#: The jmeter-plugins every engine has (docs/engines.md): their common library, the Custom Thread
#: Groups (Concurrency, Ultimate, Arrivals, Free-Form Arrivals, Stepping), the functions pack,
#: the Throughput Shaping Timer. ``PLUGINS_RELEASE`` names the set in the cache.
PLUGINS = (
    ("kg.apc", "jmeter-plugins-cmn-jmeter", "0.6"),
    ("kg.apc", "jmeter-plugins-casutg", "2.10"),
    ("kg.apc", "jmeter-plugins-functions", "2.1"),
    ("kg.apc", "jmeter-plugins-tst", "2.5"),
)
PLUGINS_RELEASE = 1
#: JMETER_HOME's folder in the cache (the sidecar's and the local scheduler's default).
HOME_NAME = f"jmeter-{JMETER_VERSION}-plugins-{PLUGINS_RELEASE}"
_MODULES = (
    "ApacheJMeter",
    "ApacheJMeter_config",
    "ApacheJMeter_core",
    "ApacheJMeter_http",
    "ApacheJMeter_components",
    "ApacheJMeter_functions",
)


def install(*, quiet: bool = True) -> Path:
    """JMETER_HOME with the plugins, fetched and laid out unless already cached."""
    home = cache_root() / HOME_NAME
    if (home / COMPLETE_MARKER).exists():
        return home
    deps = [("org.apache.jmeter", m, JMETER_VERSION) for m in _MODULES]
    core = fetch(f"JMeter {JMETER_VERSION}", deps, cache_root() / f"jmeter-{JMETER_VERSION}",
                 arrange=_arrange, quiet=quiet)  # fmt: skip
    plugins = fetch("jmeter-plugins", PLUGINS, cache_root() / f"jmeter-plugins-{PLUGINS_RELEASE}",
                    quiet=quiet, transitive=False)  # fmt: skip
    with tempfile.TemporaryDirectory(dir=cache_root()) as tmp:
        staged = Path(tmp) / "home"
        shutil.copytree(core, staged)
        for jar in sorted(plugins.glob("*.jar")):
            shutil.copy2(jar, staged / "lib" / "ext" / jar.name)
        (staged / COMPLETE_MARKER).write_text(f"JMeter {JMETER_VERSION} with {PLUGINS}\n")
        shutil.rmtree(home, ignore_errors=True)
        staged.rename(home)
    return home


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
