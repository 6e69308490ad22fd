"""Wire formats (all phases): node identity. One Ed25519 key per node; its libp2p peer id
(``12D3KooW...``) names the node everywhere and embeds the public key, so any signature can be
checked from the sender's id alone, with no key directory."""

from __future__ import annotations

from dataclasses import dataclass

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from noosphere.errors import InvalidData

# libp2p PublicKey protobuf: field 1 (KeyType, varint) = 1 (Ed25519), field 2 (bytes) len 32.
_ED25519_PROTOBUF_PREFIX = b"\x08\x01\x12\x20"
# Identity multihash (code 0x00) of the 36-byte protobuf.
_IDENTITY_MULTIHASH_PREFIX = b"\x00\x24"


class InvalidPeerId(InvalidData, ValueError):
    """Raised when a string is not the peer id of an Ed25519 libp2p key."""


def peer_id_from_public_key(public_key: bytes) -> str:
    """The libp2p peer id of a raw 32-byte Ed25519 public key."""
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    raw = _IDENTITY_MULTIHASH_PREFIX + _ED25519_PROTOBUF_PREFIX + public_key
    return base58.b58encode(raw).decode("ascii")


def public_key_from_peer_id(peer_id: str) -> bytes:
    """Recover the raw Ed25519 public key embedded in a peer id."""
    if not isinstance(peer_id, str) or not 40 <= len(peer_id) <= 64:
        raise InvalidPeerId("peer id has the wrong length")
    try:
        raw = base58.b58decode(peer_id)
    except ValueError as exc:
        raise InvalidPeerId("peer id is not base58btc") from exc
    prefix = _IDENTITY_MULTIHASH_PREFIX + _ED25519_PROTOBUF_PREFIX
    if len(raw) != len(prefix) + 32 or not raw.startswith(prefix):
        raise InvalidPeerId("peer id is not an Ed25519 identity multihash")
    return raw[len(prefix) :]


def verify_signature(peer_id: str, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` is the Ed25519 signature of ``data`` by ``peer_id``'s key."""
    try:
        public = Ed25519PublicKey.from_public_bytes(public_key_from_peer_id(peer_id))
        public.verify(signature, data)
    except (InvalidPeerId, InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class NodeKey:
    """A node's Ed25519 signing key. ``repr`` never shows the secret."""

    _private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> NodeKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeKey:
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, pem: bytes) -> NodeKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the key file does not hold an Ed25519 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def seed(self) -> bytes:
        """The 32-byte private seed (what libp2p's Ed25519 key pair is built from)."""
        return self._private.private_bytes_raw()

    @property
    def public_key(self) -> bytes:
        return self._private.public_key().public_bytes_raw()

    @property
    def peer_id(self) -> str:
        return peer_id_from_public_key(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def __repr__(self) -> str:
        return f"NodeKey(peer_id={self.peer_id!r})"
