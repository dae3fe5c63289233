"""An LDAP directory for tests of single sign-on by LDAP users: UnboundID's in-memory directory
server (``com.unboundid:unboundid-ldapsdk``, one jar from Maven Central, cached by version), run
as a JVM process with the entries of an LDIF file (its tool has no listen-address option: it
listens on every interface, on a free port, for the length of a test). Shibuya itself speaks no
LDAP: its LDAP users log in through an OpenID Connect provider that federates the directory
(Keycloak in the tests; docs/ui.md). It serves tests only, and is not part of what the project
ships.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from control.schedulers.processes import alive, spawn, wait_for
from shibuya.dev import maven
from shibuya.dev.procs import PidFile, ServiceError, port_open, tail, terminate

UNBOUNDID_VERSION = "7.0.5"


def install(version: str = UNBOUNDID_VERSION) -> Path:
    """The folder holding the SDK's jar, fetched unless cached."""
    dest = maven.cache_root() / f"unboundid-ldapsdk-{version}"
    return maven.fetch("the UnboundID LDAP SDK", [("com.unboundid", "unboundid-ldapsdk", version)],
                       dest, transitive=False)  # fmt: skip


def ldif(base_dn: str, users: dict[str, tuple[str, list[str]]]) -> str:
    """A directory under ``base_dn``: ``ou=people`` with each user (uid, password) and
    ``ou=groups`` with each group (``groupOfNames``) and its members."""
    out = [f"dn: {base_dn}\nobjectClass: top\nobjectClass: domain\ndc: {base_dn.split(',')[0][3:]}",
           f"dn: ou=people,{base_dn}\nobjectClass: organizationalUnit\nou: people",
           f"dn: ou=groups,{base_dn}\nobjectClass: organizationalUnit\nou: groups"]  # fmt: skip
    for uid, (password, _) in users.items():
        out.append(f"dn: uid={uid},ou=people,{base_dn}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                   f"cn: {uid.title()} Tester\nsn: Tester\nmail: {uid}@example.test\n"
                   f"userPassword: {password}")  # fmt: skip
    for group in sorted({g for _, gs in users.values() for g in gs}):
        members = [f"member: uid={u},ou=people,{base_dn}" for u, (_, gs) in users.items()
                   if group in gs]  # fmt: skip
        out.append(f"dn: cn={group},ou=groups,{base_dn}\nobjectClass: groupOfNames\ncn: {group}\n"
                   + "\n".join(members))  # fmt: skip
    return "\n\n".join(out) + "\n"


@dataclass
class LdapServer:
    """The directory on 127.0.0.1:``port``: ``base_dn`` with ``users`` (uid → password, groups);
    ``bind_dn`` / ``bind_password`` may read it all."""

    data_dir: Path
    port: int
    users: dict[str, tuple[str, list[str]]]
    base_dn: str = "dc=shibuya,dc=test"
    bind_password: str = "directory-reader-pw"  # noqa: S105 (a test directory's)
    version: str = UNBOUNDID_VERSION

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def bind_dn(self) -> str:
        return f"cn=reader,{self.base_dn}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "ldap.log"

    @property
    def _pidfile(self) -> PidFile:
        return PidFile(self.data_dir / "ldap.pid", marker=f"--port={self.port}")

    def start(self, timeout_s: float = 60) -> float:
        """Start it and wait until it accepts connections; the seconds taken."""
        t0 = time.monotonic()
        if port_open("127.0.0.1", self.port):
            raise ServiceError(f"port {self.port} is taken by another process")
        jars = install(self.version)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        entries = self.data_dir / "directory.ldif"
        entries.write_text(ldif(self.base_dn, self.users))
        pid = spawn(["java", "-Xmx128m", "-cp", str(jars / "*"),
                     "com.unboundid.ldap.listener.InMemoryDirectoryServerTool",
                     f"--baseDN={self.base_dn}", f"--port={self.port}", f"--ldifFile={entries}",
                     f"--additionalBindDN={self.bind_dn}",
                     f"--additionalBindPassword={self.bind_password}"],
                    log=self.log_path)  # fmt: skip
        self._pidfile.write(pid)

        def ready() -> bool:
            if not alive(pid):
                raise ServiceError(f"the LDAP directory exited:\n{tail(self.log_path)}")
            return port_open("127.0.0.1", self.port)

        if not wait_for(ready, timeout_s, interval_s=0.2):
            self.stop()
            raise ServiceError(f"the LDAP directory did not listen on {self.port} within "
                               f"{timeout_s:.0f} s:\n{tail(self.log_path)}")  # fmt: skip
        return time.monotonic() - t0

    def stop(self, timeout_s: float = 10) -> None:
        pid = self._pidfile.read()
        if pid is not None:
            terminate(pid, timeout_s)
        self._pidfile.clear()
