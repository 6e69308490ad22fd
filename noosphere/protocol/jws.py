"""Wire formats (Publish): detached JWS (RFC 7515) with EdDSA (RFC 8037), the signature form that
A2A Agent Cards carry in ``signatures``. Only ``alg: EdDSA`` is accepted (no algorithm confusion)
and the ``kid`` must be the signer's peer id."""

from __future__ import annotations

import json
from typing import Any

from noosphere.errors import InvalidData

from .canonical import EncodingError, b64url_decode, b64url_encode, canonical_json
from .identity import NodeKey, verify_signature


class SignatureError(InvalidData, ValueError):
    """Raised when a JWS does not verify."""


def sign_detached(
    payload: bytes, key: NodeKey, header: dict[str, Any] | None = None
) -> tuple[str, str]:
    """Sign ``payload``; returns the (protected, signature) parts of the compact JWS. The default
    protected header is ``{"alg": "EdDSA", "kid": <peer id>, "typ": "JOSE"}``."""
    if header is None:
        header = {"alg": "EdDSA", "kid": key.peer_id, "typ": "JOSE"}
    protected = b64url_encode(canonical_json(header))
    signing_input = f"{protected}.{b64url_encode(payload)}".encode("ascii")
    return protected, b64url_encode(key.sign(signing_input))


def verify_detached(payload: bytes, protected: str, signature: str, peer_id: str) -> dict[str, Any]:
    """Check a detached JWS by ``peer_id`` over ``payload``; returns the protected header."""
    try:
        header = json.loads(b64url_decode(protected))
        raw_signature = b64url_decode(signature)
    except (EncodingError, ValueError) as exc:
        raise SignatureError("malformed JWS") from exc
    if not isinstance(header, dict):
        raise SignatureError("JWS protected header is not an object")
    if header.get("alg") != "EdDSA":
        raise SignatureError(f"JWS algorithm {header.get('alg')!r} is not EdDSA")
    if header.get("kid") != peer_id:
        raise SignatureError("JWS key id is not the signer's peer id")
    signing_input = f"{protected}.{b64url_encode(payload)}".encode("ascii")
    if not verify_signature(peer_id, signing_input, raw_signature):
        raise SignatureError("JWS signature does not verify")
    return header
