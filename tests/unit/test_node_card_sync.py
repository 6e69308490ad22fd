"""Card pull-sync: a hostile reply costs the puller bounded work (rules, quotas, the relay's rate
limit), its bad cards are never stored, the event loop keeps running between chunks, and a node
answers one full sync per peer per interval."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from test_node_cards import CALCULATOR, card_for, oversized_card

from noosphere.node.card_sync import CHUNK_CARDS, CardSync
from noosphere.node.cards import CardIndex, CardQuotas
from noosphere.node.metrics import NodeMetrics
from noosphere.node.peers import PeerBook
from noosphere.node.store import NodeStore
from noosphere.protocol import NodeKey
from noosphere.protocol.sync import CardSyncReply

RELAY = NodeKey.from_seed(b"r" * 32).peer_id


def now() -> int:
    import time

    return time.time_ns() // 1_000_000


def fresh_card(key: NodeKey, **kwargs: Any) -> dict[str, Any]:
    return card_for(CALCULATOR, key, issued_at=now(), **kwargs).to_wire()


def owners(count: int) -> list[NodeKey]:
    return [NodeKey.from_seed(i.to_bytes(32, "big")) for i in range(1, count + 1)]


def reply_of(cards: list[Any]) -> bytes:
    return json.dumps({"v": 1, "cards": cards}).encode()


def rejected(metrics: NodeMetrics, reason: str) -> float:
    name = "noosphere_gossip_envelopes_rejected_total"
    return metrics.registry.get_sample_value(name, {"reason": reason}) or 0.0


def make_sync(
    store: NodeStore, metrics: NodeMetrics, *, budget: int = 10_000, **quotas: int
) -> tuple[CardSync, CardIndex]:
    index = CardIndex(store, metrics, PeerBook(store), CardQuotas(**quotas))
    tokens = {"left": budget}

    def allow(peer: str, count: int) -> bool:
        assert peer == RELAY
        if tokens["left"] < count:
            return False
        tokens["left"] -= count
        return True

    return CardSync(index, store, metrics, allow=allow), index


async def test_pull_keeps_valid_cards_and_counts_the_rest(
    store: NodeStore, metrics: NodeMetrics
) -> None:
    sync, index = make_sync(store, metrics)
    keys = owners(3)
    good = [fresh_card(k) for k in keys]
    forged = fresh_card(keys[0]) | {"name": "Impostor"}
    century = card_for(key=keys[1], issued_at=now(), ttl_ms=100 * 365 * 86_400_000).to_wire()
    big = oversized_card().to_wire()

    async def request(peer: str) -> bytes:
        return reply_of([*good, good[0], forged, century, big, "junk", {"name": 1}])

    assert await sync.pull(RELAY, request) == 3
    assert len(index.list(now())) == 3
    assert rejected(metrics, "bad_signature") == 1
    assert rejected(metrics, "lifetime") == 1
    assert rejected(metrics, "oversized") == 1
    assert rejected(metrics, "invalid_body") == 2
    assert rejected(metrics, "stale_version") == 0  # a repeat is not an attack


async def test_pull_is_bounded_by_the_relays_rate_limit(
    store: NodeStore, metrics: NodeMetrics
) -> None:
    sync, _ = make_sync(store, metrics, budget=5)

    async def request(peer: str) -> bytes:
        return reply_of([fresh_card(k) for k in owners(20)])

    assert await sync.pull(RELAY, request) == 5
    assert rejected(metrics, "rate_limited") == 15


async def test_pull_is_bounded_by_the_relay_quota(store: NodeStore, metrics: NodeMetrics) -> None:
    sync, _ = make_sync(store, metrics, max_relayed_per_peer=7)

    async def request(peer: str) -> bytes:
        return reply_of([fresh_card(k) for k in owners(20)])

    assert await sync.pull(RELAY, request) == 7
    assert rejected(metrics, "over_quota") == 13


async def test_unreadable_reply_is_counted_and_ignored(
    store: NodeStore, metrics: NodeMetrics
) -> None:
    sync, _index = make_sync(store, metrics)

    async def request(peer: str) -> bytes:
        return b'{"v": 1, "cards": [' * 10

    assert await sync.pull(RELAY, request) == 0
    assert rejected(metrics, "malformed") == 1


async def test_event_loop_runs_between_chunks(store: NodeStore, metrics: NodeMetrics) -> None:
    sync, _index = make_sync(store, metrics)
    cards = [fresh_card(k) for k in owners(4 * CHUNK_CARDS)]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def request(peer: str) -> bytes:
        return reply_of(cards)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start = ticks
    assert await sync.pull(RELAY, request) == len(cards)
    task.cancel()
    assert ticks - start >= 4  # at least once per chunk: the loop was never held for the whole


async def test_serve_answers_each_peer_once_per_interval(
    store: NodeStore, metrics: NodeMetrics
) -> None:
    sync, index = make_sync(store, metrics)
    for key in owners(3):  # cards from their owners (first-hand)
        index.accept_synced(fresh_card(key), now(), via=key.peer_id)
    full = CardSyncReply.model_validate_json(sync.serve("peer-1"))
    assert len(full.cards) == 3
    assert CardSyncReply.model_validate_json(sync.serve("peer-1")).cards == []
    assert len(CardSyncReply.model_validate_json(sync.serve("peer-2")).cards) == 3


async def test_second_hand_cards_are_not_served(store: NodeStore, metrics: NodeMetrics) -> None:
    sync, index = make_sync(store, metrics)
    keys = owners(4)
    for key in keys[:3]:  # injected by a relay: used here, never passed on
        index.accept_synced(fresh_card(key), now(), via=RELAY)
    index.accept_synced(fresh_card(keys[3]), now(), via=keys[3].peer_id)
    served = CardSyncReply.model_validate_json(sync.serve("peer-1")).cards
    assert [c["capabilities"]["extensions"][0]["params"]["peerId"] for c in served] == [
        keys[3].peer_id
    ]


async def test_served_cards_pass_the_pullers_checks(
    store: NodeStore, metrics: NodeMetrics, tmp_path: Any
) -> None:
    sync, index = make_sync(store, metrics)
    for key in owners(3):
        index.accept_synced(fresh_card(key), now(), via=key.peer_id)
    other = NodeStore(tmp_path / "other.db")
    try:
        puller, _ = make_sync(other, NodeMetrics())

        async def request(peer: str) -> bytes:
            return sync.serve("puller")

        assert await puller.pull(RELAY, request) == 3
    finally:
        other.close()
