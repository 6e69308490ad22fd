"""Signed gossip envelopes and batches (noosphere.protocol.envelope)."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from noosphere.protocol import (
    TOPIC_FOR_KIND,
    Envelope,
    EnvelopeBatch,
    EnvelopeKind,
    EnvelopeRejected,
    NodeKey,
    RejectReason,
    b64url_encode,
    canonical_json,
    check_envelope,
    decode_batch,
    seal,
)
from noosphere.protocol.envelope import ENVELOPE_DOMAIN, MAX_BATCH_ENVELOPES

FAST = settings(max_examples=60, deadline=None, database=None)

KEY = NodeKey.from_seed(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
)
OTHER_KEY = NodeKey.from_seed(b"\x42" * 32)
NOW = 1_700_000_000_000
TTL = 60_000
SKEW = 5_000

SAFE_INT = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | SAFE_INT
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
BODIES = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5)
KINDS = st.sampled_from(list(EnvelopeKind))


def _seal(body: dict | None = None, **overrides) -> Envelope:
    kwargs = {"seq": 7, "now_ms": NOW, "ttl_ms": TTL} | overrides
    return seal(EnvelopeKind.CARD, {"x": 1} if body is None else body, KEY, **kwargs)


def _check(envelope: Envelope, now_ms: int = NOW) -> None:
    check_envelope(envelope, now_ms=now_ms, max_skew_ms=SKEW)


def _reason(envelope: Envelope, now_ms: int = NOW) -> RejectReason:
    with pytest.raises(EnvelopeRejected) as excinfo:
        _check(envelope, now_ms)
    return excinfo.value.reason


def _mutated(envelope: Envelope, **changes) -> Envelope:
    """Re-validate the wire form with some fields changed, as a receiver would parse it."""
    return Envelope.model_validate(envelope.to_wire() | changes)


# ---- seal and check ------------------------------------------------------------------------------


def test_seal_fills_in_sender_and_validity_window():
    envelope = _seal()
    assert envelope.sender == KEY.peer_id
    assert envelope.issued_at == NOW
    assert envelope.expires_at == NOW + TTL
    assert envelope.v == 1


def test_sealed_envelope_passes_check():
    _check(_seal())


def test_signature_covers_the_domain_separated_canonical_form():
    envelope = _seal()
    wire = envelope.to_wire()
    del wire["signature"]
    assert envelope.signing_payload() == ENVELOPE_DOMAIN + canonical_json(wire)


def test_every_kind_has_a_topic():
    assert set(TOPIC_FOR_KIND) == set(EnvelopeKind)
    assert len(set(TOPIC_FOR_KIND.values())) == len(EnvelopeKind)


@FAST
@given(body=BODIES, kind=KINDS, seq=st.integers(1, 2**53 - 1))
def test_seal_then_check_passes_for_any_json_body(body, kind, seq):
    _check(seal(kind, body, KEY, seq=seq, now_ms=NOW, ttl_ms=TTL))


@FAST
@given(body=BODIES)
def test_sealed_envelope_survives_the_wire(body):
    envelope = _seal(body)
    (received,) = decode_batch(EnvelopeBatch(envelopes=[envelope]).encode()).envelopes
    _check(received)


# ---- rejection reasons -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"body": {"x": 2}},
        {"body": {"x": 1, "y": None}},
        {"body": {}},
        {"seq": 8},
        {"sender": OTHER_KEY.peer_id},
        {"kind": "task"},
        {"issuedAt": NOW - 1},
        {"expiresAt": NOW + TTL + 1},
    ],
    ids=[
        "body-value",
        "body-extra-key",
        "body-empty",
        "seq",
        "sender",
        "kind",
        "issued",
        "expires",
    ],
)
def test_check_rejects_a_mutated_field_as_bad_signature(changes):
    assert _reason(_mutated(_seal(), **changes)) is RejectReason.BAD_SIGNATURE


def test_check_rejects_an_envelope_resealed_by_another_key_under_the_first_sender():
    forged = _seal().model_copy(update={"signature": ""})
    signature = b64url_encode(OTHER_KEY.sign(forged.signing_payload()))
    assert _reason(forged.model_copy(update={"signature": signature})) is RejectReason.BAD_SIGNATURE


def test_check_rejects_a_signature_without_the_domain_prefix():
    envelope = _seal()
    undomained = envelope.signing_payload().removeprefix(ENVELOPE_DOMAIN)
    signature = b64url_encode(KEY.sign(undomained))
    assert (
        _reason(envelope.model_copy(update={"signature": signature})) is RejectReason.BAD_SIGNATURE
    )


@pytest.mark.parametrize("signature", ["", "A", "AA==", "not base64!", "+/+/"])
def test_check_rejects_a_malformed_signature_as_bad_signature(signature):
    envelope = _seal().model_copy(update={"signature": signature})
    assert _reason(envelope) is RejectReason.BAD_SIGNATURE


def test_check_rejects_an_invalid_sender_as_bad_signature():
    envelope = _seal().model_copy(update={"sender": "garbage"})
    assert _reason(envelope) is RejectReason.BAD_SIGNATURE


def test_check_rejects_an_expired_envelope():
    assert _reason(_seal(), now_ms=NOW + TTL + 1) is RejectReason.EXPIRED


def test_check_treats_the_expiry_instant_as_expired():
    assert _reason(_seal(), now_ms=NOW + TTL) is RejectReason.EXPIRED


def test_check_accepts_the_last_millisecond_before_expiry():
    _check(_seal(), now_ms=NOW + TTL - 1)


def test_check_rejects_an_envelope_issued_beyond_the_clock_skew():
    envelope = _seal(now_ms=NOW + SKEW + 1)
    assert _reason(envelope) is RejectReason.NOT_YET_VALID


def test_check_accepts_an_envelope_issued_at_the_skew_limit():
    _check(_seal(now_ms=NOW + SKEW))


def test_check_rejects_an_envelope_that_expires_before_it_is_issued():
    envelope = _seal(now_ms=NOW + SKEW, ttl_ms=-1)
    assert _reason(envelope) is RejectReason.MALFORMED


def test_envelope_rejected_carries_reason_and_detail():
    error = EnvelopeRejected(RejectReason.REPLAY, "seq 3 already seen")
    assert error.reason is RejectReason.REPLAY
    assert error.detail == "seq 3 already seen"
    assert str(error) == "replay: seq 3 already seen"


@FAST
@given(body=BODIES, new_body=BODIES)
def test_changing_the_body_fails_with_bad_signature(body, new_body):
    assume(canonical_json(new_body) != canonical_json(body))
    envelope = _seal(body)
    assert _reason(_mutated(envelope, body=new_body)) is RejectReason.BAD_SIGNATURE


@FAST
@given(
    field=st.sampled_from(["seq", "issuedAt", "expiresAt"]),
    delta=st.integers(min_value=1, max_value=10**6),
)
def test_changing_a_number_field_fails_with_bad_signature(field, delta):
    envelope = _seal()
    changed = _mutated(envelope, **{field: envelope.to_wire()[field] + delta})
    assert _reason(changed) is RejectReason.BAD_SIGNATURE


@pytest.mark.parametrize(("kind", "new_kind"), list(itertools.permutations(EnvelopeKind, 2)))
def test_changing_the_kind_fails_with_bad_signature(kind, new_kind):
    envelope = seal(kind, {"x": 1}, KEY, seq=1, now_ms=NOW, ttl_ms=TTL)
    assert _reason(_mutated(envelope, kind=new_kind.value)) is RejectReason.BAD_SIGNATURE


@FAST
@given(seed=st.binary(min_size=32, max_size=32))
def test_changing_the_sender_fails_with_bad_signature(seed):
    other = NodeKey.from_seed(seed)
    assume(other.peer_id != KEY.peer_id)
    assert _reason(_mutated(_seal(), sender=other.peer_id)) is RejectReason.BAD_SIGNATURE


# ---- batches -----------------------------------------------------------------------------------


def test_batch_round_trips_through_encode_and_decode():
    envelopes = [_seal({"i": i}, seq=i + 1) for i in range(3)]
    batch = EnvelopeBatch(envelopes=envelopes)
    assert decode_batch(batch.encode()) == batch


@FAST
@given(bodies=st.lists(BODIES, min_size=1, max_size=5))
def test_batch_round_trip_preserves_envelopes(bodies):
    batch = EnvelopeBatch(envelopes=[_seal(b, seq=i + 1) for i, b in enumerate(bodies)])
    assert decode_batch(batch.encode()).envelopes == batch.envelopes


def test_batch_encoding_is_compact_camel_case_json():
    data = EnvelopeBatch(envelopes=[_seal()]).encode()
    wire = json.loads(data)
    assert set(wire["envelopes"][0]) == {
        "v",
        "kind",
        "body",
        "sender",
        "seq",
        "issuedAt",
        "expiresAt",
        "signature",
    }
    assert b": " not in data and b", " not in data


def test_batch_of_the_maximum_size_is_accepted():
    envelope = _seal()
    batch_json = {"v": 1, "envelopes": [envelope.to_wire()] * MAX_BATCH_ENVELOPES}
    assert len(decode_batch(json.dumps(batch_json).encode()).envelopes) == MAX_BATCH_ENVELOPES


def test_batch_of_more_than_256_envelopes_is_rejected_as_malformed():
    assert MAX_BATCH_ENVELOPES == 256
    batch_json = {"v": 1, "envelopes": [_seal().to_wire()] * 257}
    with pytest.raises(EnvelopeRejected) as excinfo:
        decode_batch(json.dumps(batch_json).encode())
    assert excinfo.value.reason is RejectReason.MALFORMED


def test_batch_of_more_than_256_envelopes_cannot_be_built():
    with pytest.raises(ValueError):
        EnvelopeBatch(envelopes=[_seal()] * 257)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"null",
        b"[]",
        b"{}",
        b'{"v":1,"envelopes":[]}',
        b'{"v":2,"envelopes":[]}',
        b"\xff\xfe\x00",
        b'{"v":1,"envelopes":[{}]}',
        b'{"v":1,"envelopes":"x"}',
    ],
)
def test_decode_batch_rejects_malformed_data(data):
    with pytest.raises(EnvelopeRejected) as excinfo:
        decode_batch(data)
    assert excinfo.value.reason is RejectReason.MALFORMED


@pytest.mark.parametrize(
    "changes",
    [
        {"v": 2},
        {"kind": "gossip"},
        {"seq": 0},
        {"seq": 2**63},
        {"issuedAt": -1},
        {"body": []},
        {"sender": None},
        {"extra": True},
    ],
    ids=[
        "v",
        "kind",
        "seq-zero",
        "seq-2**63",
        "issued-negative",
        "body-list",
        "sender-null",
        "unknown-field",
    ],
)
def test_decode_batch_rejects_envelopes_with_invalid_fields(changes):
    wire = _seal().to_wire() | changes
    with pytest.raises(EnvelopeRejected) as excinfo:
        decode_batch(json.dumps({"v": 1, "envelopes": [wire]}).encode())
    assert excinfo.value.reason is RejectReason.MALFORMED


def _decode_or_malformed(data: bytes) -> None:
    try:
        batch = decode_batch(data)
    except EnvelopeRejected as exc:
        assert exc.reason is RejectReason.MALFORMED
        return
    assert isinstance(batch, EnvelopeBatch)


@FAST
@given(st.binary(max_size=300))
def test_decode_batch_of_arbitrary_bytes_is_a_batch_or_malformed(data):
    _decode_or_malformed(data)


@FAST
@given(st.text(max_size=300))
def test_decode_batch_of_arbitrary_text_is_a_batch_or_malformed(text):
    _decode_or_malformed(text.encode())


@FAST
@given(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=8))
def test_decode_batch_of_arbitrary_envelope_shaped_json_is_a_batch_or_malformed(fields):
    wire = _seal().to_wire() | fields
    _decode_or_malformed(json.dumps({"v": 1, "envelopes": [wire]}).encode())


# ---- bugs --------------------------------------------------------------------------------------


def _batch_with(changes: dict) -> bytes:
    return json.dumps({"v": 1, "envelopes": [_seal().to_wire() | changes]}).encode()


@pytest.mark.parametrize(
    "changes",
    [{"seq": 2**53}, {"expiresAt": 10**17}, {"body": {"n": 10**16}}],
    ids=["seq", "expiresAt", "body-int"],
)
def test_check_envelope_rejects_out_of_range_integers_as_envelope_rejected(changes):
    with pytest.raises(EnvelopeRejected):  # at decode time (header fields) or when checked (body)
        (envelope,) = decode_batch(_batch_with(changes)).envelopes
        _check(envelope)


@pytest.mark.parametrize("replacement", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_check_envelope_rejects_a_signed_null_replaced_by_a_non_finite_number(replacement):
    envelope = _seal({"x": None})
    data = EnvelopeBatch(envelopes=[envelope]).encode().replace(b'"x":null', b'"x":' + replacement)
    try:
        (received,) = decode_batch(data).envelopes
    except EnvelopeRejected:
        return  # rejecting non-finite numbers at decode time would also be a fix
    assert received.body != {"x": None}
    with pytest.raises(EnvelopeRejected):
        _check(received)
