"""Request authentication: operator token file, signed peer requests, replay and tampering."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from noosphere.node.auth import (
    AuthError,
    BearerAuth,
    PeerAuth,
    RateLimited,
    ReplayGuard,
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


def _signed(key: NodeKey) -> Headers:
    return Headers(_lower(signed_headers(key, "POST", "/", BODY)))


def test_a_flood_of_own_requests_does_not_make_the_node_forget_a_nonce() -> None:
    """The attack: capture (or keep) one signed request, send enough new ones to push its nonce
    out of the replay memory, replay it. The flood is refused instead of evicting anything."""
    key = NodeKey.generate()
    auth = RequestAuthenticator("t" * 40, nonces_per_peer=10, nonces_total=1_000)
    captured = _signed(key)
    assert auth.authenticate(captured, "POST", "/", BODY) == key.peer_id
    refused = 0
    for _ in range(50):
        try:
            auth.authenticate(_signed(key), "POST", "/", BODY)
        except RateLimited as exc:
            refused += 1
            assert "rate limited" in str(exc) and exc.retry_after_s > 0
    assert refused == 41  # 9 more fit in the quota of 10
    with pytest.raises(AuthError, match="replayed"):
        auth.authenticate(captured, "POST", "/", BODY)
    honest = NodeKey.generate()  # another peer is not affected
    assert auth.authenticate(_signed(honest), "POST", "/", BODY) == honest.peer_id


def test_a_full_replay_memory_refuses_new_requests_but_not_the_operator() -> None:
    auth = RequestAuthenticator("t" * 40, nonces_per_peer=5, nonces_total=20)
    first = NodeKey.generate()
    captured = _signed(first)
    auth.authenticate(captured, "POST", "/", BODY)
    sybils = [NodeKey.generate() for _ in range(4)]
    for sybil in sybils:
        for _ in range(5):
            with contextlib.suppress(RateLimited):
                auth.authenticate(_signed(sybil), "POST", "/", BODY)
    assert len(auth.replay_guard) == 20
    with pytest.raises(RateLimited, match="most signed requests"):
        auth.authenticate(_signed(NodeKey.generate()), "POST", "/", BODY)
    with pytest.raises(AuthError, match="replayed"):
        auth.authenticate(captured, "POST", "/", BODY)
    bearer = Headers(authorization="Bearer " + "t" * 40)
    assert auth.authenticate(bearer, "POST", "/", BODY) == LOCAL_PRINCIPAL


def test_nonces_are_forgotten_only_once_their_timestamp_left_the_window() -> None:
    guard = ReplayGuard(window_ms=60_000, per_peer=2, total=10)
    guard.remember("p", "n1", timestamp_ms=1_000_000, now_ms=1_000_000)
    guard.remember("p", "n2", timestamp_ms=1_030_000, now_ms=1_000_000)  # 30 s ahead
    with pytest.raises(RateLimited) as refused:
        guard.remember("p", "n3", timestamp_ms=1_000_000, now_ms=1_000_000)
    assert refused.value.retry_after_s == pytest.approx(60.001)
    with pytest.raises(AuthError, match="replayed"):  # last moment its timestamp is accepted
        guard.remember("p", "n1", timestamp_ms=1_000_000, now_ms=1_060_000)
    guard.remember("p", "n3", timestamp_ms=1_060_001, now_ms=1_060_001)  # n1 is gone now
    assert guard.held_by("p") == 2 and len(guard) == 2
    with pytest.raises(AuthError, match="replayed"):  # n2 still inside its window
        guard.remember("p", "n2", timestamp_ms=1_030_000, now_ms=1_089_999)


@st.composite
def _guard_operations(draw: st.DrawFn) -> list[tuple[int, int, int, int]]:
    """(peer, nonce, timestamp offset from now, clock advance) steps."""
    step = st.tuples(
        st.integers(0, 3), st.integers(0, 12), st.integers(-1_000, 1_000), st.integers(0, 600)
    )
    return draw(st.lists(step, max_size=200))


@given(_guard_operations(), st.integers(1, 6), st.integers(1, 15))
def test_replay_guard_matches_the_model(
    steps: list[tuple[int, int, int, int]], per_peer: int, total: int
) -> None:
    """Against a model that remembers every nonce for its whole window: a live nonce is always
    refused as a replay, a request is refused as rate limited exactly when a quota is used up,
    and the guard holds exactly the live nonces."""
    window = 1_000
    guard = ReplayGuard(window_ms=window, per_peer=per_peer, total=total)
    live: dict[tuple[str, str], int] = {}  # (peer, nonce) -> forget after
    now = 10_000
    for peer_n, nonce_n, offset, advance in steps:
        now += advance
        peer, nonce, timestamp = f"peer{peer_n}", f"nonce{nonce_n}", now + offset
        live = {k: t for k, t in live.items() if t >= now}
        held = sum(1 for p, _ in live if p == peer)
        try:
            guard.remember(peer, nonce, timestamp, now)
            outcome = "accepted"
        except AuthError:
            outcome = "replay"
        except RateLimited:
            outcome = "limited"
        if (peer, nonce) in live:
            assert outcome == "replay"
        elif held >= per_peer or len(live) >= total:
            assert outcome == "limited"
        else:
            assert outcome == "accepted"
            live[(peer, nonce)] = timestamp + window
        assert len(guard) == len(live)
        assert guard.held_by(peer) == sum(1 for p, _ in live if p == peer)


def test_httpx_auth_classes_set_the_headers() -> None:
    key = NodeKey.generate()
    request = httpx.Request("POST", "http://127.0.0.1:1/", content=BODY)
    signed = next(PeerAuth(key).auth_flow(request))
    auth = RequestAuthenticator("t" * 40)
    headers = Headers({k.lower(): v for k, v in signed.headers.items()})
    assert auth.authenticate(headers, "POST", "/", BODY) == key.peer_id
    bearer = next(BearerAuth("abc").auth_flow(httpx.Request("POST", "http://x/")))
    assert bearer.headers["Authorization"] == "Bearer abc"
