"""Execute (security): who is calling the node's JSON-RPC API. The operator's CLI presents the
bearer token kept 0600 in the node home; another node signs each request with its node key
(``PeerAuth`` for httpx on the sending side, ``RequestAuthenticator`` on the receiving side, which
also rejects stale timestamps and replayed nonces). Methods that change state need one of the two.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Generator, Mapping
from pathlib import Path

import httpx

from noosphere.protocol import NodeKey, b64url_decode, b64url_encode
from noosphere.protocol.canonical import EncodingError
from noosphere.protocol.identity import InvalidPeerId, verify_signature
from noosphere.protocol.rpcauth import (
    LOCAL_PRINCIPAL,
    NONCE_HEADER,
    PEER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_signing_payload,
)

from .keystore import KeyFileError, read_secret_file, write_secret_file

TOKEN_FILENAME = "rpc.token"


class AuthError(Exception):
    """Credentials were presented but are not valid; the message says why (no secrets in it)."""


def load_or_create_token(home: Path) -> str:
    """The operator token of the node in ``home``, created (0600) on first use."""
    path = home / TOKEN_FILENAME
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process created it first
            write_secret_file(path, secrets.token_urlsafe(32).encode("ascii") + b"\n")
    return read_token(path)


def read_token(path: Path) -> str:
    """Read a token file, refusing one that other users can read."""
    try:
        token = read_secret_file(path).decode("ascii").strip()
    except FileNotFoundError as exc:
        raise KeyFileError(f"{path} does not exist (start the node once to create it)") from exc
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"{path}: cannot read token: {exc}") from exc
    if len(token) < 16:
        raise KeyFileError(f"{path} does not hold a token")
    return token


class PeerAuth(httpx.Auth):
    """httpx auth that signs every request with a node key (used node-to-node)."""

    requires_request_body = True

    def __init__(self, key: NodeKey) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(
            signed_headers(self._key, request.method, request.url.path, request.content)
        )
        yield request


def signed_headers(key: NodeKey, http_method: str, path: str, body: bytes) -> dict[str, str]:
    timestamp_ms = int(time.time() * 1000)
    nonce = secrets.token_urlsafe(16)
    payload = request_signing_payload(
        http_method=http_method, path=path, timestamp_ms=timestamp_ms, nonce=nonce, body=body
    )
    return {
        PEER_HEADER: key.peer_id,
        TIMESTAMP_HEADER: str(timestamp_ms),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: b64url_encode(key.sign(payload)),
    }


class RequestAuthenticator:
    """Turns request headers into a principal: ``local``, a peer id, or None (anonymous)."""

    def __init__(self, token: str, *, max_skew_s: float = 60.0, nonce_capacity: int = 65_536):
        self._token = token.encode("ascii")
        self._max_skew_ms = int(max_skew_s * 1000)
        self._nonces: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._nonce_capacity = nonce_capacity

    def authenticate(
        self, headers: Mapping[str, str], http_method: str, path: str, body: bytes
    ) -> str | None:
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                credentials.strip().encode("ascii", "replace"), self._token
            ):
                raise AuthError("invalid bearer token")
            return LOCAL_PRINCIPAL
        if headers.get(SIGNATURE_HEADER) is None:
            return None
        return self._verify_peer(headers, http_method, path, body)

    def _verify_peer(
        self, headers: Mapping[str, str], http_method: str, path: str, body: bytes
    ) -> str:
        peer_id = headers.get(PEER_HEADER, "")
        raw_ts = headers.get(TIMESTAMP_HEADER, "")
        nonce = headers.get(NONCE_HEADER, "")
        if not raw_ts.isdigit() or not 8 <= len(nonce) <= 64 or not nonce.isascii():
            raise AuthError("malformed request signature headers")
        timestamp_ms = int(raw_ts)
        now_ms = int(time.time() * 1000)
        if abs(now_ms - timestamp_ms) > self._max_skew_ms:
            raise AuthError("request signature timestamp is outside the accepted window")
        try:
            signature = b64url_decode(headers.get(SIGNATURE_HEADER, ""))
            payload = request_signing_payload(
                http_method=http_method,
                path=path,
                timestamp_ms=timestamp_ms,
                nonce=nonce,
                body=body,
            )
            valid = verify_signature(peer_id, payload, signature)
        except (EncodingError, InvalidPeerId, UnicodeEncodeError):
            valid = False
        if not valid:
            raise AuthError("request signature does not verify for the claimed peer")
        self._remember_nonce(peer_id, nonce, now_ms)
        return peer_id

    def _remember_nonce(self, peer_id: str, nonce: str, now_ms: int) -> None:
        key = (peer_id, nonce)
        if key in self._nonces:
            raise AuthError("replayed request (nonce already used)")
        self._nonces[key] = now_ms
        horizon = now_ms - 2 * self._max_skew_ms
        while self._nonces and (
            len(self._nonces) > self._nonce_capacity or next(iter(self._nonces.values())) < horizon
        ):
            self._nonces.popitem(last=False)


class BearerAuth(httpx.Auth):
    """httpx auth presenting the operator token (used by the CLI against its own node)."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request
