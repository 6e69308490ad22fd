"""Discover (gossip layer): signed envelopes over GossipSub. Outbound, one paced publisher per topic
batches envelopes into messages and waits for room in libp2p's queues; inbound, every envelope is
verified (signature, validity window, origin) in the transport's topic validator, then checked
against replay and per-sender rate limits and handed to the handler for its kind. Every rejection
is counted by reason."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from noosphere.protocol import (
    MAX_BATCH_ENVELOPES,
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

from .config import NodeConfig
from .metrics import NodeMetrics
from .p2p import InboundMessage, P2PError
from .ratelimit import TokenBucket
from .store import NodeStore

log = structlog.get_logger("noosphere.gossip")

KIND_FOR_TOPIC = {topic: kind for kind, topic in TOPIC_FOR_KIND.items()}
REPLAY_MEMORY = 4096  # sequence numbers remembered per sender
PUBLISH_RETRY_DELAY = 0.5
# Batches the validator decoded, kept for the receiver so it need not parse them again (a
# validated message that is never delivered, e.g. our own, stays until the map is cleared).
VALIDATED_KEPT = 256
MAX_SENDERS = 100_000  # rate-limit buckets kept by the validator
Handler = Callable[[Envelope], None]
Precheck = Callable[[Envelope, int], None]  # raises EnvelopeRejected; runs before forwarding
Publish = Callable[[str, bytes], Any]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ReplayGuard:
    """Remembers the last ``REPLAY_MEMORY`` sequence numbers of each sender, so envelopes that
    arrive out of order are accepted once and repeats are refused. After a restart everything at
    or below the persisted high-water mark is refused (the envelope TTL bounds what that costs)."""

    def __init__(self, floors: dict[str, int]) -> None:
        self._floor = dict(floors)
        self._recent: dict[str, tuple[list[int], set[int]]] = {}

    def admit(self, sender: str, seq: int) -> bool:
        if seq <= self._floor.get(sender, 0):
            return False
        heap, seen = self._recent.setdefault(sender, ([], set()))
        if seq in seen or (len(heap) >= REPLAY_MEMORY and seq < heap[0]):
            return False
        heapq.heappush(heap, seq)
        seen.add(seq)
        if len(heap) > REPLAY_MEMORY:
            seen.discard(heapq.heappop(heap))
        return True


class GossipRouter:
    """Signed-envelope gossip on top of a transport ``publish(topic, data)`` coroutine."""

    def __init__(
        self, key: NodeKey, store: NodeStore, metrics: NodeMetrics, config: NodeConfig
    ) -> None:
        self._key = key
        self._store = store
        self._metrics = metrics
        self._config = config
        self._handlers: dict[EnvelopeKind, Handler] = {}
        self._prechecks: dict[EnvelopeKind, Precheck] = {}
        self._replay = ReplayGuard(store.replay_marks())
        self._buckets: dict[str, TokenBucket] = {}
        # The same limit, applied by the validator (transport thread) before forwarding, so a
        # flooding sender's excess is not relayed to the rest of the network either.
        self._forward_buckets: dict[str, TokenBucket] = {}
        self._inbound: asyncio.Queue[InboundMessage] = asyncio.Queue(config.gossip.inbound_queue)
        self._outbound: dict[str, deque[Envelope]] = {t: deque() for t in TOPIC_FOR_KIND.values()}
        self._outbound_ready: dict[str, asyncio.Event] = {
            t: asyncio.Event() for t in TOPIC_FOR_KIND.values()
        }
        self._last_seq = int(store.get_meta("own_seq") or 0)
        self._validated: dict[bytes, EnvelopeBatch] = {}  # written in the transport's thread

    @property
    def topics(self) -> list[str]:
        return list(TOPIC_FOR_KIND.values())

    def on(self, kind: EnvelopeKind, handler: Handler, precheck: Precheck | None = None) -> None:
        """Hand envelopes of ``kind`` to ``handler`` (event loop); ``precheck`` runs in the
        transport's validator on the body, so what fails it is neither delivered nor forwarded."""
        self._handlers[kind] = handler
        if precheck is not None:
            self._prechecks[kind] = precheck

    def allow(self, sender: str, count: int = 1) -> bool:
        """Take ``count`` from ``sender``'s rate limit (also used for cards a peer relays)."""
        return self._bucket(sender).take(count)

    def limited_senders(self) -> list[tuple[str, float]]:
        """Senders whose rate limit is used up right now (fewer than one token left, before or
        after forwarding), with the tokens they have: ``(peer id, tokens)``, fewest first."""
        now = time.monotonic()
        low: dict[str, float] = {}
        for buckets in (self._buckets, self._forward_buckets):
            for sender, bucket in list(buckets.items()):  # the validator's map: another thread
                tokens = min(bucket.burst, bucket.tokens + (now - bucket.stamp) * bucket.rate)
                if tokens < 1.0:
                    low[sender] = min(tokens, low.get(sender, tokens))
        return sorted(low.items(), key=lambda item: (item[1], item[0]))

    def reject(self, reason: RejectReason, count: int = 1) -> None:
        self._metrics.envelopes_rejected.labels(reason=reason.value).inc(count)

    # ---- outbound --------------------------------------------------------------------------

    def next_seq(self) -> int:
        """Strictly increasing across restarts: microsecond clock, never below the last one used."""
        self._last_seq = max(self._last_seq + 1, time.time_ns() // 1000)
        self._store.set_meta("own_seq", str(self._last_seq))
        return self._last_seq

    def publish(self, kind: EnvelopeKind, body: dict[str, Any]) -> Envelope:
        """Seal ``body`` and queue it for the kind's topic; returns the envelope."""
        envelope = seal(
            kind,
            body,
            self._key,
            seq=self.next_seq(),
            now_ms=now_ms(),
            ttl_ms=self._config.envelope_ttl_s * 1000,
        )
        topic = TOPIC_FOR_KIND[kind]
        self._outbound[topic].append(envelope)
        self._outbound_ready[topic].set()
        return envelope

    async def run_publisher(self, topic: str, publish: Publish) -> None:
        """Drain the topic's queue, packing envelopes into batches of at most max_batch_bytes.
        A failed publish puts its batch back; only envelopes that expired meanwhile are dropped."""
        ready = self._outbound_ready[topic]
        pending = self._outbound[topic]
        limit = self._config.gossip.max_batch_bytes
        while True:
            await ready.wait()
            ready.clear()
            while pending:
                batch: list[Envelope] = []
                size = 0
                now = now_ms()
                while pending and len(batch) < MAX_BATCH_ENVELOPES:
                    if pending[0].expires_at <= now:
                        log.warning("dropping an envelope that expired before it could be sent")
                        pending.popleft()
                        continue
                    item_size = pending[0].wire_size() + 1  # and a comma
                    if batch and size + item_size > limit:
                        break
                    batch.append(pending.popleft())
                    size += item_size
                if not batch:
                    continue
                data = EnvelopeBatch(envelopes=batch).encode()
                try:
                    await publish(topic, data)
                except P2PError as exc:
                    log.warning("gossip publish failed; will retry", topic=topic, error=str(exc))
                    pending.extendleft(reversed(batch))
                    await asyncio.sleep(PUBLISH_RETRY_DELAY)
                    continue
                self._metrics.gossip_messages_published.labels(topic=topic).inc()
                self._metrics.gossip_bytes_published.labels(topic=topic).inc(len(data))

    # ---- inbound -----------------------------------------------------------------------------

    def validate(self, topic: str, origin: str, data: bytes) -> bool:
        """Stateless checks, run by the transport before forwarding (any thread)."""
        try:
            batch = decode_batch(data)
            for envelope in batch.envelopes:
                self._check_stateless(topic, origin, envelope)
        except EnvelopeRejected as exc:
            self.reject(exc.reason)
            return False
        if origin != self._key.peer_id and not self._forward_bucket(origin).take(
            len(batch.envelopes)
        ):
            self.reject(RejectReason.RATE_LIMITED, len(batch.envelopes))
            return False  # neither delivered nor forwarded
        if len(self._validated) >= VALIDATED_KEPT:
            self._validated.clear()
        self._validated[data] = batch
        return True

    def _check_stateless(self, topic: str, origin: str, envelope: Envelope) -> None:
        if KIND_FOR_TOPIC.get(topic) != envelope.kind:
            raise EnvelopeRejected(RejectReason.WRONG_TOPIC, f"{envelope.kind} on {topic}")
        now = now_ms()
        check_envelope(envelope, now_ms=now, max_skew_ms=self._config.max_clock_skew_s * 1000)
        if envelope.sender != origin:
            raise EnvelopeRejected(
                RejectReason.SENDER_MISMATCH, "envelope sender is not the publisher"
            )
        precheck = self._prechecks.get(envelope.kind)
        if precheck is not None:
            precheck(envelope, now)

    def deliver(self, message: InboundMessage) -> None:
        """Called on the event loop for each validated message; never blocks."""
        try:
            self._inbound.put_nowait(message)
        except asyncio.QueueFull:
            self._metrics.inbound_overflow.inc()

    async def run_receiver(self) -> None:
        while True:
            message = await self._inbound.get()
            self._metrics.gossip_messages_received.labels(topic=message.topic).inc()
            batch = self._validated.pop(message.data, None)
            if batch is None:
                try:
                    batch = decode_batch(message.data)
                except EnvelopeRejected as exc:
                    self.reject(exc.reason)
                    continue
            with self._store.transaction():
                for envelope in batch.envelopes:
                    self._accept(envelope)

    def _accept(self, envelope: Envelope) -> None:
        handler = self._handlers.get(envelope.kind)
        try:
            if not self._replay.admit(envelope.sender, envelope.seq):
                raise EnvelopeRejected(RejectReason.REPLAY, f"seq {envelope.seq} already seen")
            self._store.set_replay_mark(envelope.sender, envelope.seq)
            if not self._bucket(envelope.sender).take():
                raise EnvelopeRejected(RejectReason.RATE_LIMITED, "sender over its rate limit")
            if handler is not None:
                handler(envelope)
        except EnvelopeRejected as exc:
            self.reject(exc.reason)
            log.debug(
                "envelope rejected",
                reason=exc.reason.value,
                sender=envelope.sender,
                detail=exc.detail,
            )
            return
        self._metrics.envelopes_accepted.labels(kind=envelope.kind.value).inc()

    def _forward_bucket(self, sender: str) -> TokenBucket:
        if sender not in self._forward_buckets and len(self._forward_buckets) >= MAX_SENDERS:
            self._forward_buckets.clear()  # bounded memory under a flood of fresh identities
        return self._forward_buckets.setdefault(sender, self._new_bucket())

    def _new_bucket(self) -> TokenBucket:
        rate = self._config.gossip.max_envelopes_per_sender_per_s
        return TokenBucket(rate=rate, burst=rate * 20, tokens=rate * 20)

    def _bucket(self, sender: str) -> TokenBucket:
        bucket = self._buckets.get(sender)
        if bucket is None:
            if len(self._buckets) >= MAX_SENDERS:
                self._buckets.clear()  # bounded memory under a flood of fresh identities
            bucket = self._buckets[sender] = self._new_bucket()
        return bucket
