"""Wire formats (Execute): encryption to a node's identity. A peer id embeds an Ed25519 key; its
birationally equivalent X25519 key (the map libsodium's ``crypto_sign_ed25519_pk_to_curve25519``
uses) lets anyone encrypt to the node with no extra key exchange: ephemeral X25519 → HKDF-SHA256
→ AES-256-GCM, bound to the recipient and to caller-chosen associated data. Used to deliver
attribute keys to exactly one agent's node.

    sealed = ephemeral X25519 public key (32 B) | nonce (12 B) | AES-256-GCM(plaintext)
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from noosphere.errors import InvalidData

from .identity import NodeKey, public_key_from_peer_id

_P = 2**255 - 19
_INFO = b"noosphere/seal-to-node/v1"


class SealError(InvalidData, ValueError):
    """Not sealed to this node, or changed on the way."""


def x25519_public_key(peer_id: str) -> X25519PublicKey:
    """The X25519 key of a node: u = (1 + y) / (1 - y) mod p for its Ed25519 point's y."""
    raw = public_key_from_peer_id(peer_id)
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P or y == 1:
        raise SealError("peer id does not hold a usable Ed25519 point")
    u = (1 + y) * pow(1 - y, _P - 2, _P) % _P
    return X25519PublicKey.from_public_bytes(u.to_bytes(32, "little"))


def x25519_private_key(key: NodeKey) -> X25519PrivateKey:
    """The node's X25519 secret: the clamped scalar Ed25519 derives from the seed."""
    return X25519PrivateKey.from_private_bytes(hashlib.sha512(key.seed).digest()[:32])


def _aead(shared: bytes, ephemeral: bytes, recipient: str) -> AESGCM:
    info = _INFO + ephemeral + recipient.encode("ascii")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)
    return AESGCM(key)


def seal_to_node(peer_id: str, plaintext: bytes, associated_data: bytes = b"") -> bytes:
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(x25519_public_key(peer_id))
    nonce = os.urandom(12)
    body = _aead(shared, ephemeral_public, peer_id).encrypt(nonce, plaintext, associated_data)
    return ephemeral_public + nonce + body


def open_sealed_to_node(key: NodeKey, sealed: bytes, associated_data: bytes = b"") -> bytes:
    if len(sealed) < 32 + 12 + 16:
        raise SealError("sealed data is truncated")
    ephemeral_public, nonce, body = sealed[:32], sealed[32:44], sealed[44:]
    try:
        shared = x25519_private_key(key).exchange(
            X25519PublicKey.from_public_bytes(ephemeral_public)
        )
        return _aead(shared, ephemeral_public, key.peer_id).decrypt(nonce, body, associated_data)
    except (InvalidTag, ValueError) as exc:
        raise SealError("not sealed to this node, or changed on the way") from exc
