"""Wire formats (Feedback, the sixth phase): the task receipt and the signed rating built on it.

When a task ends, the AGENT's node signs a :class:`TaskReceipt` (task, agent card id, requester,
final state, latency) and hands it to the requester. The REQUESTER then signs a
:class:`Feedback` that embeds that receipt, so a rating is only valid for a task its rater really
ran with that agent: without a receipt signed by the agent's node, naming the rater as requester,
there is no valid feedback (a rater cannot invent tasks with somebody else's agent). A node can
still sign receipts for its OWN agents at will; the trust model (``noosphere.mars.trust``) handles
that by weighting raters, following the Beta reputation system of Jøsang and Ismail (2002) with
rater trust computed in the style of EigenTrust (Kamvar, Schlosser and Garcia-Molina, 2003).

Both objects are signed like attestations and cards: a detached JWS (RFC 7515, EdDSA per RFC
8037) over the RFC 8785 canonical JSON of every field but ``protected`` and ``signature``, by the
node key whose peer id is the ``kid``. The protected header's ``typ`` names the object kind, so
a signature over one kind can never be replayed as the other. Pure data, no I/O.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from noosphere.errors import InvalidData

from .a2a import TaskState
from .base import WireModel, describe_validation_error
from .canonical import EncodingError, canonical_json
from .envelope import MAX_SAFE_INTEGER
from .identity import NodeKey
from .jws import SignatureError, sign_detached, verify_detached

RECEIPT_TYP = "noosphere-receipt+jws"
FEEDBACK_TYP = "noosphere-feedback+jws"
MAX_COMMENT_CHARS = 280


class FeedbackError(InvalidData, ValueError):
    """A receipt or feedback is malformed, badly signed, stale, or about a task never run."""


def _payload(model: WireModel, what: str) -> bytes:
    body = model.to_signable()
    body.pop("protected", None)
    body.pop("signature", None)
    try:
        return canonical_json(body)
    except EncodingError as exc:
        raise FeedbackError(f"{what} has no canonical form: {exc}") from exc


def _header(key: NodeKey, typ: str) -> dict[str, Any]:
    return {"alg": "EdDSA", "kid": key.peer_id, "typ": typ}


class TaskReceipt(WireModel):
    """Signed by the agent's node (``agent_peer``) when a task reaches a terminal state."""

    v: Literal[1] = 1
    task_id: str = Field(min_length=1, max_length=256)
    agent: str = Field(min_length=3, max_length=512)  # card id: PEER_ID/AGENT_ID
    agent_peer: str = Field(min_length=1, max_length=128)  # the node hosting the agent (signer)
    requester: str = Field(min_length=1, max_length=128)  # the node that asked for the task
    state: TaskState
    issued_at: int = Field(ge=0, le=MAX_SAFE_INTEGER, strict=True)  # unix ms
    latency_ms: int = Field(ge=0, le=MAX_SAFE_INTEGER, strict=True)
    protected: str = ""
    signature: str = ""

    def signing_payload(self) -> bytes:
        return _payload(self, "receipt")


class Feedback(WireModel):
    """Signed by the requester named in the embedded receipt: a rating of that one task."""

    v: Literal[1] = 1
    receipt: TaskReceipt
    rating: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)  # 1 = fully satisfied
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)
    issued_at: int = Field(ge=0, le=MAX_SAFE_INTEGER, strict=True)  # unix ms
    protected: str = ""
    signature: str = ""

    @field_validator("rating", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("rating must be a number, not a boolean")
        return value

    @property
    def rater(self) -> str:
        """The rating node: always the receipt's requester (``verify_feedback`` checks it)."""
        return self.receipt.requester

    def signing_payload(self) -> bytes:
        return _payload(self, "feedback")


def sign_receipt(receipt: TaskReceipt, key: NodeKey) -> TaskReceipt:
    """Sign as the agent's node; the key must be ``receipt.agent_peer``."""
    if receipt.agent_peer != key.peer_id:
        raise FeedbackError("only the agent's node may sign its task receipt")
    protected, signature = sign_detached(receipt.signing_payload(), key, _header(key, RECEIPT_TYP))
    return receipt.model_copy(update={"protected": protected, "signature": signature})


def verify_receipt(receipt: TaskReceipt) -> TaskReceipt:
    """Check that the agent's own node signed the receipt of an ended task."""
    head, sep, local = receipt.agent.partition("/")
    if not sep or not local or head != receipt.agent_peer:
        raise FeedbackError("receipt names an agent that its signing node does not host")
    if not receipt.state.terminal:
        raise FeedbackError(f"receipt is for a task that has not ended ({receipt.state.short})")
    try:
        header = verify_detached(
            receipt.signing_payload(), receipt.protected, receipt.signature, receipt.agent_peer
        )
    except SignatureError as exc:
        raise FeedbackError(f"receipt is not signed by the agent's node: {exc}") from exc
    if header.get("typ") != RECEIPT_TYP:
        raise FeedbackError("receipt signature is not a task-receipt signature")
    return receipt


def sign_feedback(feedback: Feedback, key: NodeKey) -> Feedback:
    """Sign as the requester; the key must be the embedded receipt's ``requester``."""
    if feedback.receipt.requester != key.peer_id:
        raise FeedbackError("only the task's requester may sign feedback on it")
    protected, signature = sign_detached(
        feedback.signing_payload(), key, _header(key, FEEDBACK_TYP)
    )
    return feedback.model_copy(update={"protected": protected, "signature": signature})


def verify_feedback(
    feedback: Feedback, *, now_ms: int, max_age_ms: int, skew_ms: int = 0
) -> Feedback:
    """Check the rating, its age, the embedded receipt and the requester's signature.
    ``skew_ms`` tolerates a verifier clock behind the rater's (or the rater's behind the
    agent's node). Raises FeedbackError with a one-line reason."""
    rating = feedback.rating
    if isinstance(rating, bool) or not math.isfinite(rating) or not 0.0 <= rating <= 1.0:
        raise FeedbackError("rating is not a number in [0, 1]")
    if feedback.comment is not None and len(feedback.comment) > MAX_COMMENT_CHARS:
        raise FeedbackError(f"comment is longer than {MAX_COMMENT_CHARS} characters")
    if feedback.issued_at > now_ms + skew_ms:
        raise FeedbackError("feedback is issued in the future")
    if now_ms - feedback.issued_at > max_age_ms:
        raise FeedbackError("feedback is too old")
    if feedback.issued_at + skew_ms < feedback.receipt.issued_at:
        raise FeedbackError("feedback predates the receipt of its task")
    verify_receipt(feedback.receipt)
    try:
        header = verify_detached(
            feedback.signing_payload(),
            feedback.protected,
            feedback.signature,
            feedback.receipt.requester,
        )
    except SignatureError as exc:
        raise FeedbackError(f"feedback is not signed by the task's requester: {exc}") from exc
    if header.get("typ") != FEEDBACK_TYP:
        raise FeedbackError("feedback signature is not a feedback signature")
    return feedback


def feedback_from_body(body: dict[str, Any]) -> Feedback:
    """Parse a gossip envelope body (``EnvelopeKind.FEEDBACK``); one-line FeedbackError."""
    try:
        return Feedback.model_validate(body)
    except ValidationError as exc:
        raise FeedbackError(f"malformed feedback: {describe_validation_error(exc)}") from exc
