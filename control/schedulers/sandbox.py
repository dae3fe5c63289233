"""What a local engine may see: its own folder, the programs it runs, nothing of the API.

A test plan is code — a JSR223 element runs any Groovy its author wrote — so an engine of the
local scheduler runs in a bubblewrap sandbox (Debian's ``bubblewrap``): a mount namespace that
holds the system's programs and libraries, Python and the project read-only, JMeter read-only,
and the engine's own folder read-write — not the API's data directory (its database, every
group's plan files, other engines' folders), not the home directory, not the API's environment
(an engine gets an allow-listed one), not the API's processes (a PID namespace with its own
``/proc``), as an unprivileged user of a user namespace. The network is the host's: engines reach
their targets, Kafka, and the API's plan files with their run's token.

Without bubblewrap, an API with authentication refuses to start the local scheduler unless the
operator says every user may run code as the API's user (``SCHEDULER__SINGLE_TENANT``): see
docs/schedulers.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from control.errors import SchedulerError

#: The API's environment an engine keeps: nothing else of it (secrets, database URLs) passes.
ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "JAVA_HOME", "HOME")
#: The system an engine needs, read-only: programs, libraries, name resolution, certificates,
#: Java's configuration.
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/alternatives",
          "/etc/ssl", "/etc/ca-certificates", "/etc/java-17-openjdk", "/etc/passwd",
          "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf",
          "/etc/localtime", "/etc/ld.so.cache", "/etc/mime.types")  # fmt: skip
#: The packages a sidecar imports (found wherever they are installed: a site-packages or, in
#: an editable install, the checkout's folders — never the checkout itself).
PACKAGES = ("wire", "engine_sidecar", "shibuya", "streams", "control")
NOBODY = 65534


def available() -> str | None:
    """The bubblewrap program, if installed."""
    return shutil.which("bwrap")


def engine_env(base: Mapping[str, str], engine: Mapping[str, str]) -> dict[str, str]:
    """An engine's environment: the allow-listed part of the API's, and its own settings."""
    kept = {k: v for k, v in base.items() if k in ENVIRONMENT}
    return {**kept, "PYTHONUNBUFFERED": "1", **engine}


def argv(bwrap: str, command: Sequence[str], folder: Path, read_only: Sequence[Path]) -> list[str]:
    """The bubblewrap command line running ``command`` with ``folder`` writable."""
    # --as-pid-1: the sidecar is the namespace's first process, the one whose PID bubblewrap
    # reports, so a purge's SIGTERM reaches it (bubblewrap's own init would not pass it on: the
    # sidecar then drained nothing and was killed 15 s later). When it exits, the kernel ends
    # whatever else runs in the namespace.
    out = [bwrap, "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--unshare-pid",
           "--as-pid-1", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--cap-drop",
           "ALL", "--info-fd", "3", "--proc", "/proc", "--dev", "/dev",
           "--tmpfs", "/tmp"]  # noqa: S108 (a fresh tmpfs of its own)  # fmt: skip
    for path in SYSTEM:
        p = Path(path)
        if p.is_symlink():
            out += ["--symlink", os.readlink(p), path]
        elif p.exists():
            out += ["--ro-bind", path, path]
    for path in sorted({str(p) for p in read_only}):
        out += ["--ro-bind", path, path]
    # Its root is read-only: it writes its folder and its own /tmp, nothing else.
    out += ["--bind", str(folder), str(folder), "--remount-ro", "/", "--chdir", str(folder), "--",
            *command]  # fmt: skip
    return out


def read_only_paths(*engine_homes: Path) -> list[Path]:
    """Python, the installed packages and the engines (JMeter, Locust's environment): what an
    engine runs, never writes."""
    paths = {Path(sys.base_prefix), Path(sys.prefix), *(h.resolve() for h in engine_homes)}
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            paths.add(Path(location).resolve())
    return sorted(paths)


def child_pid(info: Path, timeout_s: float = 10) -> int:
    """The sandboxed process's PID, as bubblewrap writes it to its info file."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pid: int = json.loads(info.read_text())["child-pid"]
            return pid
        except (OSError, ValueError, KeyError):
            time.sleep(0.02)
    raise SchedulerError(f"the sandbox did not start in {timeout_s:g} s (no {info.name})")
