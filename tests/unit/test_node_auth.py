"""Request authentication: operator token file, signed peer requests, replay and tampering."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import httpx
import pytest

from noosphere.node.auth import (
    AuthError,
    BearerAuth,
    PeerAuth,
    RequestAuthenticator,
    load_or_create_token,
    read_token,
    signed_headers,
)
from noosphere.node.keystore import KeyFileError
from noosphere.protocol import NodeKey
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL, TIMESTAMP_HEADER

BODY = b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"t"}}'


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


class Headers(dict[str, str]):
    """Case-insensitive lookup like starlette's Headers."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)


def test_token_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    token = load_or_create_token(tmp_path)
    path = tmp_path / "rpc.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 32
    assert load_or_create_token(tmp_path) == token


def test_token_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_or_create_token(tmp_path)
    os.chmod(tmp_path / "rpc.token", 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_token(tmp_path / "rpc.token")


def test_missing_token_file_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="start the node once"):
        read_token(tmp_path / "rpc.token")


def test_bearer_token_gives_the_local_principal() -> None:
    auth = RequestAuthenticator("t" * 40)
    principal = auth.authenticate(Headers(authorization="Bearer " + "t" * 40), "POST", "/", BODY)
    assert principal == LOCAL_PRINCIPAL


@pytest.mark.parametrize("value", ["Bearer wrong", "Basic " + "t" * 40, "Bearer", "Bearer é"])
def test_wrong_bearer_token_is_an_error(value: str) -> None:
    with pytest.raises(AuthError):
        RequestAuthenticator("t" * 40).authenticate(Headers(authorization=value), "POST", "/", BODY)


def test_no_credentials_is_anonymous() -> None:
    assert RequestAuthenticator("t" * 40).authenticate(Headers(), "POST", "/", BODY) is None


def test_signed_request_gives_the_peer_id_once() -> None:
    key = NodeKey.generate()
    auth = RequestAuthenticator("t" * 40)
    headers = Headers(_lower(signed_headers(key, "POST", "/", BODY)))
    assert auth.authenticate(headers, "POST", "/", BODY) == key.peer_id
    with pytest.raises(AuthError, match="replayed"):
        auth.authenticate(headers, "POST", "/", BODY)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/", BODY + b" "), ("POST", "/other", BODY), ("PUT", "/", BODY)],
)
def test_signature_covers_method_path_and_body(method: str, path: str, body: bytes) -> None:
    key = NodeKey.generate()
    headers = Headers(_lower(signed_headers(key, "POST", "/", BODY)))
    with pytest.raises(AuthError, match="does not verify"):
        RequestAuthenticator("t" * 40).authenticate(headers, method, path, body)


def test_signature_of_another_key_is_rejected() -> None:
    key, other = NodeKey.generate(), NodeKey.generate()
    headers = _lower(signed_headers(key, "POST", "/", BODY))
    headers["noosphere-peer"] = other.peer_id
    with pytest.raises(AuthError, match="does not verify"):
        RequestAuthenticator("t" * 40).authenticate(Headers(headers), "POST", "/", BODY)


def test_stale_timestamp_is_rejected() -> None:
    key = NodeKey.generate()
    headers = _lower(signed_headers(key, "POST", "/", BODY))
    headers[TIMESTAMP_HEADER.lower()] = str(int(time.time() * 1000) - 10 * 60_000)
    with pytest.raises(AuthError, match="window"):
        RequestAuthenticator("t" * 40).authenticate(Headers(headers), "POST", "/", BODY)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("noosphere-timestamp", "soon"),
        ("noosphere-nonce", "short"),
        ("noosphere-peer", "not-a-peer-id"),
        ("noosphere-signature", "!!!"),
    ],
)
def test_malformed_signature_headers_are_rejected(header: str, value: str) -> None:
    key = NodeKey.generate()
    headers = _lower(signed_headers(key, "POST", "/", BODY))
    headers[header] = value
    with pytest.raises(AuthError):
        RequestAuthenticator("t" * 40).authenticate(Headers(headers), "POST", "/", BODY)


def test_nonce_memory_is_bounded() -> None:
    key = NodeKey.generate()
    auth = RequestAuthenticator("t" * 40, nonce_capacity=10)
    for _ in range(50):
        headers = Headers(_lower(signed_headers(key, "POST", "/", BODY)))
        auth.authenticate(headers, "POST", "/", BODY)
    assert len(auth._nonces) <= 10


def test_httpx_auth_classes_set_the_headers() -> None:
    key = NodeKey.generate()
    request = httpx.Request("POST", "http://127.0.0.1:1/", content=BODY)
    signed = next(PeerAuth(key).auth_flow(request))
    auth = RequestAuthenticator("t" * 40)
    headers = Headers({k.lower(): v for k, v in signed.headers.items()})
    assert auth.authenticate(headers, "POST", "/", BODY) == key.peer_id
    bearer = next(BearerAuth("abc").auth_flow(httpx.Request("POST", "http://x/")))
    assert bearer.headers["Authorization"] == "Bearer abc"
