"""Wire formats (Discover, Recruit, Feedback): the signed gossip envelope. Every card, task request
and feedback message travels inside one; receivers check signature, freshness and sequence number
before anything else looks at the body. Several envelopes may share one gossip message (a batch)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationError

from noosphere.errors import InvalidData

from .base import WireModel
from .canonical import EncodingError, b64url_decode, b64url_encode, canonical_json
from .identity import NodeKey, verify_signature

ENVELOPE_DOMAIN = b"noosphere/envelope/v1\n"
MAX_SAFE_INTEGER = 2**53 - 1
MAX_BATCH_ENVELOPES = 256
#: Longest validity an envelope (or a card) may claim: a node's card_ttl_s and envelope_ttl_s are
#: capped at one day, so anything longer is not from an honest node and would never expire.
MAX_LIFETIME_MS = 86_400_000


class EnvelopeKind(StrEnum):
    CARD = "card"
    TASK = "task"
    FEEDBACK = "feedback"


TOPIC_FOR_KIND: dict[EnvelopeKind, str] = {
    EnvelopeKind.CARD: "noosphere/cards/1",
    EnvelopeKind.TASK: "noosphere/tasks/1",
    EnvelopeKind.FEEDBACK: "noosphere/feedback/1",
}


class RejectReason(StrEnum):
    """Why a received envelope was dropped; each is a label of the rejection metric."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REPLAY = "replay"
    WRONG_TOPIC = "wrong_topic"
    SENDER_MISMATCH = "sender_mismatch"
    STALE_VERSION = "stale_version"
    INVALID_BODY = "invalid_body"
    RATE_LIMITED = "rate_limited"
    OVERSIZED = "oversized"  # a card larger than MAX_CARD_BYTES
    LIFETIME = "lifetime"  # valid for longer than MAX_LIFETIME_MS
    OVER_QUOTA = "over_quota"  # too many cards from one owner, one relaying peer, or in all


class EnvelopeRejected(InvalidData):
    """An envelope failed a check; ``reason`` says which."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class Envelope(WireModel):
    v: Literal[1] = 1
    kind: EnvelopeKind
    body: dict[str, Any]
    sender: str
    # Integers stay within what canonical JSON (and JavaScript peers) represent exactly.
    seq: int = Field(ge=1, le=MAX_SAFE_INTEGER, strict=True)
    issued_at: int = Field(ge=0, le=MAX_SAFE_INTEGER, strict=True)  # unix milliseconds
    expires_at: int = Field(ge=0, le=MAX_SAFE_INTEGER, strict=True)  # unix milliseconds
    signature: str = ""

    def wire_size(self) -> int:
        """Bytes this envelope takes inside an encoded batch (UTF-8, as ``encode`` writes it)."""
        return len(self.model_dump_json(by_alias=True, exclude_none=True).encode())

    def signing_payload(self) -> bytes:
        """Domain tag + canonical JSON of every field but the signature; raises EncodingError
        for values with no canonical form (non-finite or out-of-range numbers)."""
        fields = self.to_signable()
        fields.pop("signature", None)
        return ENVELOPE_DOMAIN + canonical_json(fields)


class EnvelopeBatch(WireModel):
    """The data of one gossip message: one or more envelopes of the topic's kind."""

    v: Literal[1] = 1
    envelopes: list[Envelope] = Field(min_length=1, max_length=MAX_BATCH_ENVELOPES)

    def encode(self) -> bytes:
        """Compact UTF-8 JSON; its length is what ``wire_size`` adds up for batching."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


def seal(
    kind: EnvelopeKind, body: dict[str, Any], key: NodeKey, *, seq: int, now_ms: int, ttl_ms: int
) -> Envelope:
    """Build and sign an envelope from this node."""
    unsigned = Envelope(
        kind=kind,
        body=body,
        sender=key.peer_id,
        seq=seq,
        issued_at=now_ms,
        expires_at=now_ms + ttl_ms,
    )
    return unsigned.model_copy(
        update={"signature": b64url_encode(key.sign(unsigned.signing_payload()))}
    )


def check_envelope(envelope: Envelope, *, now_ms: int, max_skew_ms: int) -> None:
    """Stateless checks: signature by ``sender``, validity window. Raises EnvelopeRejected."""
    try:
        signature = b64url_decode(envelope.signature)
    except EncodingError as exc:
        raise EnvelopeRejected(RejectReason.BAD_SIGNATURE, "signature is not base64url") from exc
    try:
        payload = envelope.signing_payload()
    except EncodingError as exc:
        raise EnvelopeRejected(RejectReason.MALFORMED, str(exc)) from exc
    if not verify_signature(envelope.sender, payload, signature):
        raise EnvelopeRejected(RejectReason.BAD_SIGNATURE, "signature does not verify")
    if envelope.expires_at <= now_ms:
        raise EnvelopeRejected(RejectReason.EXPIRED, "envelope has expired")
    if envelope.issued_at > now_ms + max_skew_ms:
        raise EnvelopeRejected(RejectReason.NOT_YET_VALID, "envelope is issued in the future")
    if envelope.expires_at < envelope.issued_at:
        raise EnvelopeRejected(RejectReason.MALFORMED, "envelope expires before it is issued")
    if envelope.expires_at - envelope.issued_at > MAX_LIFETIME_MS:
        raise EnvelopeRejected(RejectReason.LIFETIME, "envelope is valid for more than a day")


def decode_batch(data: bytes) -> EnvelopeBatch:
    """Parse a gossip message's data. Raises EnvelopeRejected(MALFORMED) on any defect."""
    try:
        return EnvelopeBatch.model_validate_json(data)
    except ValidationError as exc:
        raise EnvelopeRejected(
            RejectReason.MALFORMED, f"not an envelope batch: {exc.error_count()} errors"
        ) from exc
