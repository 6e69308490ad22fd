"""Open calls (Recruit): the bidder under a flood of gossiped task requests (a bounded number
judged at once, the rest dropped), bids carried over libp2p to the node that signed the request
and never to its ``replyTo`` URL, the requester's stream handler, and the courier dialing only
addresses the egress rule allows."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from noosphere.mars.filter import Verdict
from noosphere.mars.profile import AgentProfile
from noosphere.node.bidding import MAX_BIDS_IN_FLIGHT, BidBoard, BidCourier, Bidder
from noosphere.node.egress import EgressPolicy, Scope
from noosphere.node.p2p import P2PError, PeerView
from noosphere.protocol import EnvelopeKind, NodeKey
from noosphere.protocol.bids import BID_PROTOCOL, Bid, BidAck, TaskRequest
from noosphere.protocol.envelope import Envelope, seal

PROFILE = AgentProfile(
    agent_id="a/b", name="b", description="d", skills=(), extra={"card": {"name": "b"}}
)


class StubFilter:
    """Keeps every candidate; waits on ``gate`` first when given (judging runs in a thread)."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate

    def judge(self, task: str, candidates: list[AgentProfile], *_: Any, **__: Any) -> list[Any]:
        if self.gate is not None:
            self.gate.wait(10)
        return [Verdict(profile=p, relevance=0.9, skill=0) for p in candidates]


class StubCourier:
    """Stands for BidCourier: ``send`` is the given coroutine; ``reachable`` as told."""

    def __init__(self, send: Any, reachable: bool = True) -> None:
        self.send = send
        self._reachable = reachable

    async def reachable(self, _requester: str) -> bool:
        return self._reachable


def _request_envelope(
    requester: NodeKey, seq: int, reply_to: str = "http://127.0.0.1:9/"
) -> Envelope:
    now = int(time.time() * 1000)
    request = TaskRequest(
        request_id=f"request-{seq:04d}",
        task="add numbers",
        reply_to=reply_to,
        expires_at=now + 60_000,
    )
    return seal(EnvelopeKind.TASK, request.to_wire(), requester, seq=seq, now_ms=now, ttl_ms=60_000)


def test_a_flood_of_requests_is_bounded() -> None:
    ours, theirs = NodeKey.generate(), NodeKey.generate()
    gate = threading.Event()

    async def send(_requester: str, _bid: Bid) -> BidAck:
        return BidAck(accepted=True)

    async def main() -> tuple[int, int]:
        bidder = Bidder(ours, lambda: [PROFILE], lambda: StubFilter(gate), StubCourier(send))  # type: ignore[arg-type,return-value]
        for seq in range(1, 41):
            bidder.on_request(_request_envelope(theirs, seq))
        in_flight, dropped = len(bidder._jobs), bidder.requests_dropped
        gate.set()
        await asyncio.gather(*bidder._jobs)
        return in_flight, dropped

    in_flight, dropped = asyncio.run(main())
    assert in_flight == MAX_BIDS_IN_FLIGHT and dropped == 40 - MAX_BIDS_IN_FLIGHT


async def test_bids_go_to_the_signer_of_the_request_never_to_reply_to() -> None:
    ours, requester = NodeKey.generate(), NodeKey.generate()
    sent: list[tuple[str, Bid]] = []

    async def send(peer: str, bid: Bid) -> BidAck:
        sent.append((peer, bid))
        return BidAck(accepted=True)

    bidder = Bidder(ours, lambda: [PROFILE], lambda: StubFilter(), StubCourier(send))  # type: ignore[arg-type,return-value]
    bidder.on_request(_request_envelope(requester, 1, reply_to="http://localhost:2375/"))
    await asyncio.gather(*bidder._jobs)
    assert [(peer, bid.request_id) for peer, bid in sent] == [(requester.peer_id, "request-0001")]
    assert bidder.bids_sent == 1


async def test_an_unreachable_requester_costs_one_attempt() -> None:
    ours, requester = NodeKey.generate(), NodeKey.generate()
    attempts = 0

    async def send(_peer: str, _bid: Bid) -> BidAck:
        nonlocal attempts
        attempts += 1
        raise P2PError("no address this node may dial")

    profiles = [PROFILE, PROFILE]
    bidder = Bidder(ours, lambda: profiles, lambda: StubFilter(), StubCourier(send))  # type: ignore[arg-type,return-value]
    bidder.on_request(_request_envelope(requester, 1))
    await asyncio.gather(*bidder._jobs)
    assert attempts == 1 and bidder.bids_sent == 0


async def test_requests_from_unreachable_requesters_are_not_judged() -> None:
    ours, requester = NodeKey.generate(), NodeKey.generate()
    gate = threading.Event()  # a judge call would block until the test's end

    async def send(_peer: str, _bid: Bid) -> BidAck:
        raise AssertionError("no bid for an unreachable requester")

    courier = StubCourier(send, reachable=False)
    bidder = Bidder(ours, lambda: [PROFILE], lambda: StubFilter(gate), courier)  # type: ignore[arg-type,return-value]
    bidder.on_request(_request_envelope(requester, 1))
    await asyncio.wait_for(asyncio.gather(*bidder._jobs), 5)
    assert bidder.bids_sent == 0


async def test_board_answers_bid_streams() -> None:
    board = BidBoard(lambda _card: None)
    board.open(
        TaskRequest(
            request_id="request-0001",
            task="t",
            reply_to="x",
            expires_at=int(time.time() * 1000) + 60_000,
        )
    )
    garbage = BidAck.model_validate_json(await board.on_stream("peer", b"{not json"))
    assert not garbage.accepted and garbage.reason.startswith("not a bid")
    bid = Bid(request_id="request-0001", card={}, relevance=0.5)
    answer = await board.on_stream("peer", bid.model_dump_json(by_alias=True).encode())
    assert BidAck.model_validate_json(answer).reason.startswith("card rejected")


# ---- the courier --------------------------------------------------------------------------


@dataclass
class FakeP2P:
    """Stands for P2PHost: records dials and requests."""

    connected: set[str] = field(default_factory=set)
    dialed: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def connected_peers(self) -> list[PeerView]:
        return [PeerView(peer_id=p, addrs=[]) for p in self.connected]

    async def connect(self, address: str, timeout: float = 10.0) -> str:
        self.dialed.append(address)
        peer = address.rsplit("/p2p/", 1)[1]
        self.connected.add(peer)
        return peer

    async def request(self, peer_id: str, protocol: str, timeout: float = 20.0, **kw: Any) -> bytes:
        self.requests.append({"peer": peer_id, "protocol": protocol, **kw})
        return BidAck(accepted=True).model_dump_json(by_alias=True).encode()


BID = Bid(request_id="request-0001", card={}, relevance=0.5)


async def test_courier_uses_an_existing_connection() -> None:
    p2p = FakeP2P(connected={"Req"})
    courier = BidCourier(
        p2p, lambda _p: ["/ip4/127.0.0.1/tcp/1/p2p/Req"], EgressPolicy.public_only()
    )  # type: ignore[arg-type]
    assert (await courier.send("Req", BID)).accepted
    assert p2p.dialed == []
    (request,) = p2p.requests
    assert request["protocol"] == BID_PROTOCOL and request["connected_only"] is True
    assert Bid.model_validate_json(request["body"]) == BID


@pytest.mark.parametrize(
    ("own", "announced", "dialed"),
    [
        # a public node never dials internal addresses a requester announced
        (Scope.PUBLIC, ["/ip4/127.0.0.1/tcp/1", "/ip4/10.0.0.1/tcp/1"], []),
        (
            Scope.PUBLIC,
            ["/ip4/127.0.0.1/tcp/1", "/ip4/8.8.8.8/tcp/4001"],
            ["/ip4/8.8.8.8/tcp/4001/p2p/Req"],
        ),
        # a loopback node (tests) may dial loopback
        (Scope.LOOPBACK, ["/ip4/127.0.0.1/tcp/7/p2p/Req"], ["/ip4/127.0.0.1/tcp/7/p2p/Req"]),
        (Scope.PRIVATE, ["/ip4/127.0.0.1/tcp/7", "/ip4/169.254.169.254/tcp/80"], []),
    ],
)
async def test_courier_dials_only_addresses_the_egress_rule_allows(
    own: Scope, announced: list[str], dialed: list[str]
) -> None:
    p2p = FakeP2P()
    courier = BidCourier(p2p, lambda _p: announced, EgressPolicy(own))  # type: ignore[arg-type]
    if dialed:
        assert (await courier.send("Req", BID)).accepted
    else:
        with pytest.raises(P2PError, match="no address this node may dial"):
            await courier.send("Req", BID)
        assert p2p.requests == []
    assert p2p.dialed == dialed


async def test_courier_reachability() -> None:
    p2p = FakeP2P(connected={"Near"})
    addrs = {"Far": ["/ip4/8.8.8.8/tcp/4001"], "Hidden": ["/ip4/127.0.0.1/tcp/4001"]}
    courier = BidCourier(p2p, lambda p: addrs.get(p, []), EgressPolicy.public_only())  # type: ignore[arg-type]
    assert await courier.reachable("Near") and await courier.reachable("Far")
    assert not await courier.reachable("Hidden") and not await courier.reachable("Unknown")
    assert p2p.dialed == []  # checking reachability dials nothing
