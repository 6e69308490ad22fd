"""Discover (card pull-sync, ``/noosphere/cards-sync/1``): gossip only reaches nodes connected
when a card version is published, so a node pulls a newly connected peer's card index, and answers
the same request from its peers.

Both directions are bounded, because the other side may be hostile. Pulling: the reply is parsed and
every card checked (limits, signature) in a worker thread, a chunk at a time, so the event loop
keeps serving; each card the peer introduces costs a token from that peer's gossip rate limit and
counts against its relay quota (``CardIndex``); a card that breaks a rule is never stored, so it is
never relayed either. Serving: only first-hand cards (this node's own, and those that came from
their owner), so cards a stranger injected by sync stop at the node it injected them into; one
answer per peer per ``SERVE_INTERVAL_S`` and one reply built per second at most, from the stored
card text without decoding it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from noosphere.protocol import RejectReason
from noosphere.protocol.sync import MAX_SYNC_BYTES, MAX_SYNC_CARDS, CardSyncReply

from .cards import CardIndex, CheckedCard
from .gossip import now_ms
from .metrics import NodeMetrics
from .store import NodeStore

log = structlog.get_logger("noosphere.sync")

CHUNK_CARDS = 64  # cards checked per worker-thread call, stored per transaction
SERVE_INTERVAL_S = 10.0  # a peer gets one full answer this often; more often: an empty one
REPLY_CACHE_S = 1.0
MAX_SERVE_PEERS = 10_000

Request = Callable[[str], Awaitable[bytes]]
Allow = Callable[[str, int], bool]


class CardSync:
    def __init__(
        self,
        cards: CardIndex,
        store: NodeStore,
        metrics: NodeMetrics,
        *,
        allow: Allow,
    ) -> None:
        self._cards = cards
        self._store = store
        self._metrics = metrics
        self._allow = allow  # the per-sender gossip rate limit: may ``peer`` add ``n`` cards?
        self._served_at: dict[str, float] = {}
        self._reply: tuple[float, bytes] | None = None

    # ---- pulling -----------------------------------------------------------------------------

    async def pull(self, peer_id: str, request: Request) -> int:
        """Ask ``peer_id`` for its cards and keep the valid, new ones; returns how many."""
        data = await request(peer_id)
        try:
            reply = await asyncio.to_thread(CardSyncReply.model_validate_json, data)
        except ValueError as exc:
            self._metrics.envelopes_rejected.labels(reason=RejectReason.MALFORMED.value).inc()
            log.warning("card sync reply unreadable", peer=peer_id, error=str(exc)[:200])
            return 0
        new = limited = 0
        for start in range(0, len(reply.cards), CHUNK_CARDS):
            chunk = reply.cards[start : start + CHUNK_CARDS]
            held = self._cards.versions(now_ms())
            offered = await asyncio.to_thread(self._check, chunk, held, now_ms())
            now = now_ms()
            with self._store.transaction():
                for item in offered:
                    if isinstance(item, CheckedCard) and not self._allow(peer_id, 1):
                        limited += 1
                        item = RejectReason.RATE_LIMITED
                    new += self._cards.accept_relayed(item, now, via=peer_id)
            await asyncio.sleep(0)  # let requests and gossip in between chunks
        log.info("card sync", peer=peer_id, offered=len(reply.cards), new=new, rate_limited=limited)
        return new

    def _check(
        self, chunk: list[Any], held: dict[str, int], now: int
    ) -> list[CheckedCard | RejectReason]:
        """Worker thread: skip versions already held (before paying for a signature check),
        check the rest. Returns what ``CardIndex.accept_relayed`` takes."""
        out: list[CheckedCard | RejectReason] = []
        for raw in chunk:
            if _held_version(raw, held):
                out.append(RejectReason.STALE_VERSION)
            else:
                out.append(self._cards.check_offered(raw, now))
        return out

    # ---- serving -----------------------------------------------------------------------------

    def serve(self, peer_id: str) -> bytes:
        """The reply to ``peer_id``'s sync request: every unexpired card (its owner's signature
        makes it relayable), at most once per ``SERVE_INTERVAL_S`` per peer."""
        now = time.monotonic()
        last = self._served_at.get(peer_id)
        if last is not None and now - last < SERVE_INTERVAL_S:
            return b'{"v":1,"cards":[]}'
        if len(self._served_at) >= MAX_SERVE_PEERS:
            self._served_at = {
                p: t for p, t in self._served_at.items() if now - t < SERVE_INTERVAL_S
            }
        self._served_at[peer_id] = now
        if self._reply is None or now - self._reply[0] > REPLY_CACHE_S:
            self._reply = (now, self._build())
        return self._reply[1]

    def _build(self) -> bytes:
        parts, size = [], 0
        for text in self._store.card_documents(now_ms=now_ms(), limit=MAX_SYNC_CARDS):
            size += len(text) + 1
            if size > MAX_SYNC_BYTES:  # the requester reads at most MAX_REPLY_BYTES
                break
            parts.append(text)
        return ('{"v":1,"cards":[' + ",".join(parts) + "]}").encode()


def _held_version(raw: Any, held: dict[str, int]) -> bool:
    """Whether ``raw`` claims a version this node already holds (a cheap look at the claimed
    owner, agent and seq; a lie here only makes the card go through the full check)."""
    try:
        for extension in raw["capabilities"]["extensions"]:
            params = extension.get("params") or {}
            if "peerId" in params:
                known = held.get(f"{params['peerId']}/{params['agentId']}")
                return known is not None and known >= int(params["seq"])
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return False
