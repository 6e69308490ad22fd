"""Card poisoning, against real node processes: a hostile peer serves a pull-sync reply full of
cards that break the network's rules (valid for a century, issued ten years ahead, a megabyte each)
and thousands of well-formed cards from throw-away identities, and gossips the same shapes. The
victim stores none of the bad ones, at most its quota of the rest, keeps answering while it checks
them, and passes none of them on to a node that never talked to the attacker. Also: the owner of a
card learned only through sync is in the peer book (issue 21), and the sync path is forced."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from noosphere.agents.publish import NodeEndpoint, build_card
from noosphere.agents.spec import load_agent_spec
from noosphere.node.launcher import LocalNode
from noosphere.node.p2p import P2PHost
from noosphere.protocol import TOPIC_FOR_KIND, EnvelopeBatch, EnvelopeKind, NodeKey, seal
from noosphere.protocol.sync import CARD_SYNC_PROTOCOL

from .support import EXAMPLES, Cluster, card_ids, metric, own_card_ids, wait_until

pytestmark = pytest.mark.integration

CARDS = TOPIC_FOR_KIND[EnvelopeKind.CARD]
REJECTED = "noosphere_gossip_envelopes_rejected_total"
SPEC = load_agent_spec(EXAMPLES / "flaky-bargain.yaml")
YEAR_MS = 365 * 86_400_000
NO_DIALING = {"NOOSPHERE_TARGET_PEERS": "0"}  # nodes talk only to their bootstrap peers


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _card(
    key: NodeKey, *, issued_at: int | None = None, ttl_ms: int = 600_000, pad: int = 0
) -> dict[str, Any]:
    spec = SPEC if not pad else SPEC.model_copy(update={"description": "x" * pad})
    endpoint = NodeEndpoint(rpc_url="http://127.0.0.1:9/", multiaddrs=[])
    issued = _now_ms() if issued_at is None else issued_at
    return build_card(spec, key, endpoint, seq=1, issued_at_ms=issued, ttl_ms=ttl_ms).to_wire()


def _owners(cards: list[dict[str, Any]]) -> set[str]:
    return {c["capabilities"]["extensions"][0]["params"]["peerId"] for c in cards}


def _refused(node: LocalNode) -> float:
    """Cards refused because the relay was over its rate limit or quota."""
    return metric(node, REJECTED, reason="rate_limited") + metric(
        node, REJECTED, reason="over_quota"
    )


def _held_from(node: LocalNode, owners: set[str]) -> int:
    return sum(1 for cid in card_ids(node) if cid.split("/")[0] in owners)


async def _with_hostile_host(
    key: NodeKey, serve: Callable[[str], Awaitable[bytes]] | None, body: Callable[[P2PHost], Any]
) -> Any:
    host = P2PHost(
        seed=key.seed,
        listen_host="127.0.0.1",
        listen_port=0,
        topics=[CARDS],
        on_message=lambda _m: None,
    )
    if serve is not None:
        host.serve(CARD_SYNC_PROTOCOL, serve)
    await host.start()
    try:
        return await body(host)
    finally:
        await host.stop()


def test_cards_learned_only_by_sync_record_their_owner(cluster: Cluster) -> None:
    """The owner's cards reach B and then C through the pull-sync alone (the owner, a libp2p
    host in this process, never gossips), and C's peer book lists the owner (issue 21)."""
    owner = NodeKey.generate()
    agents = [SPEC.model_copy(update={"id": f"agent-{i}"}) for i in range(20)]
    endpoint = NodeEndpoint(rpc_url="http://127.0.0.1:9/", multiaddrs=[])
    cards = [
        build_card(spec, owner, endpoint, seq=1, issued_at_ms=_now_ms(), ttl_ms=600_000).to_wire()
        for spec in agents
    ]
    data = json.dumps({"v": 1, "cards": cards}).encode()

    async def serve(_peer: str) -> bytes:
        return data

    async def scenario(host: P2PHost) -> tuple[LocalNode, LocalNode]:
        owner_addr = f"{host.listen_addrs[0]}"
        b = await asyncio.to_thread(cluster.start, "b", bootstrap=[owner_addr], env=NO_DIALING)
        await asyncio.to_thread(wait_until, lambda: len(card_ids(b)) == 20, 60)
        c = await asyncio.to_thread(cluster.start, "c", bootstrap=[b.multiaddr], env=NO_DIALING)
        await asyncio.to_thread(wait_until, lambda: len(card_ids(c)) == 20, 60)
        return b, c

    b, c = asyncio.run(_with_hostile_host(owner, serve, scenario))
    assert metric(c, "noosphere_cards_synced_total") == 20  # no card came by gossip
    with c.client() as client:
        peers = client.peers()
        assert {p.peer_id for p in peers if p.connected} == {b.peer_id}
        assert owner.peer_id in {p.peer_id for p in peers}  # known from its cards only


def test_poisoned_sync_reply_is_refused_and_not_relayed(cluster: Cluster) -> None:
    hostile = NodeKey.generate()
    now = _now_ms()
    century = [_card(NodeKey.generate(), ttl_ms=100 * YEAR_MS) for _ in range(300)]
    ahead = [
        _card(NodeKey.generate(), issued_at=now + 10 * YEAR_MS, ttl_ms=100 * YEAR_MS)
        for _ in range(300)
    ]
    huge = [_card(NodeKey.generate(), pad=1_000_000) for _ in range(4)]
    sybils = [_card(NodeKey.generate()) for _ in range(2_200)]
    data = json.dumps({"v": 1, "cards": [*century, *ahead, *huge, *sybils]}).encode()
    served: list[str] = []
    bad = _owners(century) | _owners(ahead) | _owners(huge)
    sybil_owners = _owners(sybils)

    def _accounted(victim: LocalNode) -> float:
        """Sybil cards the victim has either stored or refused (all of them once it is done)."""
        return _held_from(victim, sybil_owners) + _refused(victim)

    async def serve(peer: str) -> bytes:
        served.append(peer)
        return data

    async def attack(host: P2PHost) -> tuple[LocalNode, LocalNode]:
        hostile_addr = host.listen_addrs[0]
        victim = await asyncio.to_thread(
            cluster.start,
            "victim",
            agents=[EXAMPLES / "calculator.yaml"],
            bootstrap=[hostile_addr],
            env=NO_DIALING,
        )
        answered = 0

        def synced() -> bool:
            nonlocal answered
            with victim.client() as client:  # the victim keeps answering while it checks
                client.status()
            answered += 1
            return metric(victim, "noosphere_cards_synced_total") > 0 and bool(served)

        await asyncio.to_thread(wait_until, synced, 90)
        await asyncio.to_thread(wait_until, lambda: _accounted(victim) == len(sybils), 120)
        assert answered >= 1
        bystander = await asyncio.to_thread(
            cluster.start, "bystander", bootstrap=[victim.multiaddr], env=NO_DIALING
        )
        return victim, bystander

    victim, bystander = asyncio.run(_with_hostile_host(hostile, serve, attack))

    assert _held_from(victim, bad) == 0
    assert metric(victim, REJECTED, reason="lifetime") == len(century)
    assert metric(victim, REJECTED, reason="not_yet_valid") == len(ahead)
    held = _held_from(victim, sybil_owners)
    assert 0 < held <= 2_000  # the rate limit (1,000 at once) and the relay quota bound it
    assert held + _refused(victim) == len(sybils)
    # the bystander syncs from the victim: it gets the victim's own card and nothing injected
    (own,) = own_card_ids(victim)
    wait_until(lambda: own in card_ids(bystander), timeout=60)
    assert _held_from(bystander, bad | sybil_owners) == 0


def test_gossiped_cards_breaking_the_rules_are_neither_stored_nor_forwarded(
    cluster: Cluster,
) -> None:
    hostile = NodeKey.generate()
    victim = cluster.start("victim", env=NO_DIALING)
    bystander = cluster.start("bystander", bootstrap=[victim.multiaddr], env=NO_DIALING)
    wait_until(lambda: bool(bystander.client().peers()), timeout=30)

    def envelope(card: dict[str, Any], seq: int) -> bytes:
        env = seal(
            EnvelopeKind.CARD, {"card": card}, hostile, seq=seq, now_ms=_now_ms(), ttl_ms=60_000
        )
        return EnvelopeBatch(envelopes=[env]).encode()

    bad = [
        envelope(_card(hostile, ttl_ms=100 * YEAR_MS), 1),
        envelope(_card(hostile, issued_at=_now_ms() + 10 * YEAR_MS, ttl_ms=60_000), 2),
        envelope(_card(hostile, pad=40_000), 3),
    ]
    good = envelope(_card(hostile), 4)

    async def attack(host: P2PHost) -> None:
        await host.connect(victim.multiaddr)
        for _ in range(100):
            if await host.mesh_size(CARDS) > 0:
                break
            await asyncio.sleep(0.1)
        for data in [*bad, good]:
            await host.publish(CARDS, data)
            await asyncio.sleep(0.2)
        hostile_card = f"{hostile.peer_id}/bargain-calculator"
        await asyncio.to_thread(wait_until, lambda: hostile_card in card_ids(bystander), 30)

    asyncio.run(_with_hostile_host(hostile, None, attack))
    for reason in ("lifetime", "not_yet_valid", "oversized"):
        assert metric(victim, REJECTED, reason=reason) == 1
        assert metric(bystander, REJECTED, reason=reason) == 0  # never forwarded
    with bystander.client() as client:
        assert client.card(f"{hostile.peer_id}/bargain-calculator").seq == 1  # the good one
