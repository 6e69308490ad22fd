"""Recruit (open calls): task requests gossiped to the whole network and the bids they draw.

Requester side, ``BidBoard``: a recruit with ``solicitBidsMs`` gossips a ``TaskRequest`` and
collects, until it expires, the bids that agents' nodes send back; a bid counts only if its card
verifies and was signed by the very node that sent it (the libp2p connection, or the signature of
a ``noosphere.bid`` JSON-RPC request, says which node that is).
Agent side, ``Bidder``: for each gossiped request, this node's own agents are judged by the same
semantic filter MARS uses; the agents that pass bid. ``BidCourier`` carries each bid over libp2p
(``/noosphere/bid/1``) to the node that signed the request: on the connection this node already
has with it, or after dialing one of its addresses that the egress rule allows. A request's
``replyTo`` URL is never used, so a request cannot aim this node at any address."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from pydantic import ValidationError

from noosphere.mars.filter import Constraints, SemanticFilter
from noosphere.mars.profile import AgentProfile, profile_from_card
from noosphere.protocol import AgentCard, CardError, Envelope, NodeKey, verify_card
from noosphere.protocol.base import describe_validation_error
from noosphere.protocol.bids import (
    BID_PROTOCOL,
    MAX_BID_ACK_BYTES,
    Bid,
    BidAck,
    TaskRequest,
)

from .egress import EgressPolicy, dialable_multiaddrs
from .p2p import P2PError, P2PHost

log = structlog.get_logger("noosphere.bids")

MAX_OPEN_REQUESTS = 256
MAX_BIDS_PER_REQUEST = 200
MAX_BIDS_IN_FLIGHT = 8  # task requests judged at once; more are dropped (flood guard)
BID_TIMEOUT_S = 5.0
MAX_DIALS_PER_BID = 2


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

    async def on_stream(self, bidder: str, body: bytes) -> bytes:
        """A ``/noosphere/bid/1`` request from ``bidder`` (authenticated by the connection)."""
        try:
            bid = Bid.model_validate_json(body)
        except ValidationError as exc:
            ack = BidAck(accepted=False, reason=f"not a bid: {describe_validation_error(exc)}")
        else:
            ack = self.add(bid, bidder)
        return ack.model_dump_json(by_alias=True).encode()

    def collect(self, request_id: str) -> list[AgentProfile]:
        entry = self._open.pop(request_id, None)
        return [] if entry is None else [profile for profile, _ in entry.bids.values()]


class BidCourier:
    """Carries bids to requesters over libp2p, never over HTTP. A requester this node is not
    connected to is dialed at the addresses its cards announced, filtered by the egress rule
    (``known_addrs`` gives them; the requester's own word, so they are checked)."""

    def __init__(
        self,
        p2p: P2PHost,
        known_addrs: Callable[[str], list[str]],
        policy: EgressPolicy,
    ) -> None:
        self._p2p = p2p
        self._known_addrs = known_addrs
        self._policy = policy

    async def reachable(self, requester: str) -> bool:
        """Whether a bid could reach ``requester`` (connected, or an allowed address known);
        requests from anyone else are not worth judging."""
        if requester in {p.peer_id for p in await self._p2p.connected_peers()}:
            return True
        return bool(await dialable_multiaddrs(self._known_addrs(requester), self._policy))

    async def send(self, requester: str, bid: Bid) -> BidAck:
        """Deliver one bid; raises P2PError when the requester cannot be reached."""
        if requester not in {p.peer_id for p in await self._p2p.connected_peers()}:
            await self._dial(requester)
        reply = await self._p2p.request(
            requester,
            BID_PROTOCOL,
            timeout=BID_TIMEOUT_S,
            body=bid.model_dump_json(by_alias=True).encode(),
            max_reply_bytes=MAX_BID_ACK_BYTES,
            connected_only=True,
        )
        try:
            return BidAck.model_validate_json(reply)
        except ValidationError as exc:
            raise P2PError(
                f"requester answered a bid with {describe_validation_error(exc)}"
            ) from exc

    async def _dial(self, requester: str) -> None:
        suffix = f"/p2p/{requester}"
        announced = [a if a.endswith(suffix) else a + suffix for a in self._known_addrs(requester)]
        allowed = await dialable_multiaddrs(announced, self._policy)
        if not allowed:
            raise P2PError(f"no address this node may dial is known for {requester}")
        failure: P2PError | None = None
        for addr in allowed[:MAX_DIALS_PER_BID]:
            try:
                await self._p2p.connect(addr, timeout=BID_TIMEOUT_S)
                return
            except P2PError as exc:
                failure = exc
        assert failure is not None
        raise failure


class Bidder:
    """Answers gossiped task requests on behalf of this node's agents."""

    def __init__(
        self,
        key: NodeKey,
        own_profiles: Callable[[], list[AgentProfile]],
        semantic_filter: Callable[[], SemanticFilter],
        courier: BidCourier,
    ) -> None:
        self._key = key
        self._own_profiles = own_profiles
        self._filter = semantic_filter
        self._courier = courier
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
        if not await self._courier.reachable(requester):
            log.info("task request ignored: no way to reach its requester", requester=requester)
            return
        profiles = self._own_profiles()
        constraints = Constraints(
            required_tags=tuple(request.required_tags),
            max_price=request.max_price,
            policy=request.policy,
        )
        try:
            verdicts = await asyncio.to_thread(
                self._filter().judge,
                request.task,
                profiles,
                constraints,
                now_ms=int(time.time() * 1000),
            )
        except ValueError as exc:  # e.g. a malformed policy
            log.info("task request ignored", reason=str(exc))
            return
        for verdict in verdicts:
            if not verdict.kept:
                continue
            bid = Bid(
                request_id=request.request_id,
                card=verdict.profile.extra["card"],
                relevance=round(verdict.relevance, 6),
            )
            try:
                ack = await self._courier.send(requester, bid)
            except P2PError as exc:
                log.info("bid not delivered", requester=requester, error=str(exc))
                return  # the requester is unreachable: the other agents' bids would be too
            self.bids_sent += 1
            log.info(
                "bid sent",
                request_id=request.request_id,
                agent=verdict.profile.agent_id,
                accepted=ack.accepted,
                reason=ack.reason or None,
            )
