"""Discover (card index): every card this node knows, local and gossiped. Whatever path a card
takes (gossip from its owner, a peer's pull-sync reply, a bid), it is stored only if it is signed
by the node it names, obeys the network's card limits (size, lifetime, issue time: see
``check_card_limits``), is newer than the version held, and fits this node's quotas: cards per
owner, cards one peer may introduce on behalf of others, and cards in all. The owner of every
accepted card is recorded in the peer book. Cards expire unless re-announced."""

from __future__ import annotations

import builtins
import json
from collections import deque
from dataclasses import dataclass
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
    check_card_limits,
    verify_card,
)
from noosphere.protocol.api import CardArrival

from .config import NodeConfig
from .metrics import NodeMetrics
from .peers import PeerBook
from .store import NodeStore, StoredCard

ARRIVALS_KEPT = 20_000


@dataclass(frozen=True, slots=True)
class CardQuotas:
    """What one node accepts from the network (its own cards are never refused)."""

    max_cards: int = 100_000
    max_per_owner: int = 256
    max_relayed_per_peer: int = 2_000
    max_skew_ms: int = 30_000

    @classmethod
    def from_config(cls, config: NodeConfig) -> CardQuotas:
        return cls(
            max_cards=config.max_cards,
            max_per_owner=config.max_cards_per_owner,
            max_relayed_per_peer=config.max_cards_relayed_per_peer,
            max_skew_ms=config.max_clock_skew_s * 1000,
        )


@dataclass(frozen=True, slots=True)
class CheckedCard:
    """A card that passed every check that needs no state: shape, limits and signature."""

    card: AgentCard
    params: NoosphereCardParams


def parse_card(raw: Any, *, now_ms: int, max_skew_ms: int) -> CheckedCard:
    """Parse a card and check the network's limits, without its signature (cheap enough for the
    gossip validator, which must not forward a card that breaks them). Raises EnvelopeRejected."""
    if not isinstance(raw, dict):
        raise EnvelopeRejected(RejectReason.INVALID_BODY, "card: not a JSON object")
    size = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode())
    try:
        card = AgentCard.model_validate(raw)
        params = card.noosphere()
    except (ValidationError, CardError) as exc:
        raise EnvelopeRejected(RejectReason.INVALID_BODY, f"card: {exc}") from exc
    check_card_limits(params, size, now_ms=now_ms, max_skew_ms=max_skew_ms)
    return CheckedCard(card, params)


def check_card(raw: Any, *, now_ms: int, max_skew_ms: int) -> CheckedCard:
    """``parse_card`` plus the owner's signature. Raises EnvelopeRejected."""
    checked = parse_card(raw, now_ms=now_ms, max_skew_ms=max_skew_ms)
    try:
        verify_card(checked.card)
    except CardSignatureError as exc:
        raise EnvelopeRejected(RejectReason.BAD_SIGNATURE, f"card: {exc}") from exc
    except CardError as exc:
        raise EnvelopeRejected(RejectReason.INVALID_BODY, f"card: {exc}") from exc
    return checked


class CardIndex:
    def __init__(
        self,
        store: NodeStore,
        metrics: NodeMetrics,
        peers: PeerBook,
        quotas: CardQuotas | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._peers = peers
        self.quotas = quotas or CardQuotas()
        self.arrivals: deque[CardArrival] = deque(maxlen=ARRIVALS_KEPT)
        self._held = 0  # unexpired cards, recounted by every sweep

    # ---- gossip ------------------------------------------------------------------------------

    def precheck_gossiped(self, envelope: Envelope, now_ms: int) -> None:
        """The checks the gossip validator runs before forwarding a card envelope."""
        checked = parse_card(envelope.body.get("card"), now_ms=now_ms, max_skew_ms=self._skew)
        if checked.params.peer_id != envelope.sender:
            raise EnvelopeRejected(RejectReason.SENDER_MISMATCH, "card names another node")

    def accept_gossiped(self, envelope: Envelope, now_ms: int) -> NoosphereCardParams:
        """Validate and store a card from a card envelope; raises EnvelopeRejected."""
        checked = check_card(envelope.body.get("card"), now_ms=now_ms, max_skew_ms=self._skew)
        if checked.params.peer_id != envelope.sender:
            raise EnvelopeRejected(RejectReason.SENDER_MISMATCH, "card names another node")
        self._admit(checked, now_ms, via=envelope.sender)
        return checked.params

    # ---- relayed cards (pull-sync, bids) -----------------------------------------------------

    def check_offered(self, raw: Any, now_ms: int) -> CheckedCard | RejectReason:
        """Stateless checks of a relayed card (safe to run in a worker thread)."""
        try:
            return check_card(raw, now_ms=now_ms, max_skew_ms=self._skew)
        except EnvelopeRejected as exc:
            return exc.reason

    def accept_relayed(self, offered: CheckedCard | RejectReason, now_ms: int, via: str) -> bool:
        """Store a checked card that ``via`` passed on (any peer may relay a card: the owner's
        signature is what counts, the relay's quota what bounds it). Returns whether it was
        stored; refusals are counted by reason, except versions already held."""
        try:
            if isinstance(offered, RejectReason):
                raise EnvelopeRejected(offered, "relayed card")
            self._admit(offered, now_ms, via=via)
        except EnvelopeRejected as exc:
            if exc.reason is not RejectReason.STALE_VERSION:  # already held: not an attack
                self._metrics.envelopes_rejected.labels(reason=exc.reason.value).inc()
            return False
        self._metrics.cards_synced.inc()
        return True

    def accept_synced(self, raw: Any, now_ms: int, via: str) -> bool:
        """Check and store one relayed card (a bid's card); see ``accept_relayed``."""
        return self.accept_relayed(self.check_offered(raw, now_ms), now_ms, via)

    # ---- admission ---------------------------------------------------------------------------

    def _admit(self, checked: CheckedCard, now_ms: int, *, via: str) -> None:
        params = checked.params
        owner = params.peer_id
        held = self._store.card_holding(params.card_id)
        if held is not None and held[0] >= params.seq:
            raise EnvelopeRejected(
                RejectReason.STALE_VERSION, f"card seq {params.seq} <= held {held[0]}"
            )
        quotas = self.quotas
        if held is None:
            if self._store.count_cards_of(owner, now_ms=now_ms) >= quotas.max_per_owner:
                raise EnvelopeRejected(RejectReason.OVER_QUOTA, "owner has too many cards")
            if self._held >= quotas.max_cards:
                raise EnvelopeRejected(RejectReason.OVER_QUOTA, "card index is full")
        relayed_before = held is not None and held[1] == via
        if (
            via != owner
            and not relayed_before
            and self._store.count_cards_relayed_by(via, now_ms=now_ms)
            >= quotas.max_relayed_per_peer
        ):
            raise EnvelopeRejected(RejectReason.OVER_QUOTA, "peer relayed too many cards")
        self._put(checked.card, params, now_ms, local=False, via=via)
        if held is None:
            self._held += 1
        self._peers.seen(owner, params.multiaddrs, now_ms)
        self.arrivals.append(
            CardArrival(
                card_id=params.card_id,
                seq=params.seq,
                issued_at=params.issued_at,
                received_at=now_ms,
            )
        )
        self._metrics.card_propagation.observe(max(0, now_ms - params.issued_at) / 1000)

    @property
    def _skew(self) -> int:
        return self.quotas.max_skew_ms

    # ---- this node's own cards ---------------------------------------------------------------

    def put_local(self, card: AgentCard, now_ms: int) -> NoosphereCardParams:
        params = card.noosphere()
        self._put(card, params, now_ms, local=True, via=params.peer_id)
        return params

    def _put(
        self, card: AgentCard, params: NoosphereCardParams, now_ms: int, *, local: bool, via: str
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
            via=via,
        )

    # ---- reading and expiry ------------------------------------------------------------------

    def sweep(self, now_ms: int) -> list[str]:
        """Drop gossiped cards past their expiry; returns their ids."""
        removed = self._store.delete_expired_cards(now_ms)
        if removed:
            self._metrics.cards_expired.inc(len(removed))
        self._held = self._store.count_cards(now_ms=now_ms)
        self._metrics.cards_known.set(self._held)
        return removed

    def list(
        self, now_ms: int, *, offset: int = 0, limit: int = -1, local_only: bool = False
    ) -> list[StoredCard]:
        """Unexpired cards, by owner and agent id (a page of them, or only this node's own)."""
        return self._store.list_cards(
            now_ms=now_ms, offset=offset, limit=limit, local_only=local_only
        )

    def with_prefix(
        self, prefix: str, now_ms: int, *, limit: int
    ) -> builtins.list[StoredCard]:  # `list` is a method here
        return self._store.cards_with_prefix(prefix, now_ms=now_ms, limit=limit)

    def count(self, now_ms: int) -> int:
        return self._store.count_cards(now_ms=now_ms)

    def counts_by_owner(self, now_ms: int) -> dict[str, int]:
        return self._store.card_counts_by_owner(now_ms=now_ms)

    def versions(self, now_ms: int) -> dict[str, int]:
        """card id -> seq of the unexpired cards (cheap: no card is decoded)."""
        return self._store.card_versions(now_ms=now_ms)

    def get(self, card_id: str, now_ms: int) -> StoredCard | None:
        stored = self._store.get_card(card_id)
        if stored is None or stored.expires_at <= now_ms:
            return None
        return stored
