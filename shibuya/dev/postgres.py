"""A PostgreSQL server from Debian's packages, run as a process for tests and CI.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user (its data
directory is handed to that user). Trust authentication on 127.0.0.1 only; fsync off — it is a
test server.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shibuya.dev.procs import ServiceError


def bin_dir() -> Path:
    """The newest installed PostgreSQL's programs."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise ServiceError("PostgreSQL is not installed: apt-get install postgresql")
    return Path(initdb).resolve().parent


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class PostgresServer:
    data_dir: Path
    port: int

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        bins = bin_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the postgres user must reach and own its directory
            self.data_dir.chmod(0o755)
            shutil.chown(self.data_dir, "postgres", "postgres")
        if not (self.pgdata / "PG_VERSION").exists():
            self._run([str(bins / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                       "--auth=trust", "-E", "UTF8", "--no-sync"])  # fmt: skip
        options = (
            f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = str(self.data_dir / "postgres.log")
        pg_ctl = [str(bins / "pg_ctl"), "-D", str(self.pgdata), "-l", log, "-o", options]
        self._run([*pg_ctl, "-w", "-t", "60", "start"])

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self._run([str(bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w",
                       "stop"])  # fmt: skip

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(_as_owner(argv), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceError(f"{' '.join(argv[:2])} failed: {result.stderr or result.stdout}")
