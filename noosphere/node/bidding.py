"""Recruit (open calls): task requests gossiped to the whole network and the bids they draw.

Requester side, ``BidBoard``: a recruit with ``solicitBidsMs`` gossips a ``TaskRequest`` and
collects, until it expires, the bids that agents' nodes send back with ``noosphere.bid``; a bid
counts only if its card verifies and was signed by the very node that sent the (signed) request.
Agent side, ``Bidder``: for each gossiped request, this node's own agents are judged by the same
semantic filter MARS uses; the agents that pass bid. Bids go only to a ``replyTo`` whose host is an
address the requester is known by, so a request cannot aim this node at arbitrary URLs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import structlog

from noosphere.mars.filter import Constraints, SemanticFilter
from noosphere.mars.profile import AgentProfile, profile_from_card
from noosphere.protocol import AgentCard, CardError, Envelope, NodeKey, verify_card
from noosphere.protocol.bids import Bid, BidAck, TaskRequest

from .auth import PeerAuth

log = structlog.get_logger("noosphere.bids")

MAX_OPEN_REQUESTS = 256
MAX_BIDS_PER_REQUEST = 200
MAX_BIDS_IN_FLIGHT = 8  # task requests judged at once; more are dropped (flood guard)


@dataclass
class _OpenRequest:
    request: TaskRequest
    bids: dict[str, tuple[AgentProfile, float]] = field(default_factory=dict)


class BidBoard:
    """The requests this node has gossiped and the bids they received."""

    def __init__(self, learn_card: Callable[[dict[str, object]], None]) -> None:
        self._open: dict[str, _OpenRequest] = {}
        self._learn_card = learn_card  # a bid's card joins the node's card index

    def open(self, request: TaskRequest) -> None:
        now = int(time.time() * 1000)
        for request_id in [r for r, o in self._open.items() if o.request.expires_at < now]:
            del self._open[request_id]
        if len(self._open) >= MAX_OPEN_REQUESTS:
            self._open.pop(next(iter(self._open)))
        self._open[request.request_id] = _OpenRequest(request)

    def add(self, bid: Bid, bidder: str | None) -> BidAck:
        entry = self._open.get(bid.request_id)
        now = int(time.time() * 1000)
        if entry is None or entry.request.expires_at < now:
            return BidAck(accepted=False, reason="no open request with this id")
        if len(entry.bids) >= MAX_BIDS_PER_REQUEST:
            return BidAck(accepted=False, reason="enough bids")
        try:
            card = AgentCard.model_validate(bid.card)
            params = verify_card(card)
        except (CardError, ValueError) as exc:
            return BidAck(accepted=False, reason=f"card rejected: {exc}")
        if params.peer_id != bidder:
            return BidAck(accepted=False, reason="the bid's card belongs to another node")
        if params.expires_at <= now:
            return BidAck(accepted=False, reason="card expired")
        entry.bids[params.card_id] = (profile_from_card(params.card_id, card), bid.relevance)
        self._learn_card(bid.card)
        return BidAck(accepted=True)

    def collect(self, request_id: str) -> list[AgentProfile]:
        entry = self._open.pop(request_id, None)
        return [] if entry is None else [profile for profile, _ in entry.bids.values()]


class Bidder:
    """Answers gossiped task requests on behalf of this node's agents."""

    def __init__(
        self,
        key: NodeKey,
        own_profiles: Callable[[], list[AgentProfile]],
        semantic_filter: Callable[[], SemanticFilter],
        sender_hosts: Callable[[str], Awaitable[set[str]]],
    ) -> None:
        self._key = key
        self._own_profiles = own_profiles
        self._filter = semantic_filter
        self._sender_hosts = sender_hosts
        self._jobs: set[asyncio.Task[None]] = set()
        self.bids_sent = 0
        self.requests_dropped = 0

    def on_request(self, envelope: Envelope) -> None:
        """Gossip handler: judge and bid in the background (never blocks the receiver)."""
        if envelope.sender == self._key.peer_id or not self._own_profiles():
            return
        try:
            request = TaskRequest.model_validate(envelope.body)
        except ValueError:
            return
        if len(self._jobs) >= MAX_BIDS_IN_FLIGHT:  # a flood of requests must not pile up work
            self.requests_dropped += 1
            log.info("task request dropped: too many bids in flight", sender=envelope.sender)
            return
        job = asyncio.create_task(self._bid(request, envelope.sender))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _bid(self, request: TaskRequest, requester: str) -> None:
        if request.expires_at < int(time.time() * 1000):
            return
        host = urlsplit(request.reply_to).hostname or ""
        if host not in await self._sender_hosts(requester):
            log.info("task request ignored: replyTo is not the requester's host", host=host)
            return
        profiles = self._own_profiles()
        constraints = Constraints(
            required_tags=tuple(request.required_tags),
            max_price=request.max_price,
            policy=request.policy,
        )
        try:
            verdicts = await asyncio.to_thread(
                self._filter().judge, request.task, profiles, constraints,
                now_ms=int(time.time() * 1000),
            )  # fmt: skip
        except ValueError as exc:  # e.g. a malformed policy
            log.info("task request ignored", reason=str(exc))
            return
        async with httpx.AsyncClient(auth=PeerAuth(self._key), timeout=5.0) as http:
            for verdict in verdicts:
                if not verdict.kept:
                    continue
                bid = Bid(
                    request_id=request.request_id,
                    card=verdict.profile.extra["card"],
                    relevance=round(verdict.relevance, 6),
                )
                body = {
                    "jsonrpc": "2.0",
                    "id": str(uuid.uuid4()),
                    "method": "noosphere.bid",
                    "params": bid.to_wire(),
                }
                try:
                    response = await http.post(request.reply_to.rstrip("/") + "/", json=body)
                    self.bids_sent += 1
                    log.info(
                        "bid sent",
                        request_id=request.request_id,
                        agent=verdict.profile.agent_id,
                        answer=response.json().get("result"),
                    )
                except (httpx.HTTPError, ValueError) as exc:
                    log.info("bid not delivered", error=type(exc).__name__)
