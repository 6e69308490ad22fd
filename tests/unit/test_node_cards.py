"""Card index: which gossiped, synced and bid cards are accepted, why others are rejected (limits,
quotas, signatures), that every accepted card's owner lands in the peer book, and expiry sweeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from noosphere.agents.publish import NodeEndpoint, build_card
from noosphere.agents.spec import AgentSpec, load_agent_spec
from noosphere.node.cards import CardIndex, CardQuotas
from noosphere.node.metrics import NodeMetrics
from noosphere.node.peers import PeerBook
from noosphere.node.store import NodeStore
from noosphere.protocol import (
    MAX_CARD_BYTES,
    MAX_LIFETIME_MS,
    AgentCard,
    Envelope,
    EnvelopeKind,
    EnvelopeRejected,
    NodeKey,
    RejectReason,
    seal,
)

EXAMPLES = Path(__file__).parents[2] / "examples" / "agents"
CALCULATOR = load_agent_spec(EXAMPLES / "calculator.yaml")
SCHEDULER = load_agent_spec(EXAMPLES / "scheduler.yaml")
KEY_A = NodeKey.from_seed(b"a" * 32)
KEY_B = NodeKey.from_seed(b"b" * 32)
NOW = 1_800_000_000_000
TTL = 60_000


def card_for(
    spec: AgentSpec = CALCULATOR,
    key: NodeKey = KEY_A,
    *,
    seq: int = 1,
    issued_at: int = NOW,
    ttl_ms: int = TTL,
) -> AgentCard:
    endpoint = NodeEndpoint(
        rpc_url="http://127.0.0.1:7070/",
        multiaddrs=[f"/ip4/127.0.0.1/tcp/4001/p2p/{key.peer_id}"],
    )
    return build_card(spec, key, endpoint, seq=seq, issued_at_ms=issued_at, ttl_ms=ttl_ms)


def envelope_with(body: dict[str, Any], sender: NodeKey = KEY_A, seq: int = 1) -> Envelope:
    return seal(EnvelopeKind.CARD, body, sender, seq=seq, now_ms=NOW, ttl_ms=TTL)


def card_envelope(card: AgentCard, sender: NodeKey = KEY_A) -> Envelope:
    return envelope_with({"card": card.to_wire()}, sender)


def rejection(index: CardIndex, envelope: Envelope, now: int = NOW) -> RejectReason:
    with pytest.raises(EnvelopeRejected) as info:
        index.accept_gossiped(envelope, now)
    return info.value.reason


def gauge(metrics: NodeMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


@pytest.fixture
def index(store: NodeStore, metrics: NodeMetrics) -> CardIndex:
    return CardIndex(store, metrics, PeerBook(store))


def small_index(store: NodeStore, metrics: NodeMetrics, **quotas: int) -> CardIndex:
    return CardIndex(store, metrics, PeerBook(store), CardQuotas(**quotas))


def many_specs(count: int) -> list[AgentSpec]:
    return [CALCULATOR.model_copy(update={"id": f"calc-{i}"}) for i in range(count)]


def rejected(metrics: NodeMetrics, reason: str) -> float:
    name = "noosphere_gossip_envelopes_rejected_total"
    return metrics.registry.get_sample_value(name, {"reason": reason}) or 0.0


def test_good_card_is_accepted_and_stored(index: CardIndex) -> None:
    card = card_for(seq=3)
    params = index.accept_gossiped(card_envelope(card), NOW)
    assert params.card_id == f"{KEY_A.peer_id}/{CALCULATOR.id}"
    assert params.seq == 3
    stored = index.get(params.card_id, NOW)
    assert stored is not None
    assert stored.local is False
    assert stored.card == card.to_wire()
    assert stored.expires_at == NOW + TTL


def test_cards_from_every_example_are_accepted(index: CardIndex) -> None:
    for path in sorted(p for p in EXAMPLES.iterdir() if p.is_file()):
        index.accept_gossiped(card_envelope(card_for(load_agent_spec(path))), NOW)
    assert len(index.list(NOW)) == len([p for p in EXAMPLES.iterdir() if p.is_file()])


def test_card_inside_envelope_from_another_node_is_sender_mismatch(index: CardIndex) -> None:
    envelope = card_envelope(card_for(key=KEY_A), sender=KEY_B)
    assert rejection(index, envelope) is RejectReason.SENDER_MISMATCH
    assert index.list(NOW) == []


@pytest.mark.parametrize("resent_seq", [5, 4])
def test_same_or_older_seq_is_stale_version(index: CardIndex, resent_seq: int) -> None:
    index.accept_gossiped(card_envelope(card_for(seq=5)), NOW)
    assert rejection(index, card_envelope(card_for(seq=resent_seq))) is RejectReason.STALE_VERSION


def test_newer_seq_replaces_held_card(index: CardIndex) -> None:
    index.accept_gossiped(card_envelope(card_for(seq=5)), NOW)
    params = index.accept_gossiped(card_envelope(card_for(seq=6, issued_at=NOW + 1)), NOW + 1)
    stored = index.get(params.card_id, NOW + 1)
    assert stored is not None
    assert stored.seq == 6


def test_expired_card_is_rejected(index: CardIndex) -> None:
    card = card_for(issued_at=NOW - 2 * TTL, ttl_ms=TTL)
    assert rejection(index, card_envelope(card)) is RejectReason.EXPIRED


def test_card_expiring_exactly_now_is_rejected(index: CardIndex) -> None:
    card = card_for(issued_at=NOW - TTL, ttl_ms=TTL)
    assert rejection(index, card_envelope(card)) is RejectReason.EXPIRED


def test_card_with_tampered_name_is_bad_signature(index: CardIndex) -> None:
    wire = card_for().to_wire()
    wire["name"] = "Totally Legit Calculator"
    assert rejection(index, envelope_with({"card": wire})) is RejectReason.BAD_SIGNATURE


def test_card_with_tampered_price_is_bad_signature(index: CardIndex) -> None:
    wire = card_for().to_wire()
    params = wire["capabilities"]["extensions"][0]["params"]
    params["price"]["amount"] = "0"
    assert rejection(index, envelope_with({"card": wire})) is RejectReason.BAD_SIGNATURE


def test_card_re_signed_by_another_node_is_bad_signature(index: CardIndex) -> None:
    wire = card_for(key=KEY_A).to_wire()
    wire["signatures"] = card_for(key=KEY_B).to_wire()["signatures"]
    assert rejection(index, envelope_with({"card": wire})) is RejectReason.BAD_SIGNATURE


def test_unsigned_card_is_bad_signature(index: CardIndex) -> None:
    wire = card_for().to_wire()
    del wire["signatures"]
    assert rejection(index, envelope_with({"card": wire})) is RejectReason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "body",
    [{}, {"card": None}, {"card": "not a card"}, {"card": {"name": "x"}}],
    ids=["no-card", "null-card", "string-card", "incomplete-card"],
)
def test_body_without_a_valid_card_is_invalid_body(index: CardIndex, body: dict[str, Any]) -> None:
    assert rejection(index, envelope_with(body)) is RejectReason.INVALID_BODY


def test_card_without_noosphere_extension_is_invalid_body(index: CardIndex) -> None:
    wire = card_for().to_wire()
    wire["capabilities"]["extensions"] = []
    assert rejection(index, envelope_with({"card": wire})) is RejectReason.INVALID_BODY


def test_card_without_canonical_form_is_rejected(index: CardIndex) -> None:
    wire = card_for().to_wire()
    wire["x-big"] = 2**60
    envelope = Envelope.model_validate_json(
        json.dumps({**envelope_with({}).to_wire(), "body": {"card": wire}})
    )
    assert rejection(index, envelope) in (RejectReason.INVALID_BODY, RejectReason.BAD_SIGNATURE)


def test_rejected_card_does_not_replace_held_one(index: CardIndex) -> None:
    params = index.accept_gossiped(card_envelope(card_for(seq=1)), NOW)
    wire = card_for(seq=2).to_wire()
    wire["name"] = "Evil"
    rejection(index, envelope_with({"card": wire}))
    stored = index.get(params.card_id, NOW)
    assert stored is not None
    assert stored.seq == 1


def test_sweep_removes_expired_gossiped_cards_and_updates_gauges(
    index: CardIndex, metrics: NodeMetrics
) -> None:
    short = index.accept_gossiped(card_envelope(card_for(CALCULATOR, ttl_ms=1_000)), NOW)
    long = index.accept_gossiped(card_envelope(card_for(SCHEDULER, ttl_ms=TTL)), NOW)
    local = index.put_local(card_for(SCHEDULER, KEY_B, ttl_ms=1_000), NOW)

    assert index.sweep(NOW) == []
    assert gauge(metrics, "noosphere_cards_known") == 3

    later = NOW + 2_000
    assert index.sweep(later) == [short.card_id]
    # the expired local card stays in the store but no longer counts as known
    assert gauge(metrics, "noosphere_cards_known") == 1
    assert gauge(metrics, "noosphere_cards_expired_total") == 1
    assert [c.card_id for c in index.list(later)] == [long.card_id]
    assert index.get(short.card_id, later) is None
    assert index.get(local.card_id, later) is None


def test_get_hides_expired_card_before_sweep(index: CardIndex) -> None:
    params = index.accept_gossiped(card_envelope(card_for(ttl_ms=1_000)), NOW)
    assert index.get(params.card_id, NOW) is not None
    assert index.get(params.card_id, NOW + 1_000) is None


def test_put_local_stores_card_as_local(index: CardIndex, store: NodeStore) -> None:
    params = index.put_local(card_for(), NOW)
    stored = store.get_card(params.card_id)
    assert stored is not None
    assert stored.local is True


def test_accepted_card_is_recorded_as_an_arrival(index: CardIndex, metrics: NodeMetrics) -> None:
    card = card_for(seq=5, issued_at=NOW - 40)
    params = index.accept_gossiped(card_envelope(card), NOW)
    (arrival,) = index.arrivals
    assert (arrival.card_id, arrival.seq) == (params.card_id, 5)
    assert arrival.received_at - arrival.issued_at == 40
    count = "noosphere_card_propagation_seconds_count"
    assert metrics.registry.get_sample_value(count) == 1


def test_synced_card_relayed_by_anyone_is_accepted_once(
    index: CardIndex, metrics: NodeMetrics
) -> None:
    raw = card_for(seq=2).to_wire()
    assert index.accept_synced(raw, NOW, via=KEY_B.peer_id) is True
    assert (
        index.accept_synced(raw, NOW, via=KEY_B.peer_id) is False
    )  # already held: skipped, not an attack
    assert metrics.registry.get_sample_value("noosphere_cards_synced_total") == 1
    rejected = "noosphere_gossip_envelopes_rejected_total"
    assert metrics.registry.get_sample_value(rejected, {"reason": "stale_version"}) == 0


def test_synced_card_with_bad_signature_is_counted_and_skipped(
    index: CardIndex, metrics: NodeMetrics
) -> None:
    raw = card_for(seq=2).to_wire() | {"name": "Impostor"}
    assert index.accept_synced(raw, NOW, via=KEY_B.peer_id) is False
    rejected = "noosphere_gossip_envelopes_rejected_total"
    assert metrics.registry.get_sample_value(rejected, {"reason": "bad_signature"}) == 1
    assert index.list(NOW) == []


# ---- the network's card limits, on every path ---------------------------------------------------


def oversized_card() -> AgentCard:
    spec = CALCULATOR.model_copy(update={"description": "x" * (MAX_CARD_BYTES + 1)})
    return card_for(spec)


LIMIT_BREAKERS = {
    "lifetime": (lambda: card_for(ttl_ms=MAX_LIFETIME_MS + 1), RejectReason.LIFETIME),
    "century": (lambda: card_for(ttl_ms=100 * 365 * 86_400_000), RejectReason.LIFETIME),
    "future": (lambda: card_for(issued_at=NOW + 31_000), RejectReason.NOT_YET_VALID),
    "decade-ahead": (
        lambda: card_for(issued_at=NOW + 10 * 365 * 86_400_000),
        RejectReason.NOT_YET_VALID,
    ),
    "oversized": (oversized_card, RejectReason.OVERSIZED),
}


@pytest.mark.parametrize("name", LIMIT_BREAKERS)
def test_card_breaking_a_limit_is_refused_by_gossip(index: CardIndex, name: str) -> None:
    make, reason = LIMIT_BREAKERS[name]
    envelope = card_envelope(make())
    with pytest.raises(EnvelopeRejected) as info:  # the validator's check: never forwarded
        index.precheck_gossiped(envelope, NOW)
    assert info.value.reason is reason
    assert rejection(index, envelope) is reason
    assert index.list(NOW) == []


@pytest.mark.parametrize("name", LIMIT_BREAKERS)
def test_card_breaking_a_limit_is_refused_by_sync(
    index: CardIndex, metrics: NodeMetrics, name: str
) -> None:
    make, reason = LIMIT_BREAKERS[name]
    assert index.accept_synced(make().to_wire(), NOW, via=KEY_B.peer_id) is False
    assert rejected(metrics, reason.value) == 1
    assert index.list(NOW) == []


def test_card_issued_within_the_clock_skew_is_accepted(index: CardIndex) -> None:
    index.accept_gossiped(card_envelope(card_for(issued_at=NOW + 29_000)), NOW)


def test_card_valid_for_exactly_a_day_is_accepted(index: CardIndex) -> None:
    index.accept_gossiped(card_envelope(card_for(ttl_ms=MAX_LIFETIME_MS)), NOW)


def test_precheck_does_not_need_the_signature_but_the_handler_does(index: CardIndex) -> None:
    wire = card_for().to_wire()
    wire["name"] = "Tampered"
    envelope = envelope_with({"card": wire})
    index.precheck_gossiped(envelope, NOW)  # cheap checks pass
    assert rejection(index, envelope) is RejectReason.BAD_SIGNATURE


# ---- quotas -----------------------------------------------------------------------------------


def test_an_owner_holds_at_most_its_quota_of_cards(store: NodeStore, metrics: NodeMetrics) -> None:
    index = small_index(store, metrics, max_per_owner=2)
    specs = many_specs(3)
    for spec in specs[:2]:
        index.accept_gossiped(card_envelope(card_for(spec)), NOW)
    assert rejection(index, card_envelope(card_for(specs[2]))) is RejectReason.OVER_QUOTA
    # a new version of a held card is not a new card
    index.accept_gossiped(card_envelope(card_for(specs[0], seq=2)), NOW)
    # and the quota is per owner
    index.accept_gossiped(card_envelope(card_for(specs[2], KEY_B), KEY_B), NOW)


def test_a_relaying_peer_introduces_at_most_its_quota(
    store: NodeStore, metrics: NodeMetrics
) -> None:
    index = small_index(store, metrics, max_relayed_per_peer=2)
    relay = NodeKey.from_seed(b"r" * 32).peer_id
    owners = [NodeKey.from_seed(bytes([i]) * 32) for i in range(1, 5)]
    cards = [card_for(key=k) for k in owners]
    assert [index.accept_synced(c.to_wire(), NOW, via=relay) for c in cards] == [
        True,
        True,
        False,
        False,
    ]
    assert rejected(metrics, "over_quota") == 2
    # the same relay may pass on newer versions of what it introduced
    newer = card_for(key=owners[0], seq=2)
    assert index.accept_synced(newer.to_wire(), NOW, via=relay) is True
    # a refused card still arrives from its owner, and then no longer counts for the relay
    index.accept_gossiped(card_envelope(cards[2], owners[2]), NOW)
    index.accept_gossiped(card_envelope(card_for(key=owners[0], seq=3), owners[0]), NOW)
    assert index.accept_synced(cards[3].to_wire(), NOW, via=relay) is True
    # a relay's own cards never count against it
    own = card_for(key=NodeKey.from_seed(b"r" * 32))
    assert index.accept_synced(own.to_wire(), NOW, via=relay) is True


def test_a_full_index_refuses_new_owners_but_takes_updates(
    store: NodeStore, metrics: NodeMetrics
) -> None:
    index = small_index(store, metrics, max_cards=2)
    index.accept_gossiped(card_envelope(card_for(CALCULATOR)), NOW)
    index.accept_gossiped(card_envelope(card_for(SCHEDULER)), NOW)
    stranger = NodeKey.from_seed(b"s" * 32)
    envelope = card_envelope(card_for(key=stranger), stranger)
    assert rejection(index, envelope) is RejectReason.OVER_QUOTA
    index.accept_gossiped(card_envelope(card_for(CALCULATOR, seq=2)), NOW)
    index.sweep(NOW + TTL)  # both expire: room again
    index.accept_gossiped(
        card_envelope(card_for(key=stranger, issued_at=NOW + TTL), stranger), NOW + TTL
    )


# ---- owners in the peer book -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["gossip", "sync", "bid"])
def test_the_owner_of_every_accepted_card_is_in_the_peer_book(
    store: NodeStore, metrics: NodeMetrics, path: str
) -> None:
    peers = PeerBook(store)
    index = CardIndex(store, metrics, peers)
    card = card_for()
    if path == "gossip":
        index.accept_gossiped(card_envelope(card), NOW)
    else:  # a bid's card comes from its owner, a synced one from any peer
        via = KEY_A.peer_id if path == "bid" else KEY_B.peer_id
        assert index.accept_synced(card.to_wire(), NOW, via=via)
    (peer,) = peers.list()
    assert peer.peer_id == KEY_A.peer_id
    assert peer.addrs == [f"/ip4/127.0.0.1/tcp/4001/p2p/{KEY_A.peer_id}"]


def test_refused_cards_leave_no_peer_behind(store: NodeStore, metrics: NodeMetrics) -> None:
    peers = PeerBook(store)
    index = CardIndex(store, metrics, peers)
    assert not index.accept_synced(oversized_card().to_wire(), NOW, via=KEY_B.peer_id)
    assert peers.list() == []
