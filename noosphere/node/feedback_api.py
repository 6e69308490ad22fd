"""Feedback (node side): receipts, ratings and the trust they build.

When a task ends on this node, the agent's node signs a receipt (task, agent, requester, state,
latency) into the task's metadata. The requester's operator rates it with
``noosphere.feedback``: the node signs the rating around that receipt, records it in its own
trust model and gossips it on the feedback topic; every node verifies gossiped feedback (a
rating without the agent node's receipt for that requester and task is refused) and records
it. The trust model feeds MARS's ranking, and its state is kept in the store across restarts.
A node's prior before it heard any gossip: its operator's pre-trusted peers (``trusted_peers``)
and the registry's paid ratings (``set_registry``, read by the settlement worker)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from noosphere.errors import InvalidParams, Unauthorized
from noosphere.mars.registry_prior import RegistrySnapshot
from noosphere.mars.trust import TrustModel
from noosphere.protocol import Envelope, NodeKey, card_id
from noosphere.protocol.a2a import TaskState
from noosphere.protocol.api import FeedbackParams, FeedbackReply
from noosphere.protocol.envelope import EnvelopeRejected, RejectReason
from noosphere.protocol.feedback import (
    Feedback,
    FeedbackError,
    TaskReceipt,
    feedback_from_body,
    sign_feedback,
    sign_receipt,
    verify_feedback,
    verify_receipt,
)
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

from .rpc import CallContext, JsonRpcDispatcher
from .store import NodeStore, StoredTask

log = structlog.get_logger("noosphere.feedback")

TRUST_META_KEY = "trust_records"
MAX_FEEDBACK_AGE_MS = 30 * 86_400_000
CLOCK_SKEW_MS = 5 * 60_000


def _now_ms() -> int:
    return int(time.time() * 1000)


class FeedbackService:
    def __init__(
        self,
        key: NodeKey,
        store: NodeStore,
        publish: Callable[[dict[str, Any]], object],
        *,
        pretrusted: Sequence[str] = (),
    ) -> None:
        self._key = key
        self._store = store
        self._publish = publish
        self._pretrusted = tuple(pretrusted)
        self.trust = self._load()
        self._dirty = False

    def _load(self) -> TrustModel:
        raw = self._store.get_meta(TRUST_META_KEY)
        if raw is None:
            return TrustModel(self._key.peer_id, pretrusted=self._pretrusted)
        try:
            return TrustModel.from_records(
                json.loads(raw), self._key.peer_id, pretrusted=self._pretrusted
            )
        except ValueError as exc:
            log.warning("stored trust records unreadable; starting afresh", error=str(exc))
            return TrustModel(self._key.peer_id, pretrusted=self._pretrusted)

    def set_registry(self, snapshot: RegistrySnapshot) -> None:
        """The registry's paid ratings and expired escrows (proof-checked by the settlement
        worker) as the trust model's registry prior."""
        used = self.trust.set_registry(
            snapshot.ratings, snapshot.linked, snapshot.escrows, snapshot.agents_of
        )
        log.debug("registry prior updated", ratings=len(snapshot.ratings), counted=used)

    def save(self) -> None:
        if self._dirty:
            self._store.set_meta(TRUST_META_KEY, json.dumps(self.trust.to_records()))
            self._dirty = False

    # ---- agent side: receipts ----------------------------------------------------------------

    def receipt(self, row: StoredTask, state: TaskState) -> dict[str, Any] | None:
        """The signed receipt of a task that ended on this node (for the task's metadata)."""
        requester = self._key.peer_id if row.principal == LOCAL_PRINCIPAL else row.principal
        receipt = TaskReceipt(
            task_id=row.task_id,
            agent=card_id(self._key.peer_id, row.agent_id),
            agent_peer=self._key.peer_id,
            requester=requester,
            state=state,
            issued_at=_now_ms(),
            latency_ms=max(0, _now_ms() - row.created_at),
        )
        return sign_receipt(receipt, self._key).to_wire()

    # ---- requester side: rating ---------------------------------------------------------------

    def rate(self, params: FeedbackParams) -> FeedbackReply:
        try:
            receipt = verify_receipt(params.receipt)
        except FeedbackError as exc:
            raise InvalidParams(f"Invalid params: {exc}") from exc
        if receipt.requester != self._key.peer_id:
            raise InvalidParams(
                "Invalid params: this receipt is for a task another node requested",
            )
        now = _now_ms()
        feedback = sign_feedback(
            Feedback(receipt=receipt, rating=params.rating, comment=params.comment, issued_at=now),
            self._key,
        )
        self.trust.record_receipt(receipt, now)
        changed = self.trust.record(feedback, now)
        self._dirty = True
        self._publish(feedback.to_wire())
        return FeedbackReply(
            recorded=changed,
            agent=receipt.agent,
            reputation=self.trust.reputation(receipt.agent),
        )

    # ---- everyone: gossiped ratings ------------------------------------------------------

    def on_gossip(self, envelope: Envelope) -> None:
        try:
            feedback = feedback_from_body(envelope.body)
            if feedback.rater != envelope.sender:
                raise FeedbackError("feedback relayed by another node than its rater")
            verify_feedback(
                feedback, now_ms=_now_ms(), max_age_ms=MAX_FEEDBACK_AGE_MS, skew_ms=CLOCK_SKEW_MS
            )
        except FeedbackError as exc:  # counted by the gossip router as invalid_body
            log.info("feedback rejected", sender=envelope.sender, reason=str(exc))
            raise EnvelopeRejected(RejectReason.INVALID_BODY, str(exc)) from exc
        if self.trust.record(feedback, _now_ms()):
            self._dirty = True


def register_feedback_api(dispatcher: JsonRpcDispatcher, service: FeedbackService) -> None:
    async def feedback(params: FeedbackParams, ctx: CallContext) -> FeedbackReply:
        if ctx.principal != LOCAL_PRINCIPAL:
            raise Unauthorized("Unauthorized: only this node's operator rates")
        return service.rate(params)

    dispatcher.register("noosphere.feedback", FeedbackParams, feedback, authenticated=True)
