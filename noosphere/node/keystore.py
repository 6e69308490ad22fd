"""Publish (identity): the node's Ed25519 key on disk. Created once with mode 0600, reused on every
start so the peer id is stable; a key file readable by others is refused, as ssh does."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from noosphere.protocol import NodeKey

KEY_FILENAME = "node.key"


class KeyFileError(RuntimeError):
    """The key file exists but cannot be used (permissions, format)."""


def write_secret_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 atomically; never overwrite an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_or_create_node_key(home: Path) -> tuple[NodeKey, bool]:
    """Return the node key in ``home`` and whether it was created now."""
    path = home / KEY_FILENAME
    if not path.exists():
        key = NodeKey.generate()
        write_secret_file(path, key.to_pem())
        return key, True
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{path} is accessible by other users (mode {mode:04o}); run: chmod 600 {path}"
        )
    try:
        return NodeKey.from_pem(path.read_bytes()), False
    except (ValueError, TypeError) as exc:  # TypeError: an encrypted (passphrase) key
        raise KeyFileError(f"{path} is not an unencrypted Ed25519 private key: {exc}") from exc
