"""Fetching a plan's files from the control API, checked against their size and SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from engine_sidecar.atomic import commit
from engine_sidecar.errors import DownloadError
from wire import PlanFile

MAX_FILE_BYTES = 1 << 30


def download(file: PlanFile, dest_dir: Path, token: str, timeout_s: float = 60) -> Path:
    """Fetch ``file`` into ``dest_dir`` (atomically); the engine token goes in a header."""
    if not file.url.startswith(("http://", "https://")):
        raise DownloadError(f"{file.name}: only http(s) URLs are fetched, not {file.url!r}")
    dest = dest_dir / file.name  # the wire contract forbids separators in names
    tmp = dest.with_name(dest.name + ".part")
    headers = {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(file.url, headers=headers)  # noqa: S310 - scheme checked
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp, tmp.open("wb") as out:  # noqa: S310 - scheme checked above
            while chunk := resp.read(1 << 16):
                size += len(chunk)
                if size > min(file.size_bytes, MAX_FILE_BYTES):
                    raise DownloadError(
                        f"{file.name}: more than the {file.size_bytes} bytes announced"
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except urllib.error.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        why = (" — the engine token (SHIBUYA_SIDECAR_ENGINE_TOKEN) is missing, wrong, revoked "
               "or of another collection" if exc.code == 401 else "")  # fmt: skip
        raise DownloadError(f"{file.name}: cannot fetch {file.url}: {exc}{why}") from exc
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{file.name}: cannot fetch {file.url}: {exc}") from exc
    except DownloadError:
        tmp.unlink(missing_ok=True)
        raise
    if size != file.size_bytes or digest.hexdigest() != file.sha256:
        tmp.unlink(missing_ok=True)
        raise DownloadError(
            f"{file.name}: got {size} bytes with SHA-256 {digest.hexdigest()}, "
            f"announced {file.size_bytes} bytes with {file.sha256}"
        )
    commit(tmp, dest)
    return dest


#: A run's secrets answer is small: a hundred properties at most.
MAX_SECRETS_BYTES = 1 << 20


def fetch_secrets(url: str, token: str, timeout_s: float = 30) -> dict[str, str]:
    """The run's secrets (name → value) from the control API, with the engine token."""
    if not url.startswith(("http://", "https://")):
        raise DownloadError(f"secrets: only http(s) URLs are fetched, not {url!r}")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - scheme checked
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310 - scheme checked above
            body = resp.read(MAX_SECRETS_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"secrets: cannot fetch {url}: {exc}") from exc
    try:
        answer = json.loads(body) if len(body) <= MAX_SECRETS_BYTES else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in answer.items()
    ):
        raise DownloadError(f"secrets: {url} did not answer a mapping of names to texts")
    return answer
