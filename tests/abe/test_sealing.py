"""Encryption to a node's Ed25519 identity (via its X25519 twin) and signed attribute
attestations."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from noosphere.protocol import NodeKey
from noosphere.protocol.attestation import (
    Attestation,
    AttestationError,
    sign_attestation,
    verify_attestation,
)
from noosphere.protocol.identity import InvalidPeerId, peer_id_from_public_key
from noosphere.protocol.sealing import (
    SealError,
    open_sealed_to_node,
    seal_to_node,
    x25519_private_key,
    x25519_public_key,
)

# --- sealing to a node ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32))
def test_x25519_public_key_from_peer_id_matches_the_private_derivation(seed: bytes) -> None:
    key = NodeKey.from_seed(seed)
    derived = x25519_private_key(key).public_key().public_bytes_raw()
    assert x25519_public_key(key.peer_id).public_bytes_raw() == derived


def test_x25519_keys_agree_on_a_shared_secret() -> None:
    node = NodeKey.generate()
    other = X25519PrivateKey.generate()
    assert x25519_private_key(node).exchange(other.public_key()) == other.exchange(
        x25519_public_key(node.peer_id)
    )


def test_unusable_ed25519_point_is_refused() -> None:
    y_one = (1).to_bytes(32, "little")  # u = (1 + y) / (1 - y) has no value
    with pytest.raises(SealError, match="usable"):
        x25519_public_key(peer_id_from_public_key(y_one))
    with pytest.raises(InvalidPeerId):
        seal_to_node("not-a-peer-id", b"x")


@settings(max_examples=20, deadline=None)
@given(plaintext=st.binary(max_size=300), associated=st.binary(max_size=40))
def test_sealed_data_opens_only_with_the_right_key_and_associated_data(
    plaintext: bytes, associated: bytes
) -> None:
    node, other = NodeKey.generate(), NodeKey.generate()
    sealed = seal_to_node(node.peer_id, plaintext, associated)
    assert len(sealed) == 32 + 12 + len(plaintext) + 16
    assert open_sealed_to_node(node, sealed, associated) == plaintext
    with pytest.raises(SealError, match="not sealed to this node"):
        open_sealed_to_node(other, sealed, associated)
    with pytest.raises(SealError):
        open_sealed_to_node(node, sealed, associated + b"!")


def test_tampered_or_truncated_sealed_data_is_refused() -> None:
    node = NodeKey.generate()
    sealed = seal_to_node(node.peer_id, b"attribute key", b"ad")
    for position in (0, 31, 32, 43, 44, len(sealed) - 1):
        changed = sealed[:position] + bytes([sealed[position] ^ 1]) + sealed[position + 1 :]
        with pytest.raises(SealError):
            open_sealed_to_node(node, changed, b"ad")
    with pytest.raises(SealError, match="truncated"):
        open_sealed_to_node(node, sealed[:59], b"ad")
    with pytest.raises(SealError):
        open_sealed_to_node(node, sealed + b"x", b"ad")
    low_order = bytes(32) + sealed[32:]  # the all-zero X25519 point: no shared secret
    with pytest.raises(SealError):
        open_sealed_to_node(node, low_order, b"ad")


def test_sealing_is_randomized() -> None:
    node = NodeKey.generate()
    assert seal_to_node(node.peer_id, b"x") != seal_to_node(node.peer_id, b"x")


# --- attestations --------------------------------------------------------------------------------

NOW = int(time.time() * 1000)


@pytest.fixture(scope="module")
def issuer() -> NodeKey:
    return NodeKey.generate()


@pytest.fixture(scope="module")
def subject() -> NodeKey:
    return NodeKey.generate()


def attestation(issuer: NodeKey, subject: NodeKey, **changes: object) -> Attestation:
    fields: dict[str, object] = {
        "authority": "ab" * 16,
        "issuer": issuer.peer_id,
        "epoch": 1,
        "subject": subject.peer_id,
        "attributes": ["org:acme", "role:analyst"],
        "issued_at": NOW - 1000,
        "expires_at": NOW + 60_000,
    }
    fields.update(changes)
    return sign_attestation(Attestation(**fields), issuer)  # type: ignore[arg-type]


def test_attestation_verifies(issuer: NodeKey, subject: NodeKey) -> None:
    signed = attestation(issuer, subject)
    assert signed.signature and signed.protected
    assert verify_attestation(signed, subject=subject.peer_id, now_ms=NOW, issuer=issuer.peer_id)
    wire = signed.model_dump_json(by_alias=True)
    assert '"issuedAt"' in wire
    again = Attestation.model_validate_json(wire)
    assert verify_attestation(again, subject=subject.peer_id, now_ms=NOW)


def test_attestation_checks_subject_issuer_and_window(issuer: NodeKey, subject: NodeKey) -> None:
    signed = attestation(issuer, subject)
    with pytest.raises(AttestationError, match="about another node"):
        verify_attestation(signed, subject=issuer.peer_id, now_ms=NOW)
    with pytest.raises(AttestationError, match="issued by another authority"):
        verify_attestation(signed, subject=subject.peer_id, now_ms=NOW, issuer=subject.peer_id)
    with pytest.raises(AttestationError, match="expired or not yet valid"):
        verify_attestation(signed, subject=subject.peer_id, now_ms=NOW + 60_000)
    with pytest.raises(AttestationError, match="expired or not yet valid"):
        verify_attestation(signed, subject=subject.peer_id, now_ms=NOW - 1001)


@pytest.mark.parametrize(
    "change",
    [
        {"attributes": ["org:acme", "role:admin"]},
        {"attributes": ["org:acme"]},
        {"epoch": 2},
        {"authority": "cd" * 16},
        {"expires_at": NOW + 10**9},
    ],
)
def test_tampered_attestation_is_rejected(
    issuer: NodeKey, subject: NodeKey, change: dict[str, object]
) -> None:
    tampered = attestation(issuer, subject).model_copy(update=change)
    with pytest.raises(AttestationError, match="signature"):
        verify_attestation(tampered, subject=subject.peer_id, now_ms=NOW)


def test_attestation_signed_by_someone_else_is_rejected(issuer: NodeKey, subject: NodeKey) -> None:
    forger = NodeKey.generate()
    with pytest.raises(AttestationError, match="issuer is not the signing key"):
        sign_attestation(attestation(issuer, subject).model_copy(update={"issuer": "x"}), issuer)
    forged = attestation(forger, subject).model_copy(update={"issuer": issuer.peer_id})
    with pytest.raises(AttestationError, match="signature"):
        verify_attestation(forged, subject=subject.peer_id, now_ms=NOW)
    garbage = attestation(issuer, subject).model_copy(update={"signature": "!!"})
    with pytest.raises(AttestationError, match="malformed"):
        verify_attestation(garbage, subject=subject.peer_id, now_ms=NOW)


def test_clock_skew_allowance(issuer: NodeKey, subject: NodeKey) -> None:
    signed = attestation(issuer, subject, issued_at=NOW + 1000)  # verifier's clock is behind
    with pytest.raises(AttestationError, match="not yet valid"):
        verify_attestation(signed, subject=subject.peer_id, now_ms=NOW)
    assert verify_attestation(signed, subject=subject.peer_id, now_ms=NOW, skew_ms=2000)
    with pytest.raises(AttestationError, match="expired"):  # no allowance past expiry
        verify_attestation(signed, subject=subject.peer_id, now_ms=NOW + 60_000, skew_ms=2000)
