"""The payment reference a message to a priced agent carries (with the requester's EIP-712
authorization binding the escrow to one caller and one message), the escrow ids a requester
derives, the result commitment and the dispute parameters (Settle's wire formats)."""

from __future__ import annotations

import contextlib

import pytest
from eth_account import Account
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from web3 import Web3

from noosphere.protocol import NodeKey
from noosphere.protocol.canonical import canonical_json
from noosphere.protocol.identity import peer_id_from_public_key
from noosphere.protocol.payment import (
    MAX_MESSAGE_ID_CHARS,
    EscrowDisputeParams,
    EscrowReleaseParams,
    InvalidAuthorization,
    PaymentRef,
    PaymentTerms,
    authorization_signer,
    authorize_payment,
    escrow_id_for,
    result_hash,
)

ESCROW = "0x" + "ab" * 20
ESCROW_ID = "0x" + "0f" * 32


def test_reference_round_trips_in_camel_case() -> None:
    ref = PaymentRef(chain_id=31337, escrow=ESCROW, escrow_id=ESCROW_ID)
    wire = ref.to_wire()
    assert wire == {"chainId": 31337, "escrow": ESCROW, "escrowId": ESCROW_ID}
    assert PaymentRef.model_validate(wire) == ref


@pytest.mark.parametrize(
    "change",
    [
        {"chainId": 0},
        {"escrow": "0x1234"},
        {"escrow": "ab" * 21},
        {"escrowId": "0x" + "0F" * 32},  # ids are lowercase: one spelling per escrow
        {"escrowId": "0x" + "0f" * 31},
        {"extra": 1},
    ],
)
def test_malformed_references_are_rejected(change: dict[str, object]) -> None:
    wire = {"chainId": 31337, "escrow": ESCROW, "escrowId": ESCROW_ID, **change}
    with pytest.raises(ValidationError):
        PaymentRef.model_validate(wire)


@given(st.dictionaries(st.sampled_from(["chainId", "escrow", "escrowId"]), st.text(max_size=80)))
def test_arbitrary_text_fields_never_crash_the_parser(fields: dict[str, str]) -> None:
    try:
        ref = PaymentRef.model_validate(fields)
    except ValidationError:
        return
    assert ref.escrow_id.startswith("0x") and len(ref.escrow_id) == 66


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60), st.integers(0, 99))
def test_escrow_ids_are_valid_bytes32_and_unique_per_attempt(
    peer: str, submission: str, attempt: int
) -> None:
    first = escrow_id_for(peer, submission, attempt)
    assert PaymentRef(chain_id=1, escrow=ESCROW, escrow_id=first).escrow_id == first
    assert escrow_id_for(peer, submission, attempt + 1) != first
    assert escrow_id_for(peer + "x", submission, attempt) != first


def test_result_hash_is_domain_separated_and_order_sensitive() -> None:
    artifacts = [{"artifactId": "a", "parts": [{"text": "391"}]}]
    digest = result_hash(canonical_json(artifacts))
    assert digest.startswith("0x") and len(digest) == 66
    assert digest != result_hash(canonical_json([*artifacts, *artifacts]))
    assert digest == result_hash(canonical_json([{"parts": [{"text": "391"}], "artifactId": "a"}]))


def test_terms_carry_everything_a_requester_needs() -> None:
    terms = PaymentTerms(
        agent="12D3KooW/x",
        price="5",
        token=ESCROW,
        pay_to=ESCROW,
        chain_id=31337,
        escrow=ESCROW,
        min_deadline_s=30,
        reason="no payment",
    )
    assert set(terms.to_wire()) == {
        "agent",
        "price",
        "token",
        "payTo",
        "chainId",
        "escrow",
        "minDeadlineS",
        "reason",
        "arbiters",
        "arbiterRequired",
    }


# ------------------------------------------------------------------ payment authorization

REQUESTER = Account.from_key("0x" + "42" * 32)
PEERS = st.binary(min_size=32, max_size=32).map(peer_id_from_public_key)
BYTES32 = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
ADDRESSES = st.binary(min_size=20, max_size=20).map(lambda b: Web3.to_checksum_address(b))
MESSAGE_IDS = st.text(min_size=1, max_size=MAX_MESSAGE_ID_CHARS)


def _authorized(
    chain_id: int = 31337,
    escrow: str = ESCROW,
    escrow_id: str = ESCROW_ID,
    principal: str | None = None,
    message_id: str = "m-1",
) -> PaymentRef:
    ref = PaymentRef(chain_id=chain_id, escrow=escrow, escrow_id=escrow_id)
    peer = principal or NodeKey.from_seed(bytes(32)).peer_id
    return authorize_payment(ref, REQUESTER, peer, message_id)


def test_an_authorized_reference_round_trips_and_recovers_its_signer() -> None:
    ref = _authorized()
    wire = ref.to_wire()
    assert set(wire["authorization"]) == {"principal", "messageId", "signature"}
    again = PaymentRef.model_validate(wire)
    assert again == ref
    assert authorization_signer(again) == REQUESTER.address


@settings(max_examples=40, deadline=None)
@given(
    chain_id=st.integers(1, 2**63),
    escrow=ADDRESSES,
    escrow_id=BYTES32,
    principal=PEERS,
    message_id=MESSAGE_IDS,
    field=st.sampled_from(["chainId", "escrow", "escrowId", "principal", "messageId"]),
    other_chain=st.integers(1, 2**63),
    other_escrow=ADDRESSES,
    other_id=BYTES32,
    other_peer=PEERS,
    other_message=MESSAGE_IDS,
)
def test_tampering_with_any_field_breaks_the_authorization(
    chain_id: int,
    escrow: str,
    escrow_id: str,
    principal: str,
    message_id: str,
    field: str,
    other_chain: int,
    other_escrow: str,
    other_id: str,
    other_peer: str,
    other_message: str,
) -> None:
    ref = _authorized(chain_id, escrow, escrow_id, principal, message_id)
    wire = PaymentRef.model_validate(ref.to_wire()).to_wire()  # through the wire and back
    assert authorization_signer(PaymentRef.model_validate(wire)) == REQUESTER.address
    changes = {
        "chainId": other_chain,
        "escrow": other_escrow,
        "escrowId": other_id,
        "principal": other_peer,
        "messageId": other_message,
    }
    assume(
        str(changes[field]).lower()
        != str(wire.get(field, wire["authorization"].get(field))).lower()
    )
    if field in ("principal", "messageId"):
        wire["authorization"] = {**wire["authorization"], field: changes[field]}
    else:
        wire[field] = changes[field]
    tampered = PaymentRef.model_validate(wire)
    try:
        signer = authorization_signer(tampered)
    except InvalidAuthorization:
        return
    assert signer != REQUESTER.address


@settings(max_examples=40, deadline=None)
@given(position=st.integers(0, 129), digit=st.sampled_from("0123456789abcdef"))
def test_a_changed_signature_digit_never_recovers_the_requester(position: int, digit: str) -> None:
    ref = _authorized()
    auth = ref.authorization
    assert auth is not None
    body = auth.signature[2:]
    assume(body[position] != digit)
    forged = "0x" + body[:position] + digit + body[position + 1 :]
    tampered = ref.model_copy(
        update={"authorization": auth.model_copy(update={"signature": forged})}
    )
    with contextlib.suppress(InvalidAuthorization):
        assert authorization_signer(tampered) != REQUESTER.address


def test_the_same_signature_in_another_encoding_is_refused() -> None:
    """(r, n - s, v ^ 1) and v = 0/1 or EIP-155 style recover the same key: only eth_account's
    canonical form (low s, v 27/28) is accepted, so an authorization has one spelling."""
    ref = _authorized()
    auth = ref.authorization
    assert auth is not None
    sig = bytes.fromhex(auth.signature[2:])
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
    for other in (sig[:32] + high_s + bytes([sig[64] ^ 1]), sig[:64] + bytes([sig[64] - 27])):
        tampered = ref.model_copy(
            update={"authorization": auth.model_copy(update={"signature": "0x" + other.hex()})}
        )
        with pytest.raises(InvalidAuthorization, match="canonical"):
            authorization_signer(tampered)


def test_a_reference_without_authorization_has_no_signer() -> None:
    with pytest.raises(InvalidAuthorization, match="no authorization"):
        authorization_signer(PaymentRef(chain_id=1, escrow=ESCROW, escrow_id=ESCROW_ID))


@pytest.mark.parametrize(
    "change",
    [
        {"principal": "not-a-peer-id"},
        {"principal": ""},
        {"messageId": ""},
        {"messageId": "m" * (MAX_MESSAGE_ID_CHARS + 1)},
        {"signature": "0x" + "ab" * 64},  # 64 bytes, not 65
        {"signature": "0x" + "AB" * 65},  # one spelling: lowercase
        {"signature": "ab" * 65},
        {"extra": 1},
    ],
)
def test_malformed_authorizations_are_rejected(change: dict[str, object]) -> None:
    wire = _authorized().to_wire()
    wire["authorization"] = {**wire["authorization"], **change}
    with pytest.raises(ValidationError):
        PaymentRef.model_validate(wire)


@given(
    st.dictionaries(st.sampled_from(["principal", "messageId", "signature"]), st.text(max_size=140))
)
def test_arbitrary_authorization_fields_never_crash_the_parser(fields: dict[str, str]) -> None:
    wire = {"chainId": 1, "escrow": ESCROW, "escrowId": ESCROW_ID, "authorization": fields}
    try:
        ref = PaymentRef.model_validate(wire)
    except ValidationError:
        return
    with contextlib.suppress(InvalidAuthorization):
        authorization_signer(ref)


def test_terms_name_the_accepted_arbiters() -> None:
    terms = PaymentTerms(
        agent="a",
        price="5",
        token=ESCROW,
        pay_to=ESCROW,
        chain_id=1,
        escrow=ESCROW,
        min_deadline_s=30,
        reason="r",
        arbiters=[ESCROW],
        arbiter_required=True,
    )
    wire = terms.to_wire()
    assert wire["arbiters"] == [ESCROW] and wire["arbiterRequired"] is True
    assert PaymentTerms.model_validate(wire) == terms


@pytest.mark.parametrize(
    ("params", "ok"),
    [
        ({"escrowId": ESCROW_ID, "reason": "junk"}, True),
        ({"escrowId": ESCROW_ID, "reason": "junk", "deliveredHash": ESCROW_ID}, True),
        ({"escrowId": ESCROW_ID, "reason": ""}, False),
        ({"escrowId": ESCROW_ID, "reason": "é" * 513}, False),  # 1,026 bytes in UTF-8
        ({"escrowId": ESCROW_ID, "reason": "é" * 512}, True),
        ({"escrowId": "0x12", "reason": "junk"}, False),
        ({"escrowId": ESCROW_ID, "reason": "junk", "deliveredHash": "0x12"}, False),
    ],
)
def test_dispute_params_are_validated(params: dict[str, str], ok: bool) -> None:
    if ok:
        assert EscrowDisputeParams.model_validate(params).to_wire() == params
    else:
        with pytest.raises(ValidationError):
            EscrowDisputeParams.model_validate(params)
    assert EscrowReleaseParams.model_validate({"escrowId": ESCROW_ID}).escrow_id == ESCROW_ID
