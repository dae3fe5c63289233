"""Where plan files' bytes live, behind an interface small enough for an object store.

Keys are built by the API from database ids and validated names (``plans/<id>/<name>``), never
from raw user input. Writes go to a temporary file first and are renamed into place, so a reader
never sees half a file and a failed upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from control.errors import TooLargeError


@dataclass(frozen=True)
class Stored:
    size_bytes: int
    sha256: str


class FileStorage(Protocol):
    async def put(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int) -> Stored: ...

    def read(self, key: str) -> Iterator[bytes]: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def path(self, key: str) -> Path | None:
        """A local path to the bytes, when there is one."""


class LocalFiles:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"key {key!r} leaves the storage root")
        return path

    async def put(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int) -> Stored:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLargeError(f"larger than the limit of {max_bytes:,} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        return Stored(size, digest.hexdigest())

    def read(self, key: str) -> Iterator[bytes]:
        with self._path(key).open("rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        folder = self._path(prefix)
        if folder != self.root and folder.is_dir():
            shutil.rmtree(folder)

    def path(self, key: str) -> Path | None:
        return self._path(key)
