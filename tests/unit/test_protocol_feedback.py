"""Task receipts and signed feedback (noosphere.protocol.feedback)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from noosphere.protocol import NodeKey, sign_detached
from noosphere.protocol.a2a import TaskState
from noosphere.protocol.feedback import (
    FEEDBACK_TYP,
    MAX_COMMENT_CHARS,
    RECEIPT_TYP,
    Feedback,
    FeedbackError,
    TaskReceipt,
    feedback_from_body,
    sign_feedback,
    sign_receipt,
    verify_feedback,
    verify_receipt,
)

FAST = settings(max_examples=40, deadline=None, database=None)

AGENT_NODE = NodeKey.from_seed(b"\x01" * 32)
REQUESTER = NodeKey.from_seed(b"\x02" * 32)
MALLORY = NodeKey.from_seed(b"\x03" * 32)
NOW = 1_700_000_000_000
HOUR = 3_600_000


def _receipt(**overrides) -> TaskReceipt:
    fields = {
        "task_id": "task-1",
        "agent": f"{AGENT_NODE.peer_id}/summarizer",
        "agent_peer": AGENT_NODE.peer_id,
        "requester": REQUESTER.peer_id,
        "state": TaskState.COMPLETED,
        "issued_at": NOW - 10_000,
        "latency_ms": 1234,
    } | overrides
    return TaskReceipt(**fields)


def _signed_receipt(**overrides) -> TaskReceipt:
    return sign_receipt(_receipt(**overrides), AGENT_NODE)


def _feedback(receipt: TaskReceipt | None = None, **overrides) -> Feedback:
    fields = {
        "receipt": receipt or _signed_receipt(),
        "rating": 0.8,
        "comment": "good summary",
        "issued_at": NOW - 5_000,
    } | overrides
    return sign_feedback(Feedback(**fields), REQUESTER)


def _verify(feedback: Feedback, now_ms: int = NOW) -> Feedback:
    return verify_feedback(feedback, now_ms=now_ms, max_age_ms=HOUR)


def _signed_by(model: TaskReceipt | Feedback, key: NodeKey, typ: str):
    protected, signature = sign_detached(
        model.signing_payload(), key, {"alg": "EdDSA", "kid": key.peer_id, "typ": typ}
    )
    return model.model_copy(update={"protected": protected, "signature": signature})


def test_sign_and_verify_round_trip_over_the_wire() -> None:
    feedback = _feedback()
    assert _verify(feedback) is feedback
    assert feedback.rater == REQUESTER.peer_id
    wire = json.loads(json.dumps(feedback.to_wire()))
    assert wire["receipt"]["agentPeer"] == AGENT_NODE.peer_id
    assert wire["receipt"]["state"] == "TASK_STATE_COMPLETED"
    parsed = feedback_from_body(wire)
    assert parsed == feedback
    assert _verify(parsed) == feedback


def test_receipt_verifies_on_its_own() -> None:
    receipt = _signed_receipt(state=TaskState.FAILED)
    assert verify_receipt(receipt) is receipt


def test_only_the_agents_node_signs_a_receipt() -> None:
    with pytest.raises(FeedbackError, match="only the agent's node"):
        sign_receipt(_receipt(), MALLORY)


def test_only_the_requester_signs_feedback() -> None:
    with pytest.raises(FeedbackError, match="only the task's requester"):
        sign_feedback(Feedback(receipt=_signed_receipt(), rating=1.0, issued_at=NOW), MALLORY)


def test_forged_requester_is_rejected() -> None:
    """Mallory signs feedback on a receipt that names another requester."""
    unsigned = Feedback(receipt=_signed_receipt(), rating=0.0, issued_at=NOW)
    forged = _signed_by(unsigned, MALLORY, FEEDBACK_TYP)
    with pytest.raises(FeedbackError, match="not signed by the task's requester"):
        _verify(forged)


def test_feedback_for_a_task_the_rater_never_ran_is_rejected() -> None:
    """A receipt naming Mallory as requester but signed by Mallory, not by the agent's node."""
    receipt = _signed_by(_receipt(requester=MALLORY.peer_id), MALLORY, RECEIPT_TYP)
    unsigned = Feedback(receipt=receipt, rating=0.0, issued_at=NOW)
    forged = sign_feedback(unsigned, MALLORY)
    with pytest.raises(FeedbackError, match="receipt is not signed by the agent's node"):
        _verify(forged)


def test_receipt_for_an_agent_hosted_elsewhere_is_rejected() -> None:
    """Mallory's node signs a receipt about an agent card of another node."""
    receipt = sign_receipt(
        _receipt(agent=f"{AGENT_NODE.peer_id}/summarizer", agent_peer=MALLORY.peer_id), MALLORY
    )
    with pytest.raises(FeedbackError, match="does not host"):
        verify_receipt(receipt)


@pytest.mark.parametrize("agent", ["no-slash", "PEER/", "/agent"])
def test_receipt_agent_must_be_a_card_id(agent: str) -> None:
    with pytest.raises(FeedbackError, match="does not host"):
        verify_receipt(_receipt(agent=agent))


def test_receipt_for_an_unfinished_task_is_rejected() -> None:
    with pytest.raises(FeedbackError, match="has not ended \\(working\\)"):
        verify_receipt(_signed_receipt(state=TaskState.WORKING))


def test_receipt_signature_cannot_pass_as_another_kind() -> None:
    receipt = _signed_by(_receipt(), AGENT_NODE, FEEDBACK_TYP)
    with pytest.raises(FeedbackError, match="not a task-receipt signature"):
        verify_receipt(receipt)
    feedback = _signed_by(
        Feedback(receipt=_signed_receipt(), rating=1.0, issued_at=NOW), REQUESTER, RECEIPT_TYP
    )
    with pytest.raises(FeedbackError, match="not a feedback signature"):
        _verify(feedback)


@pytest.mark.parametrize(
    "update",
    [{"rating": 0.0}, {"comment": "terrible"}, {"issued_at": NOW - 4_000}, {"comment": None}],
)
def test_tampered_feedback_is_rejected(update: dict) -> None:
    tampered = _feedback().model_copy(update=update)
    with pytest.raises(FeedbackError, match="not signed by the task's requester"):
        _verify(tampered)


@pytest.mark.parametrize(
    "update", [{"state": TaskState.FAILED}, {"latency_ms": 1}, {"task_id": "task-2"}]
)
def test_tampered_embedded_receipt_is_rejected(update: dict) -> None:
    feedback = _feedback()
    tampered = feedback.model_copy(update={"receipt": feedback.receipt.model_copy(update=update)})
    with pytest.raises(FeedbackError, match="receipt is not signed"):
        _verify(tampered)


def test_swapped_requester_in_receipt_is_rejected() -> None:
    """Rewriting the receipt's requester to Mallory breaks the agent node's signature."""
    receipt = _signed_receipt().model_copy(update={"requester": MALLORY.peer_id})
    forged = sign_feedback(Feedback(receipt=receipt, rating=0.0, issued_at=NOW), MALLORY)
    with pytest.raises(FeedbackError, match="receipt is not signed"):
        _verify(forged)


def test_too_old_feedback_is_rejected() -> None:
    feedback = _feedback()
    _verify(feedback, now_ms=feedback.issued_at + HOUR)
    with pytest.raises(FeedbackError, match="too old"):
        _verify(feedback, now_ms=feedback.issued_at + HOUR + 1)


def test_future_feedback_is_rejected_unless_within_skew() -> None:
    feedback = _feedback(issued_at=NOW + 2_000)
    with pytest.raises(FeedbackError, match="in the future"):
        _verify(feedback)
    assert verify_feedback(feedback, now_ms=NOW, max_age_ms=HOUR, skew_ms=2_000) is feedback


def test_feedback_predating_its_receipt_is_rejected() -> None:
    feedback = _feedback(_signed_receipt(issued_at=NOW - 1_000), issued_at=NOW - 2_000)
    with pytest.raises(FeedbackError, match="predates the receipt"):
        _verify(feedback)


@pytest.mark.parametrize("rating", [-0.01, 1.01, float("nan"), float("inf"), True, "high"])
def test_rating_out_of_range_is_refused_at_parse(rating: object) -> None:
    with pytest.raises(ValidationError):
        Feedback(receipt=_signed_receipt(), rating=rating, issued_at=NOW)


@pytest.mark.parametrize("rating", [-0.5, 1.5, float("nan")])
def test_rating_out_of_range_is_refused_at_verify(rating: float) -> None:
    """``model_copy`` skips validation; verification checks the range itself."""
    feedback = _feedback().model_copy(update={"rating": rating})
    with pytest.raises(FeedbackError, match="rating is not a number in \\[0, 1\\]"):
        _verify(feedback)


def test_comment_is_limited() -> None:
    Feedback(receipt=_signed_receipt(), rating=1, comment="x" * MAX_COMMENT_CHARS, issued_at=NOW)
    with pytest.raises(ValidationError):
        Feedback(
            receipt=_signed_receipt(),
            rating=1,
            comment="x" * (MAX_COMMENT_CHARS + 1),
            issued_at=NOW,
        )
    long = _feedback().model_copy(update={"comment": "x" * (MAX_COMMENT_CHARS + 1)})
    with pytest.raises(FeedbackError, match="longer than 280"):
        _verify(long)


def test_non_finite_latency_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        _receipt(latency_ms=1.5)
    with pytest.raises(ValidationError):
        TaskReceipt.model_validate(_receipt().to_wire() | {"extra": 1})


def test_malformed_body_is_a_one_line_feedback_error() -> None:
    body = _feedback().to_wire()
    body["rating"] = 7
    with pytest.raises(FeedbackError, match=r"^malformed feedback: rating: ") as info:
        feedback_from_body(body)
    assert "\n" not in str(info.value)


def test_unsigned_feedback_is_rejected() -> None:
    unsigned = Feedback(receipt=_signed_receipt(), rating=1.0, issued_at=NOW)
    with pytest.raises(FeedbackError, match="malformed JWS"):
        _verify(unsigned)


@FAST
@given(
    task_id=st.text(min_size=1, max_size=40),
    agent_name=st.text(min_size=1, max_size=20),
    state=st.sampled_from(
        [TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.REJECTED]
    ),
    latency=st.integers(min_value=0, max_value=2**53 - 1),
    rating=st.floats(min_value=0.0, max_value=1.0),
    comment=st.none() | st.text(max_size=MAX_COMMENT_CHARS),
    gap=st.integers(min_value=0, max_value=HOUR),
)
def test_round_trip_property(
    task_id: str,
    agent_name: str,
    state: TaskState,
    latency: int,
    rating: float,
    comment: str | None,
    gap: int,
) -> None:
    receipt = _signed_receipt(
        task_id=task_id,
        agent=f"{AGENT_NODE.peer_id}/{agent_name}",
        state=state,
        latency_ms=latency,
        issued_at=NOW - HOUR,
    )
    feedback = _feedback(receipt, rating=rating, comment=comment, issued_at=NOW - HOUR + gap)
    parsed = feedback_from_body(json.loads(json.dumps(feedback.to_wire())))
    assert parsed == feedback
    assert _verify(parsed).rating == rating


@FAST
@given(rating=st.floats(min_value=0.0, max_value=1.0), other=st.floats(0.0, 1.0))
def test_any_changed_rating_breaks_the_signature(rating: float, other: float) -> None:
    feedback = _feedback(rating=rating)
    tampered = feedback.model_copy(update={"rating": other})
    if other == rating:
        assert _verify(tampered) == feedback
    else:
        with pytest.raises(FeedbackError):
            _verify(tampered)
