"""The payment reference a message to a priced agent carries, the escrow ids a requester derives
and the result commitment (Settle's wire formats)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from noosphere.protocol.canonical import canonical_json
from noosphere.protocol.payment import PaymentRef, PaymentTerms, escrow_id_for, result_hash

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
        agent="12D3KooW/x", price="5", token=ESCROW, pay_to=ESCROW, chain_id=31337,
        escrow=ESCROW, min_deadline_s=30, reason="no payment",
    )  # fmt: skip
    assert set(terms.to_wire()) == {
        "agent", "price", "token", "payTo", "chainId", "escrow", "minDeadlineS", "reason",
    }  # fmt: skip
