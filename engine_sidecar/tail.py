"""Follow a growing file by polling: partial writes, truncation and rotation.

* truncated in place (size below our position, same inode): start again at 0;
* rotated (the path names a new inode): read the old file to its end, then follow the new one;
* not there yet: wait for it.

Each switch to another file (or back to 0) increments :attr:`FileTail.generation`, so callers
know to start a fresh parser.
"""

from __future__ import annotations

import os
from pathlib import Path


class FileTail:
    def __init__(self, path: Path, *, offset: int = 0, ino: int | None = None) -> None:
        """Follow ``path`` from ``offset`` if it is the file ``ino`` (any file when ``None``),
        else from its start."""
        self.path = path
        self.generation = 0
        self.dev = self.ino = self.position = 0
        self._fd: int | None = None
        self._resume = (offset, ino)

    def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` new bytes; ``b""`` when there is nothing new (yet)."""
        if self._fd is None and not self._open():
            return b""
        assert self._fd is not None
        data = os.pread(self._fd, max_bytes, self.position)
        if data:
            self.position += len(data)
            return data
        # At the end of what we have: has the file been truncated or replaced?
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return b""  # moved away and no new file yet: the old one may still grow
        if st.st_ino != self.ino or st.st_dev != self.dev:
            self.close()
            self._resume = (0, None)
            self.generation += 1
        elif st.st_size < self.position:
            self.position = 0
            self.generation += 1
        return b""

    def _open(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        st = os.fstat(fd)
        offset, ino = self._resume
        same = ino is None or ino == st.st_ino
        self._fd, self.dev, self.ino = fd, st.st_dev, st.st_ino
        self.position = offset if same and offset <= st.st_size else 0
        if not same or offset > st.st_size:
            self.generation += 1
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
