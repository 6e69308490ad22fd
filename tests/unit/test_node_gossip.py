"""Gossip layer: replay guard, sequence numbers, stateless validation and the receive path."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noosphere.node import gossip
from noosphere.node.config import GossipConfig, NodeConfig
from noosphere.node.gossip import REPLAY_MEMORY, GossipRouter, ReplayGuard, now_ms
from noosphere.node.metrics import NodeMetrics
from noosphere.node.p2p import InboundMessage, P2PError
from noosphere.node.store import NodeStore
from noosphere.protocol import (
    TOPIC_FOR_KIND,
    Envelope,
    EnvelopeBatch,
    EnvelopeKind,
    EnvelopeRejected,
    NodeKey,
    RejectReason,
    check_envelope,
    decode_batch,
    seal,
)

KEY = NodeKey.from_seed(bytes(range(32)))
OTHER = NodeKey.from_seed(bytes(range(1, 33)))
CARD_TOPIC = TOPIC_FOR_KIND[EnvelopeKind.CARD]
TASK_TOPIC = TOPIC_FOR_KIND[EnvelopeKind.TASK]


def make_envelope(
    kind: EnvelopeKind = EnvelopeKind.TASK,
    *,
    key: NodeKey = KEY,
    seq: int = 1,
    issued_at: int | None = None,
    ttl_ms: int = 60_000,
    body: dict[str, Any] | None = None,
) -> Envelope:
    return seal(
        kind,
        {"n": seq} if body is None else body,
        key,
        seq=seq,
        now_ms=now_ms() if issued_at is None else issued_at,
        ttl_ms=ttl_ms,
    )


def encode(*envelopes: Envelope) -> bytes:
    return EnvelopeBatch(envelopes=list(envelopes)).encode()


def rejected(metrics: NodeMetrics, reason: RejectReason) -> float:
    name = "noosphere_gossip_envelopes_rejected_total"
    return metrics.registry.get_sample_value(name, {"reason": reason.value}) or 0.0


def total_rejected(metrics: NodeMetrics) -> float:
    return sum(rejected(metrics, reason) for reason in RejectReason)


def accepted(metrics: NodeMetrics, kind: EnvelopeKind) -> float:
    name = "noosphere_gossip_envelopes_accepted_total"
    return metrics.registry.get_sample_value(name, {"kind": kind.value}) or 0.0


async def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.002)


@contextlib.asynccontextmanager
async def running(coro: Any) -> Any:
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def router(store: NodeStore, metrics: NodeMetrics) -> GossipRouter:
    return GossipRouter(KEY, store, metrics, NodeConfig())


# ---- ReplayGuard -----------------------------------------------------------------------------


def first_occurrences(seqs: list[int], above: int = 0) -> list[int]:
    return [s for s in dict.fromkeys(seqs) if s > above]


@given(seqs=st.lists(st.integers(min_value=1, max_value=60), max_size=200))
def test_replay_guard_admits_each_seq_exactly_once(seqs: list[int]) -> None:
    guard = ReplayGuard({})
    admitted = [s for s in seqs if guard.admit("alice", s)]
    assert admitted == first_occurrences(seqs)


@given(
    floor=st.integers(min_value=0, max_value=40),
    seqs=st.lists(st.integers(min_value=0, max_value=60), max_size=200),
)
def test_replay_guard_refuses_seqs_at_or_below_persisted_floor(floor: int, seqs: list[int]) -> None:
    guard = ReplayGuard({"alice": floor})
    admitted = [s for s in seqs if guard.admit("alice", s)]
    assert admitted == first_occurrences(seqs, above=floor)


@given(
    events=st.lists(
        st.tuples(st.sampled_from(["alice", "bob", "carol"]), st.integers(1, 20)), max_size=200
    )
)
def test_replay_guard_tracks_senders_independently(events: list[tuple[str, int]]) -> None:
    guard = ReplayGuard({"bob": 10})
    admitted = [e for e in events if guard.admit(*e)]
    expected = [(s, q) for s, q in dict.fromkeys(events) if q > (10 if s == "bob" else 0)]
    assert admitted == expected


@given(seqs=st.lists(st.integers(min_value=1, max_value=40), max_size=150))
def test_replay_guard_never_admits_twice_even_after_eviction(seqs: list[int]) -> None:
    with mock.patch.object(gossip, "REPLAY_MEMORY", 8):
        guard = ReplayGuard({})
        admitted = [s for s in seqs if guard.admit("alice", s)]
    assert len(admitted) == len(set(admitted))


def test_replay_guard_refuses_unseen_seq_older_than_its_memory() -> None:
    guard = ReplayGuard({})
    window = range(1_000, 1_000 + REPLAY_MEMORY)
    assert all(guard.admit("alice", s) for s in window)
    assert guard.admit("alice", 999) is False
    assert guard.admit("alice", 1) is False
    assert guard.admit("alice", window[-1] + 1) is True


def test_replay_guard_forgets_oldest_seq_once_memory_is_full() -> None:
    guard = ReplayGuard({})
    for s in range(1, REPLAY_MEMORY + 2):
        assert guard.admit("alice", s)
    assert guard.admit("alice", 1) is False  # evicted, but below the remembered window
    assert guard.admit("alice", 2) is False  # still remembered


# ---- outbound: sequence numbers and publishing -----------------------------------------------


def test_next_seq_is_strictly_increasing(router: GossipRouter) -> None:
    seqs = [router.next_seq() for _ in range(200)]
    assert all(a < b for a, b in itertools.pairwise(seqs))


def test_next_seq_is_persisted_in_meta(router: GossipRouter, store: NodeStore) -> None:
    last = [router.next_seq() for _ in range(3)][-1]
    assert store.get_meta("own_seq") == str(last)


def test_new_router_on_same_store_continues_above_last_seq(
    store: NodeStore, metrics: NodeMetrics
) -> None:
    far_future = (now_ms() + 10**9) * 1000  # as if the clock went backwards since the last run
    store.set_meta("own_seq", str(far_future))
    restarted = GossipRouter(KEY, store, metrics, NodeConfig())
    assert restarted.next_seq() == far_future + 1


def test_publish_returns_signed_envelope_with_increasing_seq(router: GossipRouter) -> None:
    first = router.publish(EnvelopeKind.TASK, {"task": 1})
    second = router.publish(EnvelopeKind.TASK, {"task": 2})
    assert first.sender == KEY.peer_id
    assert first.seq < second.seq
    assert second.body == {"task": 2}
    check_envelope(second, now_ms=now_ms(), max_skew_ms=0)


def test_publish_uses_configured_envelope_ttl(store: NodeStore, metrics: NodeMetrics) -> None:
    router = GossipRouter(KEY, store, metrics, NodeConfig(envelope_ttl_s=42))
    envelope = router.publish(EnvelopeKind.FEEDBACK, {})
    assert envelope.expires_at - envelope.issued_at == 42_000


async def test_publisher_sends_queued_envelopes_as_one_batch_on_their_topic(
    router: GossipRouter, metrics: NodeMetrics
) -> None:
    sent: list[tuple[str, bytes]] = []

    async def transport_publish(topic: str, data: bytes) -> None:
        sent.append((topic, data))

    envelopes = [router.publish(EnvelopeKind.TASK, {"task": i}) for i in range(3)]
    async with running(router.run_publisher(TASK_TOPIC, transport_publish)):
        await wait_until(lambda: bool(sent))
    [(topic, data)] = sent
    assert topic == TASK_TOPIC
    assert decode_batch(data).envelopes == envelopes
    published = "noosphere_gossip_messages_published_total"
    assert metrics.registry.get_sample_value(published, {"topic": TASK_TOPIC}) == 1


async def test_publisher_keeps_batches_of_non_ascii_text_within_the_byte_limit(
    store: NodeStore, metrics: NodeMetrics
) -> None:
    limit = 4096
    config = NodeConfig(gossip=GossipConfig(max_batch_bytes=limit))
    router = GossipRouter(KEY, store, metrics, config)
    sent: list[bytes] = []

    async def transport_publish(_topic: str, data: bytes) -> None:
        sent.append(data)

    envelopes = [router.publish(EnvelopeKind.TASK, {"text": "卡片描述" * 60}) for _ in range(12)]
    async with running(router.run_publisher(TASK_TOPIC, transport_publish)):
        await wait_until(lambda: sum(len(decode_batch(d).envelopes) for d in sent) == 12)
    assert len(sent) > 1
    assert all(len(data) <= limit for data in sent)
    assert [e for d in sent for e in decode_batch(d).envelopes] == envelopes


async def test_publisher_puts_batch_back_and_retries_after_transport_error(
    router: GossipRouter, metrics: NodeMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gossip, "PUBLISH_RETRY_DELAY", 0)
    attempts: list[bytes] = []

    async def flaky_publish(_topic: str, data: bytes) -> None:
        attempts.append(data)
        if len(attempts) == 1:
            raise P2PError("no peers yet")

    envelope = router.publish(EnvelopeKind.TASK, {"task": "retry me"})
    async with running(router.run_publisher(TASK_TOPIC, flaky_publish)):
        await wait_until(lambda: len(attempts) == 2)
    assert attempts[0] == attempts[1]
    assert decode_batch(attempts[1]).envelopes == [envelope]
    published = "noosphere_gossip_messages_published_total"
    assert metrics.registry.get_sample_value(published, {"topic": TASK_TOPIC}) == 1


async def test_publisher_drops_envelopes_that_expired_while_queued(
    router: GossipRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_now = now_ms()
    monkeypatch.setattr(gossip, "now_ms", lambda: real_now - 3_600_000)
    router.publish(EnvelopeKind.TASK, {"task": "stale"})
    monkeypatch.setattr(gossip, "now_ms", now_ms)
    fresh = router.publish(EnvelopeKind.TASK, {"task": "fresh"})
    sent: list[bytes] = []

    async def transport_publish(_topic: str, data: bytes) -> None:
        sent.append(data)

    async with running(router.run_publisher(TASK_TOPIC, transport_publish)):
        await wait_until(lambda: bool(sent))
    assert [e for data in sent for e in decode_batch(data).envelopes] == [fresh]


# ---- inbound: stateless validation -----------------------------------------------------------


def test_validate_accepts_a_good_batch(router: GossipRouter, metrics: NodeMetrics) -> None:
    data = encode(make_envelope(seq=1), make_envelope(seq=2))
    assert router.validate(TASK_TOPIC, KEY.peer_id, data) is True
    assert total_rejected(metrics) == 0


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\x00garbage", b"{}", b'{"v": 1, "envelopes": []}', b"[1, 2, 3]"],
    ids=["empty", "binary", "empty-object", "no-envelopes", "array"],
)
def test_validate_rejects_malformed_bytes(
    router: GossipRouter, metrics: NodeMetrics, data: bytes
) -> None:
    assert router.validate(TASK_TOPIC, KEY.peer_id, data) is False
    assert rejected(metrics, RejectReason.MALFORMED) == 1


def test_validate_rejects_envelope_on_wrong_topic(
    router: GossipRouter, metrics: NodeMetrics
) -> None:
    data = encode(make_envelope(EnvelopeKind.TASK))
    assert router.validate(CARD_TOPIC, KEY.peer_id, data) is False
    assert rejected(metrics, RejectReason.WRONG_TOPIC) == 1


def test_validate_rejects_unknown_topic(router: GossipRouter, metrics: NodeMetrics) -> None:
    assert router.validate("other/topic/1", KEY.peer_id, encode(make_envelope())) is False
    assert rejected(metrics, RejectReason.WRONG_TOPIC) == 1


def test_validate_rejects_bad_signature(router: GossipRouter, metrics: NodeMetrics) -> None:
    tampered = make_envelope(body={"amount": 1}).model_copy(update={"body": {"amount": 1000}})
    assert router.validate(TASK_TOPIC, KEY.peer_id, encode(tampered)) is False
    assert rejected(metrics, RejectReason.BAD_SIGNATURE) == 1


def test_validate_rejects_envelope_signed_by_another_key(
    router: GossipRouter, metrics: NodeMetrics
) -> None:
    forged = make_envelope(key=OTHER).model_copy(update={"sender": KEY.peer_id})
    assert router.validate(TASK_TOPIC, KEY.peer_id, encode(forged)) is False
    assert rejected(metrics, RejectReason.BAD_SIGNATURE) == 1


def test_validate_rejects_expired_envelope(router: GossipRouter, metrics: NodeMetrics) -> None:
    expired = make_envelope(issued_at=now_ms() - 600_000, ttl_ms=1_000)
    assert router.validate(TASK_TOPIC, KEY.peer_id, encode(expired)) is False
    assert rejected(metrics, RejectReason.EXPIRED) == 1


def test_validate_rejects_envelope_from_the_future(
    router: GossipRouter, metrics: NodeMetrics
) -> None:
    future = make_envelope(issued_at=now_ms() + 600_000)
    assert router.validate(TASK_TOPIC, KEY.peer_id, encode(future)) is False
    assert rejected(metrics, RejectReason.NOT_YET_VALID) == 1


def test_validate_rejects_sender_other_than_origin(
    router: GossipRouter, metrics: NodeMetrics
) -> None:
    assert router.validate(TASK_TOPIC, OTHER.peer_id, encode(make_envelope())) is False
    assert rejected(metrics, RejectReason.SENDER_MISMATCH) == 1


def test_validate_rejects_whole_batch_when_one_envelope_is_bad(
    router: GossipRouter, metrics: NodeMetrics
) -> None:
    bad = make_envelope(seq=2).model_copy(update={"body": {"n": 99}})
    assert router.validate(TASK_TOPIC, KEY.peer_id, encode(make_envelope(seq=1), bad)) is False
    assert total_rejected(metrics) == 1


@pytest.mark.parametrize("field", ["body", "seq"])
def test_validate_rejects_envelope_without_canonical_form(
    router: GossipRouter, metrics: NodeMetrics, field: str
) -> None:
    wire = make_envelope().to_wire()
    wire[field] = {"n": 2**60} if field == "body" else 2**60
    data = json.dumps({"v": 1, "envelopes": [wire]}).encode()
    assert router.validate(TASK_TOPIC, KEY.peer_id, data) is False
    assert total_rejected(metrics) == 1


# ---- inbound: receive path -------------------------------------------------------------------


def inbound(*envelopes: Envelope, topic: str = TASK_TOPIC) -> InboundMessage:
    return InboundMessage(topic=topic, origin=KEY.peer_id, data=encode(*envelopes))


async def test_receiver_hands_envelope_to_handler_once_and_counts_replay(
    router: GossipRouter, metrics: NodeMetrics
) -> None:
    handled: list[Envelope] = []
    router.on(EnvelopeKind.TASK, handled.append)
    envelope = make_envelope(seq=7)
    router.deliver(inbound(envelope))
    router.deliver(inbound(envelope))
    async with running(router.run_receiver()):
        await wait_until(lambda: rejected(metrics, RejectReason.REPLAY) == 1)
    assert handled == [envelope]
    assert accepted(metrics, EnvelopeKind.TASK) == 1


async def test_receiver_persists_replay_mark_so_a_restart_refuses_the_replay(
    router: GossipRouter, store: NodeStore
) -> None:
    envelope = make_envelope(seq=7)
    router.deliver(inbound(envelope))
    async with running(router.run_receiver()):
        await wait_until(lambda: store.replay_marks() == {KEY.peer_id: 7})

    restarted_metrics = NodeMetrics()
    restarted = GossipRouter(KEY, store, restarted_metrics, NodeConfig())
    restarted.deliver(inbound(envelope))
    async with running(restarted.run_receiver()):
        await wait_until(lambda: rejected(restarted_metrics, RejectReason.REPLAY) == 1)
    assert accepted(restarted_metrics, EnvelopeKind.TASK) == 0


async def test_receiver_counts_handler_rejection_by_reason(
    router: GossipRouter, metrics: NodeMetrics
) -> None:
    def refuse(_envelope: Envelope) -> None:
        raise EnvelopeRejected(RejectReason.STALE_VERSION, "old")

    router.on(EnvelopeKind.TASK, refuse)
    router.deliver(inbound(make_envelope()))
    async with running(router.run_receiver()):
        await wait_until(lambda: rejected(metrics, RejectReason.STALE_VERSION) == 1)
    assert accepted(metrics, EnvelopeKind.TASK) == 0


async def test_receiver_skips_malformed_message_and_keeps_going(
    router: GossipRouter, metrics: NodeMetrics
) -> None:
    router.deliver(InboundMessage(topic=TASK_TOPIC, origin=KEY.peer_id, data=b"junk"))
    router.deliver(inbound(make_envelope()))
    async with running(router.run_receiver()):
        await wait_until(lambda: accepted(metrics, EnvelopeKind.TASK) == 1)
    assert rejected(metrics, RejectReason.MALFORMED) == 1
    received = "noosphere_gossip_messages_received_total"
    assert metrics.registry.get_sample_value(received, {"topic": TASK_TOPIC}) == 2


async def test_receiver_rate_limits_each_sender(store: NodeStore, metrics: NodeMetrics) -> None:
    config = NodeConfig(gossip=GossipConfig(max_envelopes_per_sender_per_s=0.05))  # burst of 1
    router = GossipRouter(KEY, store, metrics, config)
    router.deliver(inbound(make_envelope(seq=1), make_envelope(seq=2)))
    async with running(router.run_receiver()):
        await wait_until(lambda: rejected(metrics, RejectReason.RATE_LIMITED) == 1)
    assert accepted(metrics, EnvelopeKind.TASK) == 1


def test_deliver_drops_and_counts_when_inbound_queue_is_full(
    store: NodeStore, metrics: NodeMetrics
) -> None:
    router = GossipRouter(KEY, store, metrics, NodeConfig(gossip=GossipConfig(inbound_queue=16)))
    message = inbound(make_envelope())
    for _ in range(17):
        router.deliver(message)
    assert metrics.registry.get_sample_value("noosphere_gossip_inbound_overflow_total") == 1
