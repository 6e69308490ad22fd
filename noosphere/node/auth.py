"""Execute (security): who is calling the node's JSON-RPC API. The operator's CLI presents the
bearer token kept 0600 in the node home; another node signs each request with its node key
(``PeerAuth`` for httpx on the sending side, ``RequestAuthenticator`` on the receiving side, which
also rejects stale timestamps and replayed nonces). Methods that change state need one of the two.

A nonce is remembered for as long as its request's timestamp is inside the acceptance window
(``ReplayGuard``), never less: memory is bounded by a quota per peer and a total, and a request
over either is refused (rate limited), so no amount of traffic makes the node forget a nonce.
"""

from __future__ import annotations

import contextlib
import heapq
import hmac
import secrets
import time
from collections.abc import Generator, Mapping
from pathlib import Path

import httpx

from noosphere.errors import RateLimited, Unauthorized
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


class AuthError(Unauthorized):
    """Credentials were presented but are not valid; the message says why (no secrets in it)."""


#: Live nonces one peer may hold. A nonce lives until its timestamp leaves the window (about
#: ``max_skew_s`` after it was sent), so this allows a sustained 100 signed requests/s per peer
#: with the default 60 s window; more is refused, not forgotten.
DEFAULT_NONCES_PER_PEER = 6_000
#: Live nonces in all (about 21 MB when full, measured): when full, new signed requests are
#: refused until nonces expire. The operator's bearer token is not affected.
DEFAULT_NONCES_TOTAL = 100_000


class ReplayGuard:
    """The nonces of accepted signed requests, each kept until its timestamp is older than the
    window (after which the timestamp check refuses the request anyway). Bounded by a quota per
    peer and a total; when either is reached, new requests are refused, live nonces stay."""

    def __init__(self, *, window_ms: int, per_peer: int, total: int) -> None:
        self.window_ms = window_ms
        self.per_peer = per_peer
        self.total = total
        self._nonces: dict[str, dict[str, int]] = {}  # peer -> nonce -> forget after (ms)
        self._expiry: list[tuple[int, str, str]] = []  # heap of (forget after, peer, nonce)

    def __len__(self) -> int:
        return len(self._expiry)

    def held_by(self, peer_id: str) -> int:
        return len(self._nonces.get(peer_id, ()))

    def remember(self, peer_id: str, nonce: str, timestamp_ms: int, now_ms: int) -> None:
        """Accept ``nonce`` once. Raises AuthError for a replay and RateLimited when the peer's
        quota or the total is used up. The caller has checked that the timestamp is within
        ``window_ms`` of ``now_ms``."""
        self._forget_expired(now_ms)
        held = self._nonces.get(peer_id)
        if held is not None and nonce in held:
            raise AuthError("replayed request (nonce already used)")
        if held is not None and len(held) >= self.per_peer:
            raise RateLimited(
                f"rate limited: this peer has {len(held)} signed requests inside the"
                f" {self.window_ms // 1000} s replay window (limit {self.per_peer})",
                self._retry_after_s(min(held.values()), now_ms),
            )
        if len(self._expiry) >= self.total:
            raise RateLimited(
                "rate limited: the node holds the most signed requests it remembers"
                f" ({self.total}); try again shortly",
                self._retry_after_s(self._expiry[0][0], now_ms),
            )
        forget_after = timestamp_ms + self.window_ms
        self._nonces.setdefault(peer_id, {})[nonce] = forget_after
        heapq.heappush(self._expiry, (forget_after, peer_id, nonce))

    def _forget_expired(self, now_ms: int) -> None:
        while self._expiry and self._expiry[0][0] < now_ms:
            _, peer_id, nonce = heapq.heappop(self._expiry)
            held = self._nonces[peer_id]
            del held[nonce]
            if not held:
                del self._nonces[peer_id]

    @staticmethod
    def _retry_after_s(forget_after_ms: int, now_ms: int) -> float:
        return max(0.0, (forget_after_ms - now_ms + 1) / 1000)


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

    def __init__(
        self,
        token: str,
        *,
        max_skew_s: float = 60.0,
        nonces_per_peer: int = DEFAULT_NONCES_PER_PEER,
        nonces_total: int = DEFAULT_NONCES_TOTAL,
    ) -> None:
        self._token = token.encode("ascii")
        self._max_skew_ms = int(max_skew_s * 1000)
        self.replay_guard = ReplayGuard(
            window_ms=self._max_skew_ms, per_peer=nonces_per_peer, total=nonces_total
        )

    def authenticate(
        self, headers: Mapping[str, str], http_method: str, path: str, body: bytes
    ) -> str | None:
        """The principal; raises AuthError for bad credentials and RateLimited for a valid
        signed request over the replay memory's quotas."""
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
        self.replay_guard.remember(peer_id, nonce, timestamp_ms, now_ms)
        return peer_id


class BearerAuth(httpx.Auth):
    """httpx auth presenting the operator token (used by the CLI against its own node)."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request
