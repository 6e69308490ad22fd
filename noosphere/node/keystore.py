"""Publish (identity): the node's Ed25519 key on disk. Created once with mode 0600, reused on every
start so the peer id is stable; a key file readable by others is refused, as ssh does."""

from __future__ import annotations

from pathlib import Path

from noosphere.protocol import NodeKey
from noosphere.securefile import KeyFileError, read_secret_file, write_secret_file

KEY_FILENAME = "node.key"


def load_or_create_node_key(home: Path) -> tuple[NodeKey, bool]:
    """Return the node key in ``home`` and whether it was created now."""
    path = home / KEY_FILENAME
    if not path.exists():
        key = NodeKey.generate()
        write_secret_file(path, key.to_pem())
        return key, True
    pem = read_secret_file(path)
    try:
        return NodeKey.from_pem(pem), False
    except (ValueError, TypeError) as exc:  # TypeError: an encrypted (passphrase) key
        raise KeyFileError(f"{path} is not an unencrypted Ed25519 private key: {exc}") from exc
