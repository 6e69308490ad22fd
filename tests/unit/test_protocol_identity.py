"""Node identity: Ed25519 keys and libp2p peer ids (noosphere.protocol.identity)."""

from __future__ import annotations

import base58
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from libp2p.crypto import ed25519 as libp2p_ed25519
from libp2p.crypto import secp256k1 as libp2p_secp256k1
from libp2p.peer.id import ID

from noosphere.protocol import (
    InvalidPeerId,
    NodeKey,
    peer_id_from_public_key,
    public_key_from_peer_id,
    verify_signature,
)

FAST = settings(max_examples=50, deadline=None, database=None)

# RFC 8032 section 7.1, TEST 1.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC_KEY = bytes.fromhex(
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)
RFC8032_EMPTY_MESSAGE_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
RFC8032_PEER_ID = "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV"
# A real RSA peer id (an IPFS bootstrap node): a sha2-256 multihash, so no embedded key.
RSA_PEER_ID = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"

SEEDS = st.binary(min_size=32, max_size=32)


def _libp2p_peer_id(seed: bytes) -> str:
    key_pair = libp2p_ed25519.create_new_key_pair(seed)
    return ID.from_pubkey(key_pair.public_key).to_base58()


@pytest.fixture(scope="module")
def vector_key() -> NodeKey:
    return NodeKey.from_seed(RFC8032_SEED)


# ---- known answers -----------------------------------------------------------------------------


def test_from_seed_gives_the_rfc8032_public_key(vector_key):
    assert vector_key.public_key == RFC8032_PUBLIC_KEY


def test_seed_property_returns_the_seed(vector_key):
    assert vector_key.seed == RFC8032_SEED


def test_sign_gives_the_rfc8032_signature_of_the_empty_message(vector_key):
    assert vector_key.sign(b"") == RFC8032_EMPTY_MESSAGE_SIGNATURE


def test_peer_id_of_the_rfc8032_key(vector_key):
    assert vector_key.peer_id == RFC8032_PEER_ID


def test_peer_id_of_the_rfc8032_key_matches_libp2p(vector_key):
    assert vector_key.peer_id == _libp2p_peer_id(RFC8032_SEED)


def test_libp2p_derives_the_same_public_key_from_the_seed():
    key_pair = libp2p_ed25519.create_new_key_pair(RFC8032_SEED)
    assert key_pair.public_key.to_bytes() == RFC8032_PUBLIC_KEY


def test_public_key_from_peer_id_recovers_the_rfc8032_public_key():
    assert public_key_from_peer_id(RFC8032_PEER_ID) == RFC8032_PUBLIC_KEY


# ---- round trips and cross-implementation ----------------------------------------------------


@FAST
@given(SEEDS)
def test_peer_id_round_trips_through_public_key(seed):
    key = NodeKey.from_seed(seed)
    assert public_key_from_peer_id(peer_id_from_public_key(key.public_key)) == key.public_key


@FAST
@given(SEEDS)
def test_peer_id_agrees_with_libp2p_for_random_seeds(seed):
    assert NodeKey.from_seed(seed).peer_id == _libp2p_peer_id(seed)


@FAST
@given(SEEDS)
def test_libp2p_peer_id_parses_back_to_our_public_key(seed):
    assert public_key_from_peer_id(_libp2p_peer_id(seed)) == NodeKey.from_seed(seed).public_key


@FAST
@given(SEEDS)
def test_peer_id_has_the_ed25519_identity_multihash_form(seed):
    peer_id = NodeKey.from_seed(seed).peer_id
    assert peer_id.startswith("12D3KooW")
    assert base58.b58decode(peer_id)[:4] == b"\x00\x24\x08\x01"


def test_generated_keys_are_distinct_and_valid():
    first, second = NodeKey.generate(), NodeKey.generate()
    assert first.peer_id != second.peer_id
    assert public_key_from_peer_id(first.peer_id) == first.public_key


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_peer_id_from_public_key_rejects_wrong_key_length(length):
    with pytest.raises(ValueError):
        peer_id_from_public_key(b"\x01" * length)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_from_seed_rejects_wrong_seed_length(length):
    with pytest.raises(ValueError):
        NodeKey.from_seed(b"\x01" * length)


# ---- invalid peer ids ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "peer_id",
    [
        "",
        "not a peer id",
        RSA_PEER_ID,
        RFC8032_PEER_ID[:-1],
        RFC8032_PEER_ID + "1",
        RFC8032_PEER_ID[:40],
        "12D3KooW" + "0" * 44,  # '0' is not in the base58 alphabet
        "12D3KooW" + "I" * 44,  # nor is 'I'
        "1" * 52,  # base58 of zero bytes: right length, wrong prefix
        "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5p\u00e9",
        "z" + RFC8032_PEER_ID,  # multibase-prefixed form is not accepted
    ],
)
def test_public_key_from_peer_id_rejects_invalid_ids(peer_id):
    with pytest.raises(InvalidPeerId):
        public_key_from_peer_id(peer_id)


@pytest.mark.parametrize("value", [None, 42, RFC8032_PEER_ID.encode()])
def test_public_key_from_peer_id_rejects_non_strings(value):
    with pytest.raises(InvalidPeerId):
        public_key_from_peer_id(value)


def test_public_key_from_peer_id_rejects_secp256k1_peer_ids():
    key_pair = libp2p_secp256k1.create_new_key_pair(b"\x07" * 32)
    peer_id = ID.from_pubkey(key_pair.public_key).to_base58()
    with pytest.raises(InvalidPeerId):
        public_key_from_peer_id(peer_id)


def test_public_key_from_peer_id_rejects_wrong_key_type_with_ed25519_length():
    # Same multihash framing and length, but KeyType 2 (Secp256k1) in the protobuf.
    raw = b"\x00\x24\x08\x02\x12\x20" + RFC8032_PUBLIC_KEY
    with pytest.raises(InvalidPeerId):
        public_key_from_peer_id(base58.b58encode(raw).decode())


@FAST
@given(st.text(max_size=80))
def test_public_key_from_peer_id_raises_only_invalid_peer_id_on_arbitrary_text(text):
    try:
        key = public_key_from_peer_id(text)
    except InvalidPeerId:
        return
    assert len(key) == 32


@FAST
@given(st.binary(max_size=48))
def test_public_key_from_peer_id_raises_only_invalid_peer_id_on_arbitrary_base58(raw):
    text = base58.b58encode(raw).decode()
    try:
        key = public_key_from_peer_id(text)
    except InvalidPeerId:
        return
    assert raw == b"\x00\x24\x08\x01\x12\x20" + key


# ---- signatures --------------------------------------------------------------------------------


def test_verify_signature_accepts_a_valid_signature(vector_key):
    assert verify_signature(RFC8032_PEER_ID, b"data", vector_key.sign(b"data"))


def test_verify_signature_rejects_another_key():
    other = NodeKey.from_seed(b"\x02" * 32)
    assert not verify_signature(RFC8032_PEER_ID, b"data", other.sign(b"data"))


def test_verify_signature_rejects_other_data(vector_key):
    assert not verify_signature(RFC8032_PEER_ID, b"data!", vector_key.sign(b"data"))


def test_verify_signature_rejects_a_flipped_signature_bit(vector_key):
    signature = bytearray(vector_key.sign(b"data"))
    signature[10] ^= 0x01
    assert not verify_signature(RFC8032_PEER_ID, b"data", bytes(signature))


@pytest.mark.parametrize("peer_id", ["", "garbage", RSA_PEER_ID])
def test_verify_signature_returns_false_for_invalid_peer_ids(vector_key, peer_id):
    assert not verify_signature(peer_id, b"data", vector_key.sign(b"data"))


@FAST
@given(st.binary(max_size=100))
def test_verify_signature_returns_false_for_garbage_signatures(signature):
    assert not verify_signature(RFC8032_PEER_ID, b"data", signature)


# ---- key storage and repr ----------------------------------------------------------------------


def test_pem_round_trip_keeps_the_key(vector_key):
    restored = NodeKey.from_pem(vector_key.to_pem())
    assert restored.seed == RFC8032_SEED
    assert restored.peer_id == RFC8032_PEER_ID


def test_to_pem_is_unencrypted_pkcs8(vector_key):
    assert vector_key.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_from_pem_rejects_a_non_ed25519_key():
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError):
        NodeKey.from_pem(pem)


def test_from_pem_rejects_garbage():
    with pytest.raises(ValueError):
        NodeKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_repr_shows_the_peer_id(vector_key):
    assert repr(vector_key) == f"NodeKey(peer_id={RFC8032_PEER_ID!r})"


@FAST
@given(SEEDS)
def test_repr_never_reveals_the_secret(seed):
    key = NodeKey.from_seed(seed)
    text = repr(key) + str(key)
    pem_body = b"".join(key.to_pem().splitlines()[1:-1]).decode()
    assert pem_body not in text
    assert "PRIVATE KEY" not in text
    assert seed.hex() not in text
    assert seed.hex().upper() not in text
    assert str(seed) not in text
