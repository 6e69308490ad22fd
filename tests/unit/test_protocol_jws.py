"""Detached JWS with EdDSA (RFC 7515, RFC 8037) in noosphere.protocol.jws."""

from __future__ import annotations

import hashlib
import hmac
import json

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt import api_jws

from noosphere.protocol import (
    NodeKey,
    SignatureError,
    b64url_decode,
    b64url_encode,
    canonical_json,
    sign_detached,
    verify_detached,
)

FAST = settings(max_examples=100, deadline=None, database=None)

RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
# RFC 8037 Appendix A.4 (the key of A.1 is RFC 8032 TEST 1).
RFC8037_PAYLOAD = b"Example of Ed25519 signing"
RFC8037_PROTECTED = "eyJhbGciOiJFZERTQSJ9"
RFC8037_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)
PAYLOAD = b'{"hello":"world"}'


@pytest.fixture(scope="module")
def key() -> NodeKey:
    return NodeKey.from_seed(RFC8032_SEED)


@pytest.fixture(scope="module")
def other_key() -> NodeKey:
    return NodeKey.from_seed(b"\x42" * 32)


def _protected(header: dict) -> str:
    return b64url_encode(canonical_json(header))


def _signing_input(protected: str, payload: bytes) -> bytes:
    return f"{protected}.{b64url_encode(payload)}".encode("ascii")


def _public_jwk(key: NodeKey) -> jwt.PyJWK:
    return jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(key.public_key)})


def _private_jwk(key: NodeKey) -> jwt.PyJWK:
    return jwt.PyJWK(
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url_encode(key.public_key),
            "d": b64url_encode(key.seed),
        }
    )


# ---- signing -----------------------------------------------------------------------------------


def test_sign_detached_matches_rfc8037_appendix_a4(key):
    assert sign_detached(RFC8037_PAYLOAD, key, {"alg": "EdDSA"}) == (
        RFC8037_PROTECTED,
        RFC8037_SIGNATURE,
    )


def test_sign_detached_default_header_names_the_signer(key):
    protected, _ = sign_detached(PAYLOAD, key)
    assert json.loads(b64url_decode(protected)) == {
        "alg": "EdDSA",
        "kid": key.peer_id,
        "typ": "JOSE",
    }


def test_sign_detached_protected_header_is_canonical_json(key):
    protected, _ = sign_detached(PAYLOAD, key, {"typ": "JOSE", "kid": key.peer_id, "alg": "EdDSA"})
    assert b64url_decode(protected) == canonical_json(
        {"alg": "EdDSA", "kid": key.peer_id, "typ": "JOSE"}
    )


# ---- verification: accepted ------------------------------------------------------------------


def test_verify_detached_accepts_a_default_header_signature(key):
    protected, signature = sign_detached(PAYLOAD, key)
    header = verify_detached(PAYLOAD, protected, signature, key.peer_id)
    assert header == {"alg": "EdDSA", "kid": key.peer_id, "typ": "JOSE"}


@FAST
@given(st.binary(max_size=300))
def test_verify_detached_accepts_any_signed_payload(payload):
    key = NodeKey.from_seed(RFC8032_SEED)
    protected, signature = sign_detached(payload, key)
    verify_detached(payload, protected, signature, key.peer_id)


def test_verify_detached_accepts_a_pyjwt_signature(key):
    token = api_jws.encode(
        PAYLOAD, key=_private_jwk(key), algorithm="EdDSA", headers={"kid": key.peer_id}
    )
    protected, encoded_payload, signature = token.split(".")
    assert b64url_decode(encoded_payload) == PAYLOAD
    assert verify_detached(PAYLOAD, protected, signature, key.peer_id)["kid"] == key.peer_id


def test_pyjwt_accepts_our_signature_as_a_compact_jws(key):
    protected, signature = sign_detached(PAYLOAD, key)
    token = f"{protected}.{b64url_encode(PAYLOAD)}.{signature}"
    decoded = api_jws.decode(token, key=_public_jwk(key), algorithms=["EdDSA"])
    assert decoded == PAYLOAD


# ---- verification: rejected ------------------------------------------------------------------


def test_verify_detached_rejects_a_tampered_payload(key):
    protected, signature = sign_detached(PAYLOAD, key)
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD + b" ", protected, signature, key.peer_id)


def test_verify_detached_rejects_a_tampered_signature(key):
    protected, signature = sign_detached(PAYLOAD, key)
    raw = bytearray(b64url_decode(signature))
    raw[0] ^= 0x80
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, b64url_encode(bytes(raw)), key.peer_id)


def test_verify_detached_rejects_a_signature_checked_against_another_peer(key, other_key):
    protected, signature = sign_detached(PAYLOAD, key)
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, signature, other_key.peer_id)


def test_verify_detached_rejects_a_kid_that_is_not_the_signer(key, other_key):
    # Signed by key but claiming other_key's id, checked against other_key: the kid matches
    # but the signature does not.
    header = {"alg": "EdDSA", "kid": other_key.peer_id}
    protected, signature = sign_detached(PAYLOAD, key, header)
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, signature, other_key.peer_id)


def test_verify_detached_rejects_a_valid_signature_with_a_wrong_kid(key, other_key):
    header = {"alg": "EdDSA", "kid": other_key.peer_id}
    protected, signature = sign_detached(PAYLOAD, key, header)
    with pytest.raises(SignatureError, match="key id"):
        verify_detached(PAYLOAD, protected, signature, key.peer_id)


def test_verify_detached_rejects_a_header_without_kid(key):
    protected, signature = sign_detached(PAYLOAD, key, {"alg": "EdDSA"})
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, signature, key.peer_id)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "eddsa", "ES256", "RS256", "Ed25519"])
def test_verify_detached_rejects_other_algorithms_even_with_a_valid_ed25519_signature(key, alg):
    header = {"alg": alg, "kid": key.peer_id}
    protected, signature = sign_detached(PAYLOAD, key, header)
    with pytest.raises(SignatureError, match="algorithm"):
        verify_detached(PAYLOAD, protected, signature, key.peer_id)


def test_verify_detached_rejects_alg_none_with_an_empty_signature(key):
    protected = _protected({"alg": "none", "kid": key.peer_id})
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, "", key.peer_id)


def test_verify_detached_rejects_hs256_keyed_with_the_public_key(key):
    # Classic algorithm confusion: an HMAC whose secret is the (public) verification key.
    protected = _protected({"alg": "HS256", "kid": key.peer_id})
    mac = hmac.new(key.public_key, _signing_input(protected, PAYLOAD), hashlib.sha256).digest()
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, b64url_encode(mac), key.peer_id)


def test_verify_detached_rejects_a_header_without_alg(key):
    protected, signature = sign_detached(PAYLOAD, key, {"kid": key.peer_id})
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, signature, key.peer_id)


@pytest.mark.parametrize("header_json", [b"[]", b'"EdDSA"', b"null", b"42"])
def test_verify_detached_rejects_a_header_that_is_not_an_object(key, header_json):
    protected = b64url_encode(header_json)
    signature = b64url_encode(key.sign(_signing_input(protected, PAYLOAD)))
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, signature, key.peer_id)


@pytest.mark.parametrize("header_bytes", [b"{", b"not json", b"\xff\xfe", b""])
def test_verify_detached_rejects_a_header_that_is_not_json(key, header_bytes):
    _, signature = sign_detached(PAYLOAD, key)
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, b64url_encode(header_bytes), signature, key.peer_id)


def test_verify_detached_rejects_a_padded_protected_header(key):
    protected, signature = sign_detached(PAYLOAD, key)
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected + "=", signature, key.peer_id)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s + "==",
        lambda s: s.replace("-", "+").replace("_", "/") + "+/",
        lambda s: s[:10] + " " + s[10:],
        lambda s: s[:-1],
        lambda s: "!" + s,
    ],
    ids=["padding", "standard-alphabet", "space", "length-1-mod-4", "foreign-char"],
)
def test_verify_detached_rejects_malformed_base64_signatures(key, mangle):
    protected, signature = sign_detached(PAYLOAD, key)
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, mangle(signature), key.peer_id)


@FAST
@given(protected=st.text(max_size=60), signature=st.text(max_size=100))
def test_verify_detached_raises_only_signature_error_on_arbitrary_text(protected, signature):
    key = NodeKey.from_seed(RFC8032_SEED)
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, signature, key.peer_id)


@FAST
@given(header=st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.none(), max_size=4))
def test_verify_detached_raises_only_signature_error_on_arbitrary_headers(header):
    key = NodeKey.from_seed(RFC8032_SEED)
    protected = _protected(header)
    signature = b64url_encode(key.sign(_signing_input(protected, PAYLOAD)))
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, signature, key.peer_id)


def test_verify_detached_rejects_an_invalid_peer_id(key):
    protected, signature = sign_detached(PAYLOAD, key, {"alg": "EdDSA", "kid": "garbage"})
    with pytest.raises(SignatureError):
        verify_detached(PAYLOAD, protected, signature, "garbage")
