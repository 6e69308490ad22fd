"""Publish and Settle (identity): the node's keys on disk, the Ed25519 node key and the ledger
account key. Each is created once with mode 0600 and reused on every start, so the peer id and
the EVM address are stable; a key file readable by others is refused, as ssh does."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from noosphere.protocol import NodeKey
from noosphere.securefile import KeyFileError, read_secret_file, write_secret_file

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

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


EVM_KEY_FILENAME = "evm.key"


def load_or_create_evm_account(home: Path) -> tuple[LocalAccount, bool]:
    """The node's ledger account (secp256k1, hex in ``HOME/evm.key``, 0600) and whether it was
    created now. It is separate from the Ed25519 node key: the EVM needs its own curve."""
    from eth_account import Account

    path = home / EVM_KEY_FILENAME
    if not path.exists():
        account = Account.create()
        write_secret_file(path, account.key.hex().encode() + b"\n")
        return account, True
    raw = read_secret_file(path).decode("ascii", "replace").strip()
    try:
        return Account.from_key(raw), False
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a hex secp256k1 private key") from exc
