"""Secrets sealed at rest: Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) with the
API's key — ``SECRETS__KEY``, or a key made once in the data folder (mode 0600) when none is set.
Replicas must share one key: set it (on Kubernetes, from a Secret)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class VaultError(RuntimeError):
    """A sealed value this key cannot open (another key sealed it, or it was altered)."""


class Vault:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def open_with(cls, key: str | None, data_dir: Path) -> Vault:
        """The vault of ``key``, else of ``data_dir/secrets.key`` (made once, 0600)."""
        if key:
            return cls(key.encode())
        path = data_dir / "secrets.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it meanwhile
                return cls(path.read_bytes().strip())
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, value: str) -> str:
        sealed: bytes = self._fernet.encrypt(value.encode())
        return sealed.decode()

    def unseal(self, sealed: str) -> str:
        try:
            value: bytes = self._fernet.decrypt(sealed.encode())
            return value.decode()
        except InvalidToken as exc:
            raise VaultError("a secret cannot be opened with this key (SECRETS__KEY)") from exc
