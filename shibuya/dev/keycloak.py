"""A real OpenID Connect provider for development and tests: Keycloak, without Docker.

Its server distribution (``org.keycloak:keycloak-quarkus-dist``, a tar.gz on Maven Central,
checked against the SHA-1 Maven Central publishes) is unpacked into a cache folder keyed by
version, and runs as a JVM process on loopback in development mode, its database in memory:
each start imports the realm it is given (clients, groups, users) and forgets everything at its
end. Keycloak also federates LDAP directories: the way Shibuya's LDAP users log in here
(docs/ui.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from control.schedulers.processes import alive, spawn, wait_for
from shibuya.dev.maven import COMPLETE_MARKER, cache_root
from shibuya.dev.procs import PidFile, ServiceError, port_open, tail, terminate

KEYCLOAK_VERSION = "26.7.3"
CENTRAL = "https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist"


def install(version: str = KEYCLOAK_VERSION) -> Path:
    """Keycloak's home folder, downloaded and unpacked unless already cached."""
    home = cache_root() / f"keycloak-{version}"
    if (home / COMPLETE_MARKER).exists():
        return home
    url = f"{CENTRAL}/{version}/keycloak-quarkus-dist-{version}.tar.gz"
    cache_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_root()) as tmp:
        archive = Path(tmp) / "keycloak.tar.gz"
        digest = hashlib.sha1()  # noqa: S324 (what Maven Central publishes beside each file)
        try:
            with httpx.stream("GET", url, timeout=60, follow_redirects=True) as r, \
                    archive.open("wb") as out:  # fmt: skip
                r.raise_for_status()
                for chunk in r.iter_bytes(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            expected = httpx.get(f"{url}.sha1", timeout=30).raise_for_status().text.split()[0]
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot download Keycloak {version} from {url}: {exc}") from exc
        if digest.hexdigest() != expected:
            raise ServiceError(f"Keycloak {version}: the download's SHA-1 is not {expected}")
        with tarfile.open(archive) as t:
            t.extractall(tmp, filter="data")
        staged = Path(tmp) / f"keycloak-{version}"
        (staged / COMPLETE_MARKER).write_text(f"Keycloak {version}\n")
        shutil.rmtree(home, ignore_errors=True)
        staged.replace(home)
    return home


@dataclass
class KeycloakServer:
    """One Keycloak on 127.0.0.1:``port``, serving ``realm`` (a realm export: its clients,
    groups and users); its log and PID under ``data_dir``."""

    data_dir: Path
    port: int
    realm: dict[str, Any]
    version: str = KEYCLOAK_VERSION
    heap: str = "512m"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/{self.realm['realm']}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "keycloak.log"

    @property
    def _pidfile(self) -> PidFile:
        return PidFile(self.data_dir / "keycloak.pid", marker=f"--http-port={self.port}")

    def pid(self) -> int | None:
        return self._pidfile.read()

    def start(self, timeout_s: float = 240) -> float:
        """Start it, wait until its realm is served; the seconds taken (the first start on a
        machine also builds Keycloak's configuration: about a minute more)."""
        t0 = time.monotonic()
        if port_open("127.0.0.1", self.port):
            raise ServiceError(f"port {self.port} is taken by another process")
        home = install(self.version)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        imports = home / "data" / "import"
        imports.mkdir(parents=True, exist_ok=True)
        realm_file = imports / f"{self.realm['realm']}-realm.json"
        realm_file.write_text(json.dumps(self.realm))
        env = {**os.environ, "JAVA_OPTS_KC_HEAP": f"-Xms128m -Xmx{self.heap}", **self.env}
        pid = spawn([str(home / "bin" / "kc.sh"), "start-dev", f"--http-port={self.port}",
                     "--http-host=127.0.0.1", "--db=dev-mem", "--import-realm",
                     "--log-console-color=false"],
                    log=self.log_path, env=env)  # fmt: skip
        self._pidfile.write(pid)
        discovery = f"{self.issuer}/.well-known/openid-configuration"

        def ready() -> bool:
            if not alive(pid):
                raise ServiceError(f"Keycloak exited:\n{tail(self.log_path)}")
            try:
                return httpx.get(discovery, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        if not wait_for(ready, timeout_s, interval_s=0.5):
            self.stop()
            raise ServiceError(f"Keycloak did not serve {discovery} within {timeout_s:.0f} s:\n"
                               f"{tail(self.log_path)}")  # fmt: skip
        return time.monotonic() - t0

    def stop(self, timeout_s: float = 30) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, timeout_s)
        self._pidfile.clear()
