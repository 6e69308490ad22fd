"""Hostile and bursty gossip against real node processes: every forged, replayed, expired,
misattributed or stale message is rejected and counted; a 200-card burst loses nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from noosphere.agents.publish import NodeEndpoint, build_card
from noosphere.agents.spec import load_agent_spec
from noosphere.node.p2p import P2PHost
from noosphere.protocol import (
    TOPIC_FOR_KIND,
    EnvelopeBatch,
    EnvelopeKind,
    NodeKey,
    b64url_encode,
    seal,
)

from .support import EXAMPLES, Cluster, card_ids, metric, wait_until

pytestmark = pytest.mark.integration

CARDS = TOPIC_FOR_KIND[EnvelopeKind.CARD]
REJECTED = "noosphere_gossip_envelopes_rejected_total"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _card_body(key: NodeKey, seq: int, ttl_ms: int = 60_000) -> dict:
    spec = load_agent_spec(EXAMPLES / "flaky-bargain.yaml")
    endpoint = NodeEndpoint(rpc_url="http://127.0.0.1:1", multiaddrs=[])
    card = build_card(spec, key, endpoint, seq=seq, issued_at_ms=_now_ms(), ttl_ms=ttl_ms)
    return {"card": card.to_wire()}


def _batch(*envelopes) -> bytes:
    return EnvelopeBatch(envelopes=list(envelopes)).encode()


async def _start_peer(key: NodeKey) -> P2PHost:
    """A bare libp2p peer in this test process, subscribed to the cards topic."""
    host = P2PHost(
        seed=key.seed,
        listen_host="127.0.0.1",
        listen_port=0,
        topics=[CARDS],
        on_message=lambda _m: None,
    )
    await host.start()
    return host


async def _hostile_session(target: str, send: list[bytes]) -> None:
    """Join the network as a real libp2p peer and publish raw gossip data, paced."""
    host = await _start_peer(HOSTILE)
    try:
        await host.connect(target)
        for _ in range(100):
            if await host.mesh_size(CARDS) > 0:
                break
            await asyncio.sleep(0.1)
        for data in send:
            await host.publish(CARDS, data)
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)
    finally:
        await host.stop()


HOSTILE = NodeKey.generate()


def test_each_bad_message_is_rejected_and_counted(cluster: Cluster) -> None:
    a = cluster.start("a", agents=[EXAMPLES / "calculator.yaml"])
    victim = NodeKey.generate()
    now = _now_ms()

    good_new = seal(
        EnvelopeKind.CARD, _card_body(HOSTILE, seq=100), HOSTILE, seq=10, now_ms=now, ttl_ms=60_000
    )
    replayed = good_new
    older_card = seal(
        EnvelopeKind.CARD, _card_body(HOSTILE, seq=50), HOSTILE, seq=11, now_ms=now, ttl_ms=60_000
    )
    forged = seal(
        EnvelopeKind.CARD, _card_body(HOSTILE, seq=200), HOSTILE, seq=12, now_ms=now, ttl_ms=60_000
    )
    forged = forged.model_copy(update={"signature": b64url_encode(victim.sign(b"something else"))})
    expired = seal(
        EnvelopeKind.CARD,
        _card_body(HOSTILE, seq=300),
        HOSTILE,
        seq=13,
        now_ms=now - 120_000,
        ttl_ms=60_000,
    )
    someone_elses_card = seal(
        EnvelopeKind.CARD, _card_body(victim, seq=400), HOSTILE, seq=14, now_ms=now, ttl_ms=60_000
    )
    messages = [
        _batch(e) for e in (good_new, replayed, older_card, forged, expired, someone_elses_card)
    ]
    asyncio.run(_hostile_session(a.multiaddr, messages))

    hostile_card = f"{HOSTILE.peer_id}/bargain-calculator"
    wait_until(lambda: hostile_card in card_ids(a))
    for reason in ("replay", "stale_version", "bad_signature", "expired", "sender_mismatch"):
        wait_until(lambda reason=reason: metric(a, REJECTED, reason=reason) >= 1, timeout=10)
    with a.client() as client:
        assert client.card(hostile_card).seq == 100
        assert f"{victim.peer_id}/bargain-calculator" not in {c.card_id for c in client.cards()}


def _write_agents(directory: Path, count: int) -> list[Path]:
    directory.mkdir()
    paths = []
    for i in range(count):
        path = directory / f"agent-{i:03d}.yaml"
        path.write_text(
            f"name: Burst Agent {i}\n"
            f"description: Synthetic agent number {i} for the burst test.\n"
            "skills:\n"
            f"  - name: Skill {i}\n"
            f"    description: Does thing {i}.\n"
            f"    tags: [burst, t{i % 7}]\n"
        )
        paths.append(path)
    return paths


def test_burst_of_200_cards_reaches_every_node(cluster: Cluster, tmp_path: Path) -> None:
    agents = _write_agents(tmp_path / "agents", 200)
    no_dialing = {"NOOSPHERE_TARGET_PEERS": "0"}
    a = cluster.start("a", agents=agents, extra_args=["--card-ttl", "600"], env=no_dialing)
    b = cluster.start("b", bootstrap=[a.multiaddr], env=no_dialing)
    c = cluster.start("c", bootstrap=[b.multiaddr], env=no_dialing)  # C hears A only through B
    for node in (b, c):
        wait_until(lambda node=node: len(card_ids(node)) == 200, timeout=60)
    with c.client() as client:
        assert {p.peer_id for p in client.peers() if p.connected} == {b.peer_id}
        assert a.peer_id in {p.peer_id for p in client.peers()}  # known from its cards only
    for node in (b, c):
        assert metric(node, "noosphere_gossip_inbound_overflow_total") == 0
        assert metric(node, REJECTED, reason="rate_limited") == 0


async def _send_garbage_frame(target: str) -> None:
    """Open a raw GossipSub stream to ``target`` and write a frame that is not a protobuf RPC."""
    from libp2p.peer.id import ID
    from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
    from libp2p.utils.varint import encode_uvarint

    host = await _start_peer(NodeKey.generate())
    try:
        peer = await host.connect(target)
        garbage = b"\xff" * 64

        async def write() -> None:
            stream = await host._host.new_stream(ID.from_base58(peer), [PROTOCOL_ID_V11])
            await stream.write(encode_uvarint(len(garbage)) + garbage)

        await host._call(write)
        await asyncio.sleep(1.0)
    finally:
        await host.stop()


def test_undecodable_frame_does_not_take_the_node_down(cluster: Cluster) -> None:
    a = cluster.start("a", agents=[EXAMPLES / "calculator.yaml"])
    asyncio.run(_send_garbage_frame(a.multiaddr))
    assert a.alive
    assert metric(a, "noosphere_p2p_restarts") == 0  # the bad stream was dropped, not the host
    b = cluster.start("b", agents=[EXAMPLES / "summarizer.toml"], bootstrap=[a.multiaddr])
    wait_until(lambda: f"{b.peer_id}/document-summarizer" in card_ids(a))
