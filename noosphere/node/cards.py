"""Discover (card index): every card this node knows, local and gossiped. A gossiped card is
accepted only if it is signed by the node it names, that node is the envelope's sender, it has
not expired, and its version is newer than the one held; cards expire unless re-announced."""

from __future__ import annotations

from collections import deque
from typing import Any

from pydantic import ValidationError

from noosphere.protocol import (
    AgentCard,
    CardError,
    CardSignatureError,
    Envelope,
    EnvelopeRejected,
    NoosphereCardParams,
    RejectReason,
    verify_card,
)
from noosphere.protocol.api import CardArrival

from .metrics import NodeMetrics
from .store import NodeStore, StoredCard

ARRIVALS_KEPT = 20_000


class CardIndex:
    def __init__(self, store: NodeStore, metrics: NodeMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self.arrivals: deque[CardArrival] = deque(maxlen=ARRIVALS_KEPT)

    def accept_gossiped(self, envelope: Envelope, now_ms: int) -> NoosphereCardParams:
        """Validate and store a card from a card envelope; raises EnvelopeRejected."""
        card, params = _verified(envelope.body.get("card"))
        if params.peer_id != envelope.sender:
            raise EnvelopeRejected(RejectReason.SENDER_MISMATCH, "card names another node")
        self._admit(card, params, now_ms)
        return params

    def accept_synced(self, raw: Any, now_ms: int) -> bool:
        """Store a card pulled from a peer's index (any peer may relay it: the owner's signature
        is what counts). Returns whether it was new; bad cards are counted and skipped."""
        try:
            card, params = _verified(raw)
            self._admit(card, params, now_ms)
        except EnvelopeRejected as exc:
            if exc.reason is not RejectReason.STALE_VERSION:  # already held: not an attack
                self._metrics.envelopes_rejected.labels(reason=exc.reason.value).inc()
            return False
        self._metrics.cards_synced.inc()
        return True

    def _admit(self, card: AgentCard, params: NoosphereCardParams, now_ms: int) -> None:
        if params.expires_at <= now_ms:
            raise EnvelopeRejected(RejectReason.EXPIRED, "card has expired")
        held = self._store.card_seq(params.card_id)
        if held is not None and held >= params.seq:
            raise EnvelopeRejected(
                RejectReason.STALE_VERSION, f"card seq {params.seq} <= held {held}"
            )
        self._put(card, params, now_ms, local=False)
        self.arrivals.append(
            CardArrival(
                card_id=params.card_id,
                seq=params.seq,
                issued_at=params.issued_at,
                received_at=now_ms,
            )
        )
        self._metrics.card_propagation.observe(max(0, now_ms - params.issued_at) / 1000)

    def put_local(self, card: AgentCard, now_ms: int) -> NoosphereCardParams:
        params = card.noosphere()
        self._put(card, params, now_ms, local=True)
        return params

    def _put(
        self, card: AgentCard, params: NoosphereCardParams, now_ms: int, *, local: bool
    ) -> None:
        self._store.put_card(
            card_id=params.card_id,
            peer_id=params.peer_id,
            agent_id=params.agent_id,
            seq=params.seq,
            expires_at=params.expires_at,
            received_at=now_ms,
            card=card.to_wire(),
            local=local,
        )

    def sweep(self, now_ms: int) -> list[str]:
        """Drop gossiped cards past their expiry; returns their ids."""
        removed = self._store.delete_expired_cards(now_ms)
        if removed:
            self._metrics.cards_expired.inc(len(removed))
        self._metrics.cards_known.set(self._store.count_cards(now_ms=now_ms))
        return removed

    def list(self, now_ms: int) -> list[StoredCard]:
        return self._store.list_cards(now_ms=now_ms)

    def versions(self, now_ms: int) -> dict[str, int]:
        """card id -> seq of the unexpired cards (cheap: no card is decoded)."""
        return self._store.card_versions(now_ms=now_ms)

    def get(self, card_id: str, now_ms: int) -> StoredCard | None:
        stored = self._store.get_card(card_id)
        if stored is None or stored.expires_at <= now_ms:
            return None
        return stored


def _verified(raw: Any) -> tuple[AgentCard, NoosphereCardParams]:
    """Parse a card and check its owner's signature; raises EnvelopeRejected."""
    try:
        card = AgentCard.model_validate(raw)
        return card, verify_card(card)
    except CardSignatureError as exc:
        raise EnvelopeRejected(RejectReason.BAD_SIGNATURE, f"card: {exc}") from exc
    except (ValidationError, CardError) as exc:
        raise EnvelopeRejected(RejectReason.INVALID_BODY, f"card: {exc}") from exc
