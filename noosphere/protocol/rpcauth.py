"""Wire formats (Execute): how a JSON-RPC request proves who sent it. A node signs each request
to another node with its Ed25519 node key over the method, path, time, a fresh nonce and the body
hash; the local operator instead presents the bearer token from the node home. Pure data, no I/O.
"""

from __future__ import annotations

import hashlib

PEER_HEADER = "Noosphere-Peer"
TIMESTAMP_HEADER = "Noosphere-Timestamp"
NONCE_HEADER = "Noosphere-Nonce"
SIGNATURE_HEADER = "Noosphere-Signature"
SIGNATURE_HEADERS = (PEER_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)

#: The principal of requests made with the operator's bearer token.
LOCAL_PRINCIPAL = "local"

_DOMAIN = b"noosphere-rpc-request/1"


def request_signing_payload(
    *, http_method: str, path: str, timestamp_ms: int, nonce: str, body: bytes
) -> bytes:
    """The exact bytes a request signature covers (domain-separated, newline-joined)."""
    return b"\n".join(
        (
            _DOMAIN,
            http_method.upper().encode("ascii"),
            path.encode("utf-8"),
            str(timestamp_ms).encode("ascii"),
            nonce.encode("ascii"),
            hashlib.sha256(body).hexdigest().encode("ascii"),
        )
    )
