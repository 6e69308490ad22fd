"""The node key file: created once with mode 0600, reused, refused when exposed or damaged."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from noosphere.node.keystore import (
    KEY_FILENAME,
    KeyFileError,
    load_or_create_node_key,
    write_secret_file,
)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_key_file(home: Path, data: bytes, mode: int = 0o600) -> Path:
    path = home / KEY_FILENAME
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_first_call_creates_key_file_with_mode_0600(tmp_path: Path) -> None:
    key, created = load_or_create_node_key(tmp_path)
    assert created is True
    assert mode_of(tmp_path / KEY_FILENAME) == 0o600
    assert key.peer_id.startswith("12D3KooW")


def test_second_call_returns_same_peer_id_without_creating(tmp_path: Path) -> None:
    first, _ = load_or_create_node_key(tmp_path)
    second, created = load_or_create_node_key(tmp_path)
    assert created is False
    assert second.peer_id == first.peer_id


def test_group_or_world_readable_key_file_is_refused_with_chmod_hint(tmp_path: Path) -> None:
    load_or_create_node_key(tmp_path)
    (tmp_path / KEY_FILENAME).chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600") as info:
        load_or_create_node_key(tmp_path)
    assert str(tmp_path / KEY_FILENAME) in str(info.value)
    assert "0644" in str(info.value)


def test_owner_read_only_key_file_is_accepted(tmp_path: Path) -> None:
    key, _ = load_or_create_node_key(tmp_path)
    (tmp_path / KEY_FILENAME).chmod(0o400)
    assert load_or_create_node_key(tmp_path)[0].peer_id == key.peer_id


@pytest.mark.parametrize(
    "data", [b"garbage", b"", b"\xff\xfe\x00"], ids=["text", "empty", "binary"]
)
def test_garbage_key_file_raises_key_file_error(tmp_path: Path, data: bytes) -> None:
    path = write_key_file(tmp_path, data)
    with pytest.raises(KeyFileError, match="not an unencrypted Ed25519 private key") as info:
        load_or_create_node_key(tmp_path)
    assert str(path) in str(info.value)


def test_non_ed25519_key_file_raises_key_file_error(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_key_file(tmp_path, pem)
    with pytest.raises(KeyFileError, match="Ed25519"):
        load_or_create_node_key(tmp_path)


def test_encrypted_key_file_raises_key_file_error(tmp_path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    write_key_file(tmp_path, pem)
    with pytest.raises(KeyFileError):
        load_or_create_node_key(tmp_path)


def test_write_secret_file_creates_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    write_secret_file(path, b"data")
    assert path.read_bytes() == b"data"
    assert mode_of(path) == 0o600


def test_write_secret_file_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"original")
    with pytest.raises(FileExistsError):
        write_secret_file(path, b"replacement")
    assert path.read_bytes() == b"original"
