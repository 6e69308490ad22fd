"""The bidder under a flood of gossiped task requests: it judges a bounded number at once and
drops the rest instead of piling up background work (Recruit, open calls)."""

from __future__ import annotations

import asyncio
import time

from noosphere.mars.profile import AgentProfile
from noosphere.node.bidding import MAX_BIDS_IN_FLIGHT, Bidder
from noosphere.protocol import EnvelopeKind, NodeKey
from noosphere.protocol.bids import TaskRequest
from noosphere.protocol.envelope import seal


def test_a_flood_of_requests_is_bounded() -> None:
    ours, theirs = NodeKey.generate(), NodeKey.generate()
    gate = asyncio.Event()

    async def hosts(_peer: str) -> set[str]:
        await gate.wait()  # every judged request stays in flight until the gate opens
        return set()

    async def main() -> tuple[int, int]:
        bidder = Bidder(
            ours,
            lambda: [AgentProfile(agent_id="a/b", name="b", description="d", skills=())],
            lambda: None,  # type: ignore[arg-type,return-value]  # never reached
            hosts,
        )
        now = int(time.time() * 1000)
        for seq in range(1, 41):
            request = TaskRequest(
                request_id=f"request-{seq:04d}", task="add numbers",
                reply_to="http://10.0.0.1:1/", expires_at=now + 60_000,
            )  # fmt: skip
            envelope = seal(
                EnvelopeKind.TASK, request.to_wire(), theirs, seq=seq, now_ms=now, ttl_ms=60_000
            )
            bidder.on_request(envelope)
        in_flight, dropped = len(bidder._jobs), bidder.requests_dropped
        gate.set()
        await asyncio.gather(*bidder._jobs)
        return in_flight, dropped

    in_flight, dropped = asyncio.run(main())
    assert in_flight == MAX_BIDS_IN_FLIGHT and dropped == 40 - MAX_BIDS_IN_FLIGHT
